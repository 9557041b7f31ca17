#!/usr/bin/env python3
"""Measurement helpers for tests/bench/run.sh (Python 3 standard library only, Linux /proc).

Subcommands (each prints one line: a value or a JSON object):
  ports N                        N distinct free TCP ports on 127.0.0.1
  wait-http URL [TIMEOUT_S]      poll URL until it answers 200; exit 1 on timeout
  mem PID                        {"hwm_kb","rss_kb","procs","threads"} summed over PID and its descendants
  timed [--stdout F] [--stderr F] -- CMD...
                                 run CMD; {"rc","wall_s","maxrss_kb"} (wait4 rusage of that child,
                                 which is what /usr/bin/time -v reports as "Maximum resident set size")
  startup --prm URL --ready URL [--timeout S] [--log F]
          [--reload-src F --reload-dst F --expect S
           [--reloads K --reload-original F --original-expect S]] -- CMD...
                                 spawn CMD (a server), poll URL --prm until 200 and --ready until 200,
                                 read its memory, [replace the config and time the reload,] SIGTERM
                                 it; {"first_prm_s","ready_s","hwm_kb","rss_kb","threads",
                                 ["reload_s","reload_hwm_kb",] "stop_s","stop_rc"}; --reloads K
                                 replaces it K times in all, alternating F (served when it shows
                                 S) and SRC: ["reloads_hwm_kb","reloads_rss_kb"] after the last
  load --target NAME --round R --pid PID --url URL --lua F [--duration S] [--conns C] [--threads T]
                                 one wrk run; server CPU (utime+stime of PID and descendants) read
                                 from /proc before and after; one JSON line
  reload-latency ...             see run.sh (reload section)
  callgrind --signpost BIN --hyper BIN [--servers N] [--base N] [--extra N] [--threads T]
            [--work DIR] [--targets a,b,...]
                                 instructions per keep-alive request, measured with valgrind's
                                 callgrind (see cmd_callgrind); one JSON line per target, then a
                                 markdown table on stderr. Standalone:
                                   cargo build --release --bin signpost --example hyper_baseline
                                   python3 tests/bench/benchlib.py callgrind \
                                     --signpost target/release/signpost \
                                     --hyper target/release/examples/hyper_baseline
  render RESULTS.jsonl META.json render the markdown report

All times are wall-clock from time.monotonic(); CPU from /proc/<pid>/stat fields 14+15 in clock ticks.
"""

import ctypes
import http.client
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- /proc


def _stat_fields(pid: int):
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    # comm may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rindex(")") + 2 :].split()
    return rest  # rest[0] is field 3 (state)


def descendants(pid: int) -> list:
    """pid and every live descendant (nginx workers, ...)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(d))[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_ticks(pid: int) -> int:
    total = 0
    for p in descendants(pid):
        try:
            f = _stat_fields(p)
        except OSError:
            continue
        # utime, stime (fields 14, 15) plus cutime, cstime (16, 17): the CPU of children already
        # reaped, e.g. nginx workers that exited after a reload.
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total


def system_busy_ticks() -> int:
    """All CPUs' non-idle time from /proc/stat (user nice system irq softirq steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def tcp_active_opens() -> int:
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Tcp:")]
    return int(rows[1][rows[0].index("ActiveOpens")])


def mem(pid: int) -> dict:
    res = {"hwm_kb": 0, "rss_kb": 0, "procs": 0, "threads": 0}
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k == "VmHWM":
                        res["hwm_kb"] += int(v.split()[0])
                    elif k == "VmRSS":
                        res["rss_kb"] += int(v.split()[0])
                    elif k == "Threads":
                        res["threads"] += int(v.split()[0])
            res["procs"] += 1
        except OSError:
            continue
    return res


# ---------------------------------------------------------------- processes


def _pdeathsig():
    """Child gets SIGKILL if this helper dies: no orphaned servers whatever happens."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def http_status(url: str, timeout: float = 1.0):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        conn.request("GET", (u.path or "/") + (("?" + u.query) if u.query else ""))
        r = conn.getresponse()
        body = r.read()
        return r.status, body
    except (OSError, http.client.HTTPException):
        return None, b""
    finally:
        conn.close()


def wait_http(url: str, timeout: float, proc=None, interval: float = 0.002):
    """Seconds until url answered 200 (monotonic), or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            return None
        st, _ = http_status(url, timeout=max(0.05, timeout - (time.monotonic() - t0)))
        if st == 200:
            return time.monotonic()
        time.sleep(interval)
    return None


def split_cmd(args: list):
    if "--" not in args:
        sys.exit("benchlib: expected -- CMD...")
    k = args.index("--")
    return args[:k], args[k + 1 :]


def opts(args: list) -> dict:
    o, i = {}, 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--"):
            sys.exit(f"benchlib: unexpected argument {a!r}")
        o[a[2:]] = args[i + 1]
        i += 2
    return o


