#!/usr/bin/env python3
"""Exhaustion scenario for tests/bench/run.sh (Python 3 standard library only, Linux).

Starts `signpost serve` (default settings unless --max-connections is given), then attacks its
public listener with --silent connections that never send a byte and --drip readers (a 4 KiB
receive buffer, enough pipelined PRM requests to fill every socket buffer, then 1 byte read per
second), re-opening the silent ones every 9 s, and measures how long a fresh client takes to get its PRM (connect -> whole answer),
--samples times, plus /readyz on the admin listener. Prints one JSON line:

  {"silent", "drip", "max_connections", "prm_s": [...], "readyz_s": [...], "unanswered": N,
   "deadline_s"}

A sample that gets no answer within --deadline seconds counts as unanswered (its time is the
deadline). Usage:

  exhaust.py --bin target/release/signpost [--silent 10000] [--drip 200] [--samples 5]
             [--deadline 30] [--max-connections N]
"""

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time

CONFIG = """{ "public_url": "http://127.0.0.1:%d",
  "servers": { "x": { "mode": "gateway", "scopes": [%s] } } }"""
PRM = "/.well-known/oauth-protected-resource/mcp/x/mcp"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(port, path, deadline):
    """Seconds from connect to a whole 200 answer, or None when none came within deadline."""
    start = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=deadline)
    except OSError:
        return None
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            left = deadline - (time.monotonic() - start)
            if left <= 0:
                return None
            s.settimeout(left)
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            return None
        return time.monotonic() - start
    except OSError:
        return None
    finally:
        s.close()


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--silent", type=int, default=10000)
    ap.add_argument("--drip", type=int, default=200)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--deadline", type=float, default=30.0)
    ap.add_argument("--max-connections", type=int, default=0)
    a = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.silent + a.drip + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    port, admin = free_port(), free_port()
    # ~16 KB document, so a drip reader's pipelined answers overflow every buffer.
    scopes = ",".join('"scope:%03d:%s"' % (i, "s" * 30) for i in range(400))
    work = tempfile.mkdtemp(prefix="signpost-exhaust.")
    cfg = os.path.join(work, "signpost.json")
    with open(cfg, "w") as f:
        f.write(CONFIG % (port, scopes))
    cmd = [a.bin, "serve", "--config", cfg, "--listen", "127.0.0.1:%d" % port,
           "--admin-listen", "127.0.0.1:%d" % admin]
    if a.max_connections:
        cmd += ["--max-connections", str(a.max_connections)]
    log = open(os.path.join(work, "signpost.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, preexec_fn=_raise_nofile(want))
    held = []
    stop = threading.Event()
    try:
        for _ in range(200):
            if fetch(admin, "/readyz", 1.0) is not None:
                break
            time.sleep(0.05)
        else:
            raise SystemExit("signpost did not become ready: see %s" % work)
        # Drip readers first (they get permits), then the silent crowd.
        wmem_max = int(open("/proc/sys/net/ipv4/tcp_wmem").read().split()[2])
        pipelined = 2 * wmem_max // 16000 + 100
        req = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % PRM.encode()
        drips = []
        for _ in range(a.drip):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.setblocking(False)
            try:
                s.send(req * pipelined)
            except OSError:
                pass
            drips.append(s)

        def drip():
            while not stop.wait(1.0):
                for s in drips:
                    try:
                        s.recv(1)
                    except OSError:
                        pass

        threading.Thread(target=drip, daemon=True).start()
        def connect_silent():
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            return s

        for _ in range(a.silent):
            held.append(connect_silent())

        # Like a real attacker, re-open every silent connection every 9 s, before a 10 s header
        # timeout would free its permit.
        def refresh():
            while not stop.wait(9.0):
                for i in range(len(held)):
                    held[i].close()
                    held[i] = connect_silent()

        threading.Thread(target=refresh, daemon=True).start()
        time.sleep(0.5)
        prm, readyz = [], []
        for _ in range(a.samples):
            prm.append(fetch(port, PRM, a.deadline))
            readyz.append(fetch(admin, "/readyz", a.deadline))
            time.sleep(1.0)
        unanswered = sum(1 for x in prm if x is None)
        out = {
            "silent": a.silent, "drip": a.drip,
            "max_connections": a.max_connections or "default (4096)",
            "deadline_s": a.deadline,
            "prm_s": [round(x if x is not None else a.deadline, 4) for x in prm],
            "readyz_s": [round(x if x is not None else a.deadline, 4) for x in readyz],
            "unanswered": unanswered,
        }
        print(json.dumps(out))
    finally:
        stop.set()
        for s in held:
            s.close()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _raise_nofile(want):
    def f():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return f


if __name__ == "__main__":
    main(sys.argv[1:])
