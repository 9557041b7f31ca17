#!/usr/bin/env python3
"""Instructions per PRM request under callgrind (Python 3 standard library, valgrind).

Runs `signpost serve` under `valgrind --tool=callgrind` twice, sending --small and then --large
keep-alive GETs of one PRM on one connection, and prints the difference in total instructions
divided by the difference in requests (start-up and shutdown cancel out). One JSON line:
{"instructions_per_request", "small", "large"}.

  instructions.py --bin target/release/signpost [--small 1000] [--large 11000]
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

CONFIG = """{ "public_url": "http://127.0.0.1:%d",
  "servers": { "x": { "mode": "gateway", "scopes": ["repo"] } } }"""
PRM = "/.well-known/oauth-protected-resource/mcp/x/mcp"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(binary, requests, work):
    port, admin = free_port(), free_port()
    cfg = os.path.join(work, "signpost.json")
    with open(cfg, "w") as f:
        f.write(CONFIG % port)
    out = os.path.join(work, "callgrind.%d.out" % requests)
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, binary, "serve",
         "--config", cfg, "--listen", "127.0.0.1:%d" % port, "--admin-listen", "127.0.0.1:%d" % admin],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("signpost did not listen under valgrind")
            time.sleep(0.2)
    req = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % PRM.encode()
    s.settimeout(60)
    buf = b""
    for _ in range(requests):
        s.sendall(req)
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                length = int(re.search(rb"(?i)content-length: *(\d+)", buf[:end]).group(1))
                if len(buf) >= end + 4 + length:
                    if not buf.startswith(b"HTTP/1.1 200"):
                        raise SystemExit("unexpected answer: %r" % buf[:200])
                    buf = buf[end + 4 + length:]
                    break
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("connection closed")
            buf += chunk
    s.close()
    proc.send_signal(signal.SIGTERM)
    proc.wait(120)
    with open(out) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise SystemExit("no totals in " + out)


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--large", type=int, default=11000)
    a = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="signpost-callgrind.")
    small = run(a.bin, a.small, work)
    large = run(a.bin, a.large, work)
    print(json.dumps({"instructions_per_request": round((large - small) / (a.large - a.small)),
                      "small": small, "large": large}))


if __name__ == "__main__":
    main(sys.argv[1:])