def cmd_timed(args):
    pre, cmd = split_cmd(args)
    o = opts(pre)
    out = open(o.get("stdout", os.devnull), "wb")
    err = open(o.get("stderr", os.devnull), "wb")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=out, stderr=err, preexec_fn=_pdeathsig)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    print(json.dumps({"rc": p.returncode, "wall_s": round(wall, 4), "maxrss_kb": ru.ru_maxrss}))


def cmd_startup(args):
    pre, cmd = split_cmd(args)
    o = opts(pre)
    timeout = float(o.get("timeout", "120"))
    log = open(o.get("log", os.devnull), "ab")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=log, stderr=log, preexec_fn=_pdeathsig)
    res = {"pid": p.pid}
    try:
        t_prm = wait_http(o["prm"], timeout, proc=p, interval=0.001)
        if t_prm is None:
            res["error"] = "exited" if p.poll() is not None else f"no 200 on PRM within {timeout}s"
            res["rc"] = p.poll()
            print(json.dumps(res))
            return 1
        res["first_prm_s"] = round(t_prm - t0, 4)
        t_ready = wait_http(o["ready"], timeout, proc=p)
        res["ready_s"] = round(t_ready - t0, 4) if t_ready else None
        time.sleep(0.2)  # let start-up allocations settle before reading VmRSS
        m = mem(p.pid)
        res.update(hwm_kb=m["hwm_kb"], rss_kb=m["rss_kb"], threads=m["threads"])
        if "reload-src" in o:
            # Replace the config (write-temp-then-rename) and time until --prm serves --expect;
            # VmHWM afterwards shows what holding two configs at once costs.
            tmp = o["reload-dst"] + ".bench-tmp"
            with open(o["reload-src"], "rb") as f, open(tmp, "wb") as g:
                g.write(f.read())
            t1 = time.monotonic()
            os.replace(tmp, o["reload-dst"])
            expect = o["expect"].encode()
            reload_timeout = float(o.get("reload-timeout", "60"))
            while time.monotonic() - t1 < reload_timeout:
                st, body = http_status(o["prm"], timeout=5.0)
                if st == 200 and expect in body:
                    res["reload_s"] = round(time.monotonic() - t1, 4)
                    break
                time.sleep(0.001)
            else:
                res["reload_error"] = f"new document not served within {reload_timeout}s"
            time.sleep(0.2)
            m = mem(p.pid)
            res.update(reload_hwm_kb=m["hwm_kb"], reload_rss_kb=m["rss_kb"])
            # --reloads K: K-1 more replacements, alternating the original config and SRC, each
            # awaited like the first; VmRSS/VmHWM after the last show whether memory stays bounded
            # when an operator reloads again and again.
            more = int(o.get("reloads", "1")) - 1
            if more > 0 and "reload_s" in res:
                original = o.get("reload-original")
                versions = [(original, o.get("original-expect", "").encode()), (o["reload-src"], expect)]
                for i in range(more):
                    src, want = versions[i % 2]
                    with open(src, "rb") as f, open(tmp, "wb") as g:
                        g.write(f.read())
                    t2 = time.monotonic()
                    os.replace(tmp, o["reload-dst"])
                    while time.monotonic() - t2 < reload_timeout:
                        st, body = http_status(o["prm"], timeout=5.0)
                        if st == 200 and want in body:
                            break
                        time.sleep(0.001)
                    else:
                        res["reloads_error"] = f"reload {i + 2} not served within {reload_timeout}s"
                        break
                time.sleep(0.5)
                m = mem(p.pid)
                res.update(reloads=more + 1, reloads_hwm_kb=m["hwm_kb"], reloads_rss_kb=m["rss_kb"])
        t1 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        try:
            res["stop_rc"] = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            res["stop_rc"] = "timeout"
        res["stop_s"] = round(time.monotonic() - t1, 4)
        print(json.dumps(res))
        return 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def cmd_load(args):
    o = opts(args)
    pid = int(o["pid"])
    cmd = ["wrk", "-t", o.get("threads", "1"), "-c", o.get("conns", "32"), "-d", o.get("duration", "5") + "s",
           "--timeout", "5s", "-s", o["lua"], o["url"]]
    o0, b0, c0, w0 = tcp_active_opens(), system_busy_ticks(), cpu_ticks(pid), time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_pdeathsig)
    stdout, stderr = p.communicate()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # only wrk has been waited for so far
    o1, b1, c1, w1 = tcp_active_opens(), system_busy_ticks(), cpu_ticks(pid), time.monotonic()
    p.stdout, p.stderr = stdout, stderr
    rec = {"kind": "load", "target": o["target"], "round": int(o["round"])}
    line = [l for l in p.stdout.splitlines() if l.startswith("WRKJSON ")]
    if p.returncode != 0 or not line:
        rec["error"] = f"wrk failed (rc {p.returncode}): {p.stderr.strip() or p.stdout.strip()}"
        print(json.dumps(rec))
        return 1
    w = json.loads(line[0][len("WRKJSON ") :])
    cpu_s = (c1 - c0) / CLK_TCK
    rec.update(w)
    rec["rps"] = w["requests"] / (w["duration_us"] / 1e6)
    rec["server_cpu_s"] = cpu_s
    rec["wall_s"] = w1 - w0
    rec["req_per_cpu_s"] = w["requests"] / cpu_s if cpu_s > 0 else None
    # Where the machine's CPU went: the server, wrk, and everything else (other tenants, the
    # kernel's softirq work not charged to either, this helper). "other" high = noisy round.
    rec["wrk_cpu_s"] = ru.ru_utime + ru.ru_stime
    rec["busy_cpu_s"] = (b1 - b0) / CLK_TCK
    rec["other_cpu_s"] = max(0.0, rec["busy_cpu_s"] - cpu_s - rec["wrk_cpu_s"])
    # System-wide TCP connect()s during the run: wrk opens --conns at start and one more for
    # every connection the server closed under it, so (tcp_opens - conns) counts dropped
    # keep-alive connections (plus anything else connecting meanwhile: run on a quiet machine).
    rec["tcp_opens"] = o1 - o0
    rec["errors"] = sum(w[k] for k in ("err_connect", "err_read", "err_write", "err_timeout", "err_status"))
    print(json.dumps(rec))
    return 0


# ---------------------------------------------------------------- reload


def cmd_reload_latency(args):
    """--src FILE --dst FILE --url URL --expect STRING [--then CMD] [--timeout S]
    Copy SRC next to DST (untimed), then t0, rename it over DST (write-temp-then-rename, as an
    editor or a ConfigMap update does), run CMD if given (`nginx -s reload`), and poll URL every
    1 ms until a 200 carries STRING. Prints {"latency_s", "then_s"} (then_s: time CMD took)."""
    o = opts(args)
    expect = o["expect"].encode()
    timeout = float(o.get("timeout", "30"))
    tmp = o["dst"] + ".bench-tmp"
    with open(o["src"], "rb") as f, open(tmp, "wb") as g:
        g.write(f.read())
    t0 = time.monotonic()
    os.replace(tmp, o["dst"])
    res = {}
    if "then" in o:
        r = subprocess.run(["bash", "-c", o["then"]], capture_output=True, text=True)
        res["then_s"] = round(time.monotonic() - t0, 5)
        if r.returncode != 0:
            res["error"] = f"{o['then']} failed: {r.stderr.strip()}"
            print(json.dumps(res))
            return 1
    while time.monotonic() - t0 < timeout:
        st, body = http_status(o["url"], timeout=1.0)
        if st == 200 and expect in body:
            res["latency_s"] = round(time.monotonic() - t0, 5)
            print(json.dumps(res))
            return 0
        time.sleep(0.001)
    res["error"] = f"new body not served within {timeout}s"
    print(json.dumps(res))
    return 1


# ---------------------------------------------------------------- report


def fmt_int(x):
    return "–" if x is None else f"{x:,.0f}"


def fmt_us(x):
    if x is None:
        return "–"
    return f"{x / 1000:.2f} ms" if x >= 1000 else f"{x:.0f} µs"


def fmt_mb(kb):
    return "–" if kb is None else f"{kb / 1024:.1f} MiB"


def fmt_s(s):
    if s is None:
        return "–"
    return f"{s * 1000:.0f} ms" if s < 10 else f"{s:.1f} s"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def cmd_render(args):
    results_path, meta_path = args
    recs = [json.loads(l) for l in open(results_path) if l.strip()]
    meta = json.load(open(meta_path))
    out = []
    w = out.append
    w(f"# signpost benchmark — {meta.get('date', '')}")
    w("")
    w(f"- machine: {meta.get('nproc')} CPUs, {meta.get('cpu_model')}, {meta.get('mem_total')}, kernel {meta.get('kernel')}")
    w(f"- versions: signpost {meta.get('git_rev')}, {meta.get('rustc')}, {meta.get('nginx_version')}, {meta.get('wrk_version')}")
    w(f"- load: `wrk -t{meta.get('wrk_threads')} -c{meta.get('conns')} -d{meta.get('duration')}s` keep-alive, "
      f"{meta.get('rounds')} interleaved rounds per target, medians reported; wrk shares the machine's "
      f"{meta.get('nproc')} cores with the server, so RPS is capped by the load generator and "
      "**requests per server CPU-second** is the fairer efficiency figure")
    w(f"- request: `GET {meta.get('prm_path')}` ({meta.get('body_bytes')} byte body) for one of "
      f"{meta.get('load_servers'):,} servers; every target sends the same body and the same "
      "Content-Type, Cache-Control, ETag, Access-Control-Allow-Origin")
    sp_threads = f"{meta['signpost_threads']} threads (all kinds) under load" if meta.get("signpost_threads") else "not measured"
    w(f"- signpost: {sp_threads}; hyper_baseline: tokio multi-thread, "
      f"{meta.get('hyper_threads')} workers; nginx: worker_processes {meta.get('nginx_workers')}, "
      "keepalive_requests 1000000 (the default of 1000 would close every wrk connection each 1000 requests), "
      "access_log off, open_file_cache on for the static variant")
    w("")

    loads = [r for r in recs if r.get("kind") == "load" and "error" not in r]
    errs = [r for r in recs if r.get("kind") == "load" and "error" in r]
    targets = []
    for r in loads:
        if r["target"] not in targets:
            targets.append(r["target"])
    # A round is quiet when less than QUIET cores went to anything but the server and wrk. When
    # every target has a quiet round, the medians use quiet rounds only: on a shared machine the
    # disturbed rounds measure the neighbours more than the servers.
    QUIET = 0.25
    def quiet(r):
        return r.get("other_cpu_s", 0) / r["wall_s"] < QUIET
    use_quiet = bool(targets) and all(any(quiet(r) for r in loads if r["target"] == t) for t in targets)
    summary = {}
    for t in targets:
        rs = [r for r in loads if r["target"] == t and (quiet(r) or not use_quiet)]
        summary[t] = {
            "rps": med([r["rps"] for r in rs]),
            "p50": med([r["p50_us"] for r in rs]),
            "p99": med([r["p99_us"] for r in rs]),
            "rpc": med([r["req_per_cpu_s"] for r in rs]),
            "util": med([r["server_cpu_s"] / r["wall_s"] for r in rs]),
            "wrk": med([r.get("wrk_cpu_s", 0) / r["wall_s"] for r in rs]),
            "other": med([r.get("other_cpu_s", 0) / r["wall_s"] for r in rs]),
            "errors": sum(r["errors"] for r in rs),
            "rounds": len(rs),
            "rps_all": [(r["rps"], quiet(r)) for r in loads if r["target"] == t],
        }
    for t, hwm in meta.get("peak_rss_kb", {}).items():
        if t in summary:
            summary[t]["hwm"] = hwm
    nginx_ts = [t for t in targets if t.startswith("nginx")]
    best_nginx = max(nginx_ts, key=lambda t: summary[t]["rps"]) if nginx_ts else None

    w("## (a–c) PRM under keep-alive load")
    w("")
    if use_quiet:
        w(f"Medians over the **quiet rounds** only (marked *q*: under {QUIET} cores of other work); "
          "every round is listed.")
    else:
        w(f"No quiet round for every target (under {QUIET} cores of other work): medians over all rounds, "
          "so treat differences under ~20% as noise.")
    w("")
    w("| target | median RPS | RPS per round | p50 | p99 | req / server CPU-s | CPU cores: server / wrk / other | peak RSS | errors |")
    w("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for t in targets:
        s = summary[t]
        name = t + (" (faster nginx)" if t == best_nginx and len(nginx_ts) > 1 else "")
        name = {"nginx-return": "nginx `return 200`", "nginx-static": "nginx static file"}.get(t, t) + name[len(t):]
        w(f"| {name} | {fmt_int(s['rps'])} | {' / '.join(fmt_int(x) + (' *q*' if q else '') for x, q in s['rps_all'])} | {fmt_us(s['p50'])} | "
          f"{fmt_us(s['p99'])} | {fmt_int(s['rpc'])} | {s['util']:.2f} / {s['wrk']:.2f} / {s['other']:.2f} | "
          f"{fmt_mb(s.get('hwm'))} | {s['errors']} |")
    w("")
    w("*other* CPU is the machine's busy time not charged to the server or wrk (other processes, "
      "unattributed kernel work): when it is high, the round was disturbed. Requests per server "
      "CPU-second also rise when the server is starved (more requests per wake-up), so compare "
      "them between rounds of similar load.")
    w("")
    sp = summary.get("signpost")
    if sp:
        def ratio(other, key):
            o = summary.get(other)
            if not o or not o.get(key) or sp.get(key) is None:
                return "–"
            return f"{sp[key] / o[key]:.2f}"
        w("| ratio | RPS | req / server CPU-s |")
        w("|---|---:|---:|")
        w(f"| signpost / hyper_baseline | {ratio('hyper_baseline', 'rps')} | {ratio('hyper_baseline', 'rpc')} |")
        if best_nginx:
            w(f"| signpost / {best_nginx} | {ratio(best_nginx, 'rps')} | {ratio(best_nginx, 'rpc')} |")
        w("")
    if meta.get("peak_rss_note"):
        w(meta["peak_rss_note"])
        w("")
    for r in errs:
        w(f"- **{r['target']} round {r['round']} failed**: {r['error']}")
    if errs:
        w("")

    scales = [r for r in recs if r.get("kind") == "scale"]
    if scales:
        w("## (d, e) config load, start-up and memory by number of servers")
        w("")
        w("| servers | format | config | `check` wall | `check` peak RSS | `serve` spawn → first PRM 200 | spawn → /readyz 200 | `serve` VmHWM | `serve` VmRSS | reload (file replaced → new PRM) | VmHWM after reload | VmRSS / VmHWM after N reloads | SIGTERM → exit |")
        w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in scales:
            c, s = r.get("check", {}), r.get("serve", {})
            if c.get("rc") not in (0, None):
                cw = f"exit {c.get('rc')}"
            else:
                cw = fmt_s(c.get("wall_s"))
            fmt = r.get("format", "indented")
            if "error" in s:
                w(f"| {r['servers']:,} | {fmt} | {fmt_mb(r['config_bytes'] / 1024)} | {cw} | {fmt_mb(c.get('maxrss_kb'))} | "
                  f"serve failed: {s['error']} | | | | | | | |")
                continue
            stop = fmt_s(s.get("stop_s")) + ("" if s.get("stop_rc") == 0 else f" (exit {s.get('stop_rc')})")
            many = s.get("reloads_error") or (
                f"{fmt_mb(s.get('reloads_rss_kb'))} / {fmt_mb(s.get('reloads_hwm_kb'))} ({s['reloads']})"
                if "reloads" in s else "–")
            w(f"| {r['servers']:,} | {fmt} | {fmt_mb(r['config_bytes'] / 1024)} | {cw} | {fmt_mb(c.get('maxrss_kb'))} | "
              f"{fmt_s(s.get('first_prm_s'))} | {fmt_s(s.get('ready_s'))} | {fmt_mb(s.get('hwm_kb'))} | "
              f"{fmt_mb(s.get('rss_kb'))} | {s.get('reload_error') or fmt_s(s.get('reload_s'))} | "
              f"{fmt_mb(s.get('reload_hwm_kb'))} | {many} | {stop} |")
        w("")
        w("`check` prints every URL served (to /dev/null here), so its time includes rendering that listing. "
          "Peak RSS of `check` is wait4's ru_maxrss (what `/usr/bin/time -v` reports); "
          "`serve` memory is read from /proc/<pid>/status 0.2 s after the first 200.")
        w("")
    st = [r for r in recs if r.get("kind") == "startup"]
    if st:
        w("## (e) start-up to first served request")
        w("")
        w("| target | servers | spawn → first 200 (median of runs) | runs |")
        w("|---|---:|---:|---|")
        for t in sorted({r["target"] for r in st}):
            rs = [r for r in st if r["target"] == t and "first_prm_s" in r]
            w(f"| {t} | {rs[0].get('servers', '–') if rs else '–'} | {fmt_s(med([r['first_prm_s'] for r in rs]))} | "
              f"{', '.join(fmt_s(r['first_prm_s']) for r in rs)} |")
        w("")
    rl = [r for r in recs if r.get("kind") == "reload"]
    if rl:
        w("## reload latency (config replaced → first response with the new document, polled every 1 ms)")
        w("")
        w("| target | servers | median | max | runs |")
        w("|---|---:|---:|---:|---:|")
        for t in [x for x in ("signpost", "nginx") if any(r["target"] == x for r in rl)]:
            rs = [r["latency_s"] for r in rl if r["target"] == t and "latency_s" in r]
            fails = [r for r in rl if r["target"] == t and "error" in r]
            w(f"| {t} | {meta.get('load_servers'):,} | {fmt_s(med(rs))} | {fmt_s(max(rs) if rs else None)} | "
              f"{len(rs)}{f' ({len(fails)} failed)' if fails else ''} |")
        w("")
    ru = [r for r in recs if r.get("kind") == "reload_load"]
    if ru:
        w("## reload under load")
        w("")
        w(f"wrk `-c{meta.get('conns')}` for {meta.get('reload_load_s')} s, config replaced every {meta.get('reload_every')} s "
          "(alternating two variants). wrk counts a keep-alive connection the server closes under it as a "
          "read error (its pipelined next request dies with it; a browser would retry an idempotent GET). "
          "*reconnects*: TCP connects beyond wrk's initial ones (system-wide ActiveOpens delta, so other "
          "processes' connects count too); *applied*: signpost's `/status` generation delta.")
        w("")
        w("| target | reloads | applied | requests | RPS | errors (connect / read / write / timeout / non-2xx) | reconnects | p99 | max latency |")
        w("|---|---:|---:|---:|---:|---|---:|---:|---:|")
        for r in ru:
            if "error" in r:
                w(f"| {r['target']} | | | | | failed: {r['error']} | | | |")
                continue
            w(f"| {r['target']} | {r['reloads']} | {r.get('generations', '–')} | {fmt_int(r['requests'])} | {fmt_int(r['rps'])} | "
              f"{r['err_connect']} / {r['err_read']} / {r['err_write']} / {r['err_timeout']} / {r['err_status']} | "
              f"{r.get('reconnects', '–')} | {fmt_us(r['p99_us'])} | {fmt_us(r['max_us'])} |")
        w("")
    big = [r for r in recs if r.get("kind") == "big"]
    if big:
        w("## (g) the largest scale under load, and a reload mid-run")
        w("")
        w("Same request shape (the middle server's PRM). The reload row replaces the config file 1 s "
          "into the run (the run lasts 4x the unloaded reload time of (d) plus the load duration); "
          "*reload applied after*: seconds from the rename until `/status` showed the new generation "
          "(polled every 0.2 s), while the load ran.")
        w("")
        w("| run | duration | RPS | p50 | p99 | max latency | req / server CPU-s | CPU cores: server / wrk / other | errors | reload applied after |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in big:
            if "error" in r:
                w(f"| {r['target']} | | failed: {r['error']} | | | | | | | |")
                continue
            wall = r["wall_s"]
            if "generations" not in r:
                applied = "–"
            elif r.get("generations", 0) < 1:
                applied = "**not within the run**"
            else:
                applied = f"~{r['applied_after_s']} s" if r.get("applied_after_s", -1) >= 0 else "yes"
            w(f"| {r['target']} | {r['wall_s']:.0f} s | {fmt_int(r['rps'])} | {fmt_us(r['p50_us'])} | {fmt_us(r['p99_us'])} | "
              f"{fmt_us(r['max_us'])} | {fmt_int(r['req_per_cpu_s'])} | {r['server_cpu_s'] / wall:.2f} / "
              f"{r.get('wrk_cpu_s', 0) / wall:.2f} / {r.get('other_cpu_s', 0) / wall:.2f} | {r['errors']} | "
              f"{applied} |")
        w("")
    cg = [r for r in recs if r.get("kind") == "callgrind"]
    if cg:
        w("## (h) instructions per request (callgrind)")
        w("")
        out.extend(callgrind_table(cg))
    for n in meta.get("notes", []):
        w(f"- {n}")
    print("\n".join(out))
    return 0


# ---------------------------------------------------------------- callgrind


def _exchange(sock, request: bytes, buf: bytearray) -> bytes:
    """Sends one request on a keep-alive socket and returns the whole response (head + body)."""
    sock.sendall(request)
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buf[:end]).decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            total = end + 4 + length
            if len(buf) >= total:
                resp = bytes(buf[:total])
                del buf[:total]
                return resp
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("connection closed by the server")
        buf.extend(chunk)


def _split_response(resp: bytes):
    """(status, [(name, value)] without Date/Content-Length, body)."""
    end = resp.index(b"\r\n\r\n")
    lines = resp[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() not in ("date", "content-length"):
            headers.append((k.strip(), v.strip()))
    return status, headers, resp[end + 4 :]


def _normalized(resp: bytes) -> tuple:
    status, headers, body = _split_response(resp)
    return status, sorted((k.lower(), v) for k, v in headers), body


def _spawn_ready(cmd, ready: bytes, log_path, env=None, timeout=300.0):
    """Starts cmd and waits for a line containing `ready` on its stdout or stderr (both go to
    log_path): no HTTP polling, so no request but the measured ones reaches the server."""
    log = open(log_path, "wb")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_pdeathsig)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if p.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited ({p.returncode}): {open(log_path, 'rb').read()[-2000:]!r}")
        with open(log_path, "rb") as f:
            text = f.read()
        if ready in text:
            return p, text
        time.sleep(0.05)
    p.kill()
    raise RuntimeError(f"no {ready!r} from {cmd} within {timeout}s")


def _callgrind_totals(path: str) -> int:
    total = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    if total is None:
        raise RuntimeError(f"no totals in {path}")
    return total


def cmd_callgrind(args):
    """Instructions per keep-alive request, the way issue 15 measured them: each target is started
    under `valgrind --tool=callgrind` twice, served BASE and then BASE+EXTRA sequential requests on
    one keep-alive connection (readiness is read from its log, so nothing else reaches it), and
    its counts dumped (`callgrind_control -d`) before it is stopped with SIGTERM, so shutdown is
    not counted; (Ir(BASE+EXTRA) - Ir(BASE)) / EXTRA cancels start-up and the connection. Every signpost target has a bare-hyper twin (tests/bench/hyper_baseline.rs) that is
    sent the same request bytes and answers the same bytes (status, headers but Date, body), once
    with signpost's connection settings (`--timer`) and, for the PRM and the plain challenge, once
    without. Both use TOKIO_WORKER_THREADS=THREADS workers (default 2)."""
    o = opts(args)
    here = os.path.dirname(os.path.abspath(__file__))
    sp_bin, hy_bin = o["signpost"], o["hyper"]
    n_servers = int(o.get("servers", "1000"))
    base, extra = int(o.get("base", "1000")), int(o.get("extra", "10000"))
    threads = o.get("threads", "2")
    work = o.get("work") or __import__("tempfile").mkdtemp(prefix="signpost-callgrind.")
    os.makedirs(work, exist_ok=True)
    want = set(o["targets"].split(",")) if "targets" in o else None
    env = dict(os.environ, TOKIO_WORKER_THREADS=threads, SIGNPOST_LOG="info", NO_COLOR="1")
    p_pub, p_adm, p_hy = (int(x) for x in _ports(3))
    cfg = os.path.join(work, "callgrind.json")
    subprocess.run([sys.executable, os.path.join(here, "gen_config.py"), str(n_servers),
                    f"http://127.0.0.1:{p_pub}", cfg], check=True)
    mid = f"s{n_servers // 2}"
    host = f"Host: 127.0.0.1:{p_pub}\r\n"

    def req(path, *headers):
        return (f"GET {path} HTTP/1.1\r\n{host}" + "".join(h + "\r\n" for h in headers) + "\r\n").encode()

    # (name, listener, request bytes, plain-hyper twin too)
    cases = [
        ("PRM", "public", req(f"/.well-known/oauth-protected-resource/mcp/{mid}/mcp"), True),
        ("/challenge?resource= (no token)", "admin", req(f"/challenge?resource=/mcp/{mid}/mcp"), True),
        ("/challenge/<path>, gateway 401 (no token)", "admin",
         req(f"/challenge/mcp/{mid}/mcp", "X-Gateway-Status: 401",
             'X-Gateway-WWW-Authenticate: Bearer realm="gateway"'), False),
        ("/challenge/<path>, gateway 403 insufficient_scope (step-up)", "admin",
         req(f"/challenge/mcp/{mid}/mcp", "X-Gateway-Status: 403",
             'X-Gateway-WWW-Authenticate: Bearer realm="gateway", error="insufficient_scope", scope="admin:org"'), False),
    ]
    # No config polling: each poll hashes the whole config file, and the longer run would count
    # more polls than the shorter one.
    sp_cmd = [sp_bin, "serve", "--config", cfg, "--listen", f"127.0.0.1:{p_pub}",
              "--admin-listen", f"127.0.0.1:{p_adm}", "--poll-interval", "0s"]
    # The answers, from a signpost outside valgrind.
    p, _ = _spawn_ready(sp_cmd, b"signpost listening", os.path.join(work, "capture.log"), env=env)
    answers = {}
    try:
        for name, lst, request, _ in cases:
            with socket.create_connection(("127.0.0.1", p_pub if lst == "public" else p_adm)) as s:
                answers[name] = _exchange(s, request, bytearray())
    finally:
        p.terminate()
        p.wait()

    def measure(label, cmd, ready, port, request, n):
        slug = "".join(c if c.isalnum() else "-" for c in label).strip("-")
        out = os.path.join(work, f"callgrind.{slug}.{n}.out")
        for stale in (out, out + ".1"):
            if os.path.exists(stale):
                os.remove(stale)
        vg = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--"] + cmd
        proc, _ = _spawn_ready(vg, ready, out + ".log", env=env)
        try:
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                buf = bytearray()
                last = None
                for _ in range(n):
                    last = _exchange(s, request, buf)
                # Dump the counts now, before shutdown: freeing a snapshot at exit costs a
                # different amount after 1,000 and after 11,000 requests (where the allocator's
                # free chunks lie), which the difference would count as per-request work.
                # callgrind takes the command when the process next runs: one more request
                # wakes it (both runs send it, so it cancels).
                ctl = subprocess.Popen(["callgrind_control", "-d", str(proc.pid)],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                time.sleep(0.5)
                _exchange(s, request, buf)
                said = ctl.communicate(timeout=120)[0].decode(errors="replace")
                if ctl.returncode != 0 or not os.path.exists(out + ".1"):
                    raise RuntimeError(f"callgrind_control -d failed: {said[-500:]}")
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return _callgrind_totals(out + ".1"), last

    rows = []
    for name, lst, request, plain_twin in cases:
        answer = answers[name]
        status, headers, body = _split_response(answer)
        body_f = os.path.join(work, f"body.{len(rows)}")
        open(body_f, "wb").write(body)
        hy_base = [hy_bin, body_f, f"127.0.0.1:{p_hy}", "--threads", threads, "--status", str(status),
                   "--no-default-headers"]
        for k, v in headers:
            hy_base += ["--header", f"{k}: {v}"]
        targets = [("signpost", sp_cmd, b"signpost listening", p_pub if lst == "public" else p_adm),
                   ("hyper+timer", hy_base + ["--timer"], b"listening on", p_hy)]
        if plain_twin:
            targets.append(("hyper", hy_base, b"listening on", p_hy))
        rec = {"kind": "callgrind", "case": name, "request_bytes": len(request), "response_bytes": len(answer),
               "base": base, "extra": extra, "threads": int(threads), "servers": n_servers}
        for tname, cmd, ready, port in targets:
            if want is not None and tname not in want and name not in want:
                continue
            try:
                lo, a1 = measure(f"{name}/{tname}", cmd, ready, port, request, base)
                hi, a2 = measure(f"{name}/{tname}", cmd, ready, port, request, base + extra)
            except (OSError, RuntimeError, subprocess.SubprocessError) as e:
                rec[tname] = {"error": str(e)[:500]}
                continue
            same = _normalized(a1) == _normalized(answer) == _normalized(a2)
            rec[tname] = {"ir_base": lo, "ir_total": hi, "ir_per_request": round((hi - lo) / extra),
                          "same_answer": same}
            print(f"[callgrind] {name} / {tname}: {(hi - lo) / extra:,.0f} Ir/request"
                  + ("" if same else " (ANSWER DIFFERS from signpost's)"), file=sys.stderr)
        sp, ht = rec.get("signpost", {}), rec.get("hyper+timer", {})
        if "ir_per_request" in sp and "ir_per_request" in ht:
            rec["ratio_vs_hyper_timer"] = round(sp["ir_per_request"] / ht["ir_per_request"], 3)
        rows.append(rec)
        print(json.dumps(rec), flush=True)
    print("\n".join(callgrind_table(rows)), file=sys.stderr)
    return 0 if all("error" not in r.get(t, {}) for r in rows for t in ("signpost", "hyper+timer")) else 1


def _ports(n: int):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# Targets of issue 15: PRM <= 1.05x and /challenge <= 1.25x of hyper with the same settings.
CALLGRIND_TARGETS = {"PRM": 1.05}
CALLGRIND_CHALLENGE_TARGET = 1.25


def callgrind_table(rows) -> list:
    out = []
    w = out.append
    if not rows:
        return out
    r0 = rows[0]
    w(f"Instructions per keep-alive request (callgrind; (Ir of {r0['base'] + r0['extra']:,} requests - Ir of "
      f"{r0['base']:,}) / {r0['extra']:,}; one connection, sequential requests; {r0['threads']} tokio workers; "
      f"{r0['servers']:,} servers). *hyper+timer* is bare hyper with signpost's connection settings, "
      "answering the same bytes to the same request bytes; *hyper* the same without the timer settings.")
    w("")
    w("| request | request / response bytes | signpost | hyper+timer | hyper | signpost / hyper+timer | target |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        def cell(t):
            x = r.get(t)
            if x is None:
                return "–"
            if "error" in x:
                return "failed"
            return fmt_int(x["ir_per_request"]) + ("" if x.get("same_answer", True) else " (differs)")
        target = CALLGRIND_TARGETS.get(r["case"], CALLGRIND_CHALLENGE_TARGET if "challenge" in r["case"] else None)
        ratio = r.get("ratio_vs_hyper_timer")
        verdict = "–" if ratio is None or target is None else (f"≤ {target} " + ("met" if ratio <= target else "**missed**"))
        w(f"| {r['case']} | {r['request_bytes']} / {r['response_bytes']} | {cell('signpost')} | {cell('hyper+timer')} | "
          f"{cell('hyper')} | {'–' if ratio is None else f'{ratio:.2f}×'} | {verdict} |")
    w("")
    return out


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "ports":
        print(" ".join(str(p) for p in _ports(int(args[0]))))
        return 0
    if cmd == "wait-http":
        return 0 if wait_http(args[0], float(args[1]) if len(args) > 1 else 60, interval=0.02) else 1
    if cmd == "brief":  # one line for the log from a load record
        r = json.loads(args[0])
        if "error" in r:
            print(r["error"])
        else:
            print(f"{r['rps']:,.0f} rps, p50 {fmt_us(r['p50_us'])}, p99 {fmt_us(r['p99_us'])}, "
                  f"{fmt_int(r['req_per_cpu_s'])} req/server-CPU-s, CPU server/wrk/other {r['server_cpu_s']:.1f}/{r['wrk_cpu_s']:.1f}/{r['other_cpu_s']:.1f} s, "
                  f"errors {r['errors']}, tcp opens {r['tcp_opens']}")
        return 0
    if cmd == "ok-field":  # JSON KEY: exit 1 when the record has KEY (an error field)
        return 1 if args[1] in json.loads(args[0]) else 0
    if cmd == "ok":  # exit 0 iff a load record ran without errors
        r = json.loads(args[0])
        return 0 if "error" not in r and r.get("errors") == 0 else 1
    if cmd == "tag":  # JSON record + key=value pairs (ints stay ints)
        r = json.loads(args[0])
        for kv in args[1:]:
            k, _, v = kv.partition("=")
            try:
                r[k] = int(v)
            except ValueError:
                try:
                    r[k] = float(v)
                except ValueError:
                    r[k] = v
        print(json.dumps(r))
        return 0
    if cmd == "field":  # FILE KEY: one key of a one-record JSON file
        print(json.load(open(args[0]))[args[1]])
        return 0
    if cmd == "median-field":  # RESULTS KEY [k=v filters]
        recs = [json.loads(l) for l in open(args[0]) if l.strip()]
        for kv in args[2:]:
            k, _, v = kv.partition("=")
            recs = [r for r in recs if str(r.get(k)) == v]
        m = med([r.get(args[1]) for r in recs])
        print("–" if m is None else f"{m:.3f}")
        return 0
    if cmd == "quiet":  # [MAX_CORES WAIT_S]: busy cores over 1 s; with WAIT_S, resample until below MAX_CORES
        limit = float(args[0]) if args else 0.0
        deadline = time.monotonic() + (float(args[1]) if len(args) > 1 else 0.0)
        while True:
            b0 = system_busy_ticks()
            time.sleep(1.0)
            busy = (system_busy_ticks() - b0) / CLK_TCK
            if busy <= limit or time.monotonic() >= deadline:
                print(f"{busy:.2f}")
                return 0
    if cmd == "mem":
        print(json.dumps(mem(int(args[0]))))
        return 0
    if cmd == "cpu":
        print(cpu_ticks(int(args[0])) / CLK_TCK)
        return 0
    if cmd == "timed":
        return cmd_timed(args)
    if cmd == "startup":
        return cmd_startup(args)
    if cmd == "load":
        return cmd_load(args)
    if cmd == "reload-latency":
        return cmd_reload_latency(args)
    if cmd == "render":
        return cmd_render(args)
    if cmd == "callgrind":
        return cmd_callgrind(args)
    print(f"benchlib: unknown subcommand {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
