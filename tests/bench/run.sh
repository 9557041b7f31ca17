#!/usr/bin/env bash
# signpost benchmark: one command, one machine, one markdown report.
#
#   tests/bench/run.sh                 # ~3-5 min on 2 cores after the release build
#   BENCH_LONG=1 tests/bench/run.sh    # 15 s x 5 rounds per target, more start-up/reload runs
#
# What it measures (all on this machine, in one run; see tests/bench/results/latest.md):
#   (a) signpost serving the PRM of s500 (one of 1,000 servers) under keep-alive load (wrk)
#   (b) hyper_baseline (tests/bench/hyper_baseline.rs): bare hyper answering the same bytes
#   (c) nginx answering the same bytes, from `return 200 '...'` and as a static file
#       rounds are interleaved (signpost, hyper, nginx-return, nginx-static, rotated each round);
#       median RPS, p50/p99, requests per server CPU-second (/proc/<pid>/stat utime+stime of the
#       server and its children), peak RSS (VmHWM), errors, ratios signpost/hyper, signpost/nginx
#   (d) `signpost check` wall time + peak RSS and `signpost serve` start-up memory at
#       100 / 1,000 / 10,000 / 100,000 servers, each config indented and minified (one line)
#   (e) spawn -> first 200 on the PRM URL (signpost, hyper_baseline, nginx)
#   (f) reload latency (config file replaced -> first response with the new document) and
#       reload under load (failed requests, dropped keep-alive connections) vs `nginx -s reload`;
#       reload latency and peak RSS at each scale of (d)
#   (g) signpost under load at the largest scale, then with the config replaced mid-run
#   (h) exhaustion: silent connections + drip readers, time for a fresh client's PRM
#   (i) instructions per keep-alive request under valgrind's callgrind (deterministic, unlike
#       (a-c)): signpost's PRM, /challenge without a token (query and proxy-header forms) and the
#       step-up, each against bare hyper answering the same bytes with signpost's connection
#       settings (and without them, for the PRM and the plain challenge); benchlib.py callgrind
#       (also runnable alone, see its usage) does the work
#
# Needs: Linux (/proc), bash 5, cargo; wrk, nginx, curl and python3 (stdlib only) are installed
# with apt-get when missing (as root, or through sudo; a temporary policy-rc.d keeps the nginx
# package from starting a system nginx). Nothing is pinned; nginx runs unprivileged-style from a
# temp prefix (-p) on loopback ports; every child is killed on exit.
#
# Environment (defaults in brackets):
#   BENCH_DURATION [5]   seconds per wrk run        BENCH_ROUNDS [3]   rounds per target
#   BENCH_CONNS [32]     wrk connections            BENCH_WRK_THREADS [1]
#   BENCH_SERVERS [1000] servers in the load config BENCH_SCALES ["100 1000 10000 100000"]
#   BENCH_STARTUP_RUNS [5]  start-up runs per target
#   BENCH_RELOAD [1]     0 skips (f)               BENCH_RELOAD_RUNS [5]  reload-latency runs
#   BENCH_RELOADS_IN_A_ROW [6]  reloads of each scale's serve in (d), alternating two configs:
#                        memory after the last shows whether it stays bounded
#   BENCH_RELOAD_LOAD_S [10] load seconds during reload-under-load, reloading every
#   BENCH_RELOAD_EVERY [0.5] seconds
#   BENCH_THREADS [nproc] hyper_baseline workers and nginx worker_processes (signpost uses its
#                        own default; its thread count is reported)
#   BENCH_QUIET_WAIT [0] before each load round, wait up to this many seconds for the machine's
#                        background load (other processes, e.g. a cargo build) to drop below
#                        0.25 cores; the background load is reported either way
#   BENCH_TIMER_BASELINE=1  also load a hyper_baseline with signpost's connection settings
#                        (`--timer`: tokio timer + 10 s header-read timeout), to tell what those
#                        cost apart from what routing costs
#   BENCH_BIG_LOAD [1]   0 skips (g): load at the largest scale, then a reload mid-run
#   BENCH_EXHAUST [1]    0 skips (h): silent connections + drip readers, a fresh client's wait
#                        (BENCH_EXHAUST_SILENT [10000], BENCH_EXHAUST_DRIP [200])
#   BENCH_CALLGRIND [1]  0 skips (i)               BENCH_CALLGRIND_BASE [1000]  requests of the
#   BENCH_CALLGRIND_EXTRA [10000] short run and the extra ones of the long run (Ir per request =
#                        the difference / EXTRA)   BENCH_CALLGRIND_THREADS [2] tokio workers
#   BENCH_LONG=1         duration 15, rounds 5, start-up runs 10, reload runs 10, reload load 30 s
#   BENCH_SKIP_BUILD=1   use existing binaries      BENCH_KEEP=1  keep the temp dir (logs, configs)
#   SIGNPOST_BIN, HYPER_BASELINE_BIN   binaries to use (default: cargo's target/release)
#   BENCH_NO_SIGNPOST=1  develop the harness without signpost: synthetic body, (b)+(c) only
#   BENCH_OUT [tests/bench/results/latest.md]
#
# Exit status: 0 when every measurement ran; 1 when any failed (the report still says which).
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LIB="$HERE/benchlib.py"
NPROC=$(nproc)

if [[ "${BENCH_LONG:-0}" == 1 ]]; then
  : "${BENCH_DURATION:=15}" "${BENCH_ROUNDS:=5}" "${BENCH_STARTUP_RUNS:=10}" "${BENCH_RELOAD_RUNS:=10}" "${BENCH_RELOAD_LOAD_S:=30}"
fi
DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-32}
WRK_THREADS=${BENCH_WRK_THREADS:-1}
LOAD_SERVERS=${BENCH_SERVERS:-1000}
SCALES=${BENCH_SCALES:-"100 1000 10000 100000"}
STARTUP_RUNS=${BENCH_STARTUP_RUNS:-5}
RELOAD=${BENCH_RELOAD:-1}
RELOADS_IN_A_ROW=${BENCH_RELOADS_IN_A_ROW:-6}
SP_RELOADS=$RELOAD   # cleared when signpost is seen not to reload
RELOAD_RUNS=${BENCH_RELOAD_RUNS:-5}
RELOAD_LOAD_S=${BENCH_RELOAD_LOAD_S:-10}
RELOAD_EVERY=${BENCH_RELOAD_EVERY:-0.5}
THREADS=${BENCH_THREADS:-$NPROC}
NO_SIGNPOST=${BENCH_NO_SIGNPOST:-0}
OUT=${BENCH_OUT:-$HERE/results/latest.md}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SIGNPOST_BIN=${SIGNPOST_BIN:-$TARGET_DIR/release/signpost}
HYPER_BIN=${HYPER_BASELINE_BIN:-$TARGET_DIR/release/examples/hyper_baseline}
PRM_SERVER=s$((LOAD_SERVERS / 2))
PRM_PATH="/.well-known/oauth-protected-resource/mcp/$PRM_SERVER/mcp"

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf '[bench] FATAL: %s\n' "$*" >&2; exit 1; }
FAILED=0
fail() { printf '[bench] ERROR: %s\n' "$*" >&2; FAILED=1; }

# ------------------------------------------------------------------ cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/signpost-bench.XXXXXX")
chmod 755 "$WORK"   # nginx workers run as nobody when the master is root
PIDS=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM ERR
  local pid
  if [[ -n ${FG_PID:-} ]]; then PIDS+=("$FG_PID"); fi
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    (( alive )) || break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [[ "${BENCH_KEEP:-0}" == 1 || $rc -ne 0 ]]; then
    log "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'printf "[bench] command failed (exit %s) at %s:%s: %s\n" "$?" "${BASH_SOURCE[0]}" "$LINENO" "$BASH_COMMAND" >&2' ERR

# Start a long-lived child; its pid lands in $SPAWNED and in PIDS for the trap.
spawn() {
  local logf=$1; shift
  "$@" >"$logf" 2>&1 &
  SPAWNED=$!
  PIDS+=("$SPAWNED")
}
# Stop a child started by spawn (TERM, then KILL after 10 s).
# forget PID: drop a reaped child from PIDS, so the exit trap never signals a reused pid.
forget() {
  local i
  for i in "${!PIDS[@]}"; do if [[ ${PIDS[$i]} == "$1" ]]; then unset 'PIDS[i]'; fi; done
}
stop() {
  local pid=$1
  forget "$pid"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
# pyrun VAR SUBCOMMAND ARGS...: run a benchlib step in the background and wait for it, so that
# INT/TERM interrupt the wait and clean up at once (bash defers traps while a foreground command
# or a $(...) runs); its stdout lands in VAR.
FG_PID=
pyrun() {
  local __var=$1; shift
  python3 "$LIB" "$@" >"$WORK/pyrun.out" &
  FG_PID=$!
  local rc=0
  wait "$FG_PID" || rc=$?
  FG_PID=
  printf -v "$__var" '%s' "$(<"$WORK/pyrun.out")"
  return $rc
}
ports() { python3 "$LIB" ports "$1"; }
wait_http() { # URL TIMEOUT PID LOG
  python3 "$LIB" wait-http "$1" "$2" && return 0
  kill -0 "$3" 2>/dev/null && die "no 200 from $1 within $2 s (log: $4)"
  die "process exited before $1 answered; log $4:"$'\n'"$(tail -20 "$4")"
}

# ------------------------------------------------------------------ dependencies
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx)
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3)
if [[ ${BENCH_CALLGRIND:-1} == 1 && ${BENCH_NO_SIGNPOST:-0} != 1 ]]; then
  command -v valgrind >/dev/null || need_apt+=(valgrind)
fi
if (( ${#need_apt[@]} )); then
  SUDO=
  if [[ $EUID -ne 0 ]]; then command -v sudo >/dev/null || die "need ${need_apt[*]}: install them or run as root"; SUDO=sudo; fi
  log "installing ${need_apt[*]} with apt-get"
  # policy-rc.d 101 keeps the Debian package from starting a system nginx on port 80.
  rcd_created=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod 755 /usr/sbin/policy-rc.d && rcd_created=1
  fi
  $SUDO apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null \
    || die "apt-get install ${need_apt[*]} failed"
  if (( rcd_created )); then $SUDO rm -f /usr/sbin/policy-rc.d; fi
fi
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)

# ------------------------------------------------------------------ build
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  command -v cargo >/dev/null || die "cargo not found (or set BENCH_SKIP_BUILD=1 with SIGNPOST_BIN/HYPER_BASELINE_BIN)"
  if [[ $NO_SIGNPOST == 1 ]]; then
    log "building hyper_baseline (release)"
    (cd "$ROOT" && cargo build --release --example hyper_baseline) || die "cargo build failed"
  else
    log "building signpost and hyper_baseline (release)"
    (cd "$ROOT" && cargo build --release --bin signpost --example hyper_baseline) || die "cargo build failed"
  fi
fi
[[ -x "$HYPER_BIN" ]] || die "no hyper_baseline binary at $HYPER_BIN"
[[ $NO_SIGNPOST == 1 || -x "$SIGNPOST_BIN" ]] || die "no signpost binary at $SIGNPOST_BIN"

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
cat >"$WORK/report.lua" <<'EOF'
-- Only done(): wrk keeps its static-request fast path.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
EOF

# ------------------------------------------------------------------ nginx config
# HEADERSFILE: "Name: value" lines (Content-Type is set with default_type).
# write_nginx_conf DIR PORT_RETURN PORT_STATIC BODYFILE HEADERSFILE [CONF_OUT]
# With CONF_OUT only that file is written (a reload variant); else DIR/nginx.conf and the static file.
write_nginx_conf() {
  local dir=$1 p_ret=$2 p_static=$3 body=$4 hdrs=$5 conf=${6:-}
  if [[ -z $conf ]]; then
    conf=$dir/nginx.conf
    mkdir -p "$dir/tmp" "$dir/www$(dirname "$PRM_PATH")"
    cp "$body" "$dir/www$PRM_PATH"
    chmod -R a+rX "$dir"
  fi
  python3 - "$dir" "$p_ret" "$p_static" "$body" "$hdrs" "$THREADS" "$PRM_PATH" >"$conf.tmp" <<'EOF'
import sys
d, p_ret, p_static, body_f, hdrs_f, workers, prm = sys.argv[1:]
body = open(body_f, encoding="utf-8").read()
add = []
for line in open(hdrs_f):
    name, _, value = line.rstrip("\r\n").partition(":")
    if name.lower() == "content-type":
        continue
    value = value.strip().replace("\\", "\\\\").replace("'", "\\'")
    add.append(f"      add_header {name} '{value}' always;")
add = "\n".join(add)
if "$" in body:   # nginx would expand it as a variable
    ret = "      return 500 'body contains $, cannot be inlined';"
else:
    ret = "      return 200 '" + body.replace("\\", "\\\\").replace("'", "\\'") + "';"
print(f"""
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  server_tokens off;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  tcp_nodelay on;
  sendfile on;
  types {{ }}
  default_type application/json;
  server {{
    listen 127.0.0.1:{p_ret} reuseport;
    location / {{
{add}
{ret}
    }}
  }}
  server {{
    listen 127.0.0.1:{p_static} reuseport;
    root {d}/www;
    etag off;
    open_file_cache max=64 inactive=60s;
    open_file_cache_valid 60s;
    location / {{
{add}
    }}
  }}
}}""")
EOF
  mv "$conf.tmp" "$conf"
}

# ------------------------------------------------------------------ metadata
meta() { # key json-value
  python3 - "$WORK/meta.json" "$1" "$2" <<'EOF'
import json, os, sys
p, k, v = sys.argv[1:]
m = json.load(open(p)) if os.path.exists(p) else {}
m[k] = json.loads(v)
json.dump(m, open(p, "w"), indent=1)
EOF
}
jstr() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
meta date "$(jstr "$(date -u +%Y-%m-%dT%H:%MZ)")"
meta nproc "$NPROC"
meta cpu_model "$(jstr "$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)")"
meta mem_total "$(jstr "$(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)")"
meta kernel "$(jstr "$(uname -r)")"
meta git_rev "$(jstr "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet HEAD -- src 2>/dev/null || echo '+dirty')")"
meta rustc "$(jstr "$(rustc --version 2>/dev/null | cut -d' ' -f1-2 || echo rustc?)")"
meta nginx_version "$(jstr "$("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //')")"
meta wrk_version "$(jstr "$( (wrk -v 2>&1 || true) | head -1 | awk '{print "wrk " $2}')")"
meta duration "$DURATION"; meta rounds "$ROUNDS"; meta conns "$CONNS"; meta wrk_threads "$WRK_THREADS"
meta load_servers "$LOAD_SERVERS"; meta prm_path "$(jstr "$PRM_PATH")"
meta hyper_threads "$THREADS"; meta nginx_workers "$THREADS"; meta reload_load_s "$RELOAD_LOAD_S"; meta reload_every "$RELOAD_EVERY"
NOTES=()

# ------------------------------------------------------------------ (a-c) load
read -r P_SP A_SP P_HY P_NR P_NS P_HT < <(ports 6)
BODY=$WORK/prm.body
HDRS=$WORK/prm.headers
if [[ $NO_SIGNPOST == 1 ]]; then
  log "BENCH_NO_SIGNPOST=1: synthetic PRM body, signpost not measured"
  printf '{"resource":"http://127.0.0.1:%s/mcp/%s/mcp","authorization_servers":["http://127.0.0.1:%s/%s"],"bearer_methods_supported":["header"],"scopes_supported":["read:%s","offline_access"],"resource_name":"Server %s (variant 0)"}' \
    "$P_SP" "$PRM_SERVER" "$P_SP" "$PRM_SERVER" "$PRM_SERVER" "$((LOAD_SERVERS / 2))" >"$BODY"
  printf 'Content-Type: application/json\nCache-Control: public, max-age=300\nETag: "0123456789abcdef"\nAccess-Control-Allow-Origin: *\n' >"$HDRS"
  NOTES+=("BENCH_NO_SIGNPOST=1: synthetic body, signpost not measured")
else
  CFG=$WORK/load.json
  python3 "$HERE/gen_config.py" "$LOAD_SERVERS" "http://127.0.0.1:$P_SP" "$CFG"
  log "starting signpost ($LOAD_SERVERS servers) on :$P_SP, admin :$A_SP"
  spawn "$WORK/signpost-load.log" "$SIGNPOST_BIN" serve --config "$CFG" --listen "127.0.0.1:$P_SP" --admin-listen "127.0.0.1:$A_SP"
  SP_PID=$SPAWNED
  wait_http "http://127.0.0.1:$A_SP/readyz" 120 "$SP_PID" "$WORK/signpost-load.log"
  code=$(curl -sS -o "$BODY" -D "$WORK/prm.raw" -w '%{http_code}' "http://127.0.0.1:$P_SP$PRM_PATH") || die "curl to signpost failed"
  [[ $code == 200 ]] || die "signpost answered $code for $PRM_PATH: $(cat "$BODY")"
  tr -d '\r' <"$WORK/prm.raw" | grep -iE '^(content-type|cache-control|etag|access-control-allow-origin):' >"$HDRS" \
    || die "signpost's PRM response lacks the expected headers"
  [[ $(wc -l <"$HDRS") -eq 4 ]] || die "expected Content-Type, Cache-Control, ETag, Access-Control-Allow-Origin from signpost, got: $(cat "$HDRS")"
fi
log "PRM body: $(wc -c <"$BODY") bytes; headers: $(tr '\n' '|' <"$HDRS")"
meta body_bytes "$(wc -c <"$BODY")"

hy_args=()
while IFS= read -r h; do hy_args+=(--header "$h"); done <"$HDRS"
spawn "$WORK/hyper.log" "$HYPER_BIN" "$BODY" "127.0.0.1:$P_HY" --threads "$THREADS" "${hy_args[@]}"
HY_PID=$SPAWNED
if [[ ${BENCH_TIMER_BASELINE:-0} == 1 ]]; then
  spawn "$WORK/hyper-timer.log" "$HYPER_BIN" "$BODY" "127.0.0.1:$P_HT" --threads "$THREADS" --timer "${hy_args[@]}"
  HT_PID=$SPAWNED
fi
NGX=$WORK/nginx
write_nginx_conf "$NGX" "$P_NR" "$P_NS" "$BODY" "$HDRS"
"$NGINX_BIN" -t -q -p "$NGX" -e "$NGX/error.log" -c "$NGX/nginx.conf" 2>"$WORK/nginx-t.log" || die "nginx -t failed: $(cat "$WORK/nginx-t.log")"
spawn "$WORK/nginx.log" "$NGINX_BIN" -p "$NGX" -e "$NGX/error.log" -c "$NGX/nginx.conf"
NG_PID=$SPAWNED
wait_http "http://127.0.0.1:$P_HY$PRM_PATH" 30 "$HY_PID" "$WORK/hyper.log"
if [[ ${BENCH_TIMER_BASELINE:-0} == 1 ]]; then
  wait_http "http://127.0.0.1:$P_HT$PRM_PATH" 30 "$HT_PID" "$WORK/hyper-timer.log"
fi
wait_http "http://127.0.0.1:$P_NR$PRM_PATH" 30 "$NG_PID" "$NGX/error.log"
wait_http "http://127.0.0.1:$P_NS$PRM_PATH" 30 "$NG_PID" "$NGX/error.log"

# Same bytes everywhere? Compare bodies and the four headers.
declare -A URL=([hyper_baseline]="http://127.0.0.1:$P_HY$PRM_PATH" [nginx-return]="http://127.0.0.1:$P_NR$PRM_PATH" [nginx-static]="http://127.0.0.1:$P_NS$PRM_PATH")
declare -A PID=([hyper_baseline]=$HY_PID [nginx-return]=$NG_PID [nginx-static]=$NG_PID)
TARGETS=(hyper_baseline nginx-return nginx-static)
if [[ ${BENCH_TIMER_BASELINE:-0} == 1 ]]; then
  URL[hyper_baseline+timer]="http://127.0.0.1:$P_HT$PRM_PATH"; PID[hyper_baseline+timer]=$HT_PID
  TARGETS=(hyper_baseline hyper_baseline+timer nginx-return nginx-static)
fi
if [[ $NO_SIGNPOST != 1 ]]; then
  URL[signpost]="http://127.0.0.1:$P_SP$PRM_PATH"; PID[signpost]=$SP_PID
  TARGETS=(signpost "${TARGETS[@]}")
fi
for t in "${TARGETS[@]}"; do
  curl -sS -o "$WORK/check.body" -D "$WORK/check.raw" "${URL[$t]}" || die "curl $t failed"
  cmp -s "$BODY" "$WORK/check.body" || die "$t does not answer the same body"
  got=$(tr -d '\r' <"$WORK/check.raw" | grep -iE '^(content-type|cache-control|etag|access-control-allow-origin):' | tr 'A-Z' 'a-z' | sort)
  want=$(tr 'A-Z' 'a-z' <"$HDRS" | sort)
  [[ "$got" == "$want" ]] || die "$t headers differ from signpost's:"$'\n'"$got"$'\n'"vs"$'\n'"$want"
  extra=$(tr -d '\r' <"$WORK/check.raw" | sed 1d | grep -viE '^(content-type|cache-control|etag|access-control-allow-origin|content-length|date|connection):' | grep -v '^$' | cut -d: -f1 | tr '\n' ' ' || true)
  log "$t: response $(wc -c <"$WORK/check.raw") header bytes; other headers: ${extra:-none}"
  if [[ -n $extra ]]; then NOTES+=("$t also sends: $extra(header bytes per response: $(wc -c <"$WORK/check.raw"))"); fi
done
[[ $NO_SIGNPOST == 1 ]] || meta signpost_threads "$(python3 "$LIB" mem "$SP_PID" | python3 -c 'import json,sys; print(json.load(sys.stdin)["threads"])')"

bg=$(python3 "$LIB" quiet)
log "background load before the load phase: $bg cores busy (of $NPROC)"
if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0.25 else 1)" "$bg"; then
  log "WARNING: the machine is not idle ($bg cores busy); results will be noisy (see the 'other' CPU column; BENCH_QUIET_WAIT=60 waits for quiet)"
  NOTES+=("the machine was not idle before the load phase: $bg of $NPROC cores busy with other work")
fi
QUIET_WAIT=${BENCH_QUIET_WAIT:-0}
log "load: ${#TARGETS[@]} targets x $ROUNDS rounds x ${DURATION}s (wrk -t$WRK_THREADS -c$CONNS), 1 s warm-up each"
for t in "${TARGETS[@]}"; do
  wrk -t "$WRK_THREADS" -c "$CONNS" -d 1s "${URL[$t]}" >/dev/null || die "wrk warm-up against $t failed"
done
n=${#TARGETS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  for ((i = 0; i < n; i++)); do
    t=${TARGETS[$(((i + r - 1) % n))]}   # rotate the order so no target always runs first
    if [[ $QUIET_WAIT != 0 ]]; then
      bg=$(python3 "$LIB" quiet 0.25 "$QUIET_WAIT")
      if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0.25 else 1)" "$bg"; then
        log "still $bg cores busy after ${QUIET_WAIT}s; measuring anyway"
      fi
    fi
    pyrun line load --target "$t" --round "$r" --pid "${PID[$t]}" --url "${URL[$t]}" --lua "$WORK/report.lua" \
      --duration "$DURATION" --conns "$CONNS" --threads "$WRK_THREADS" || fail "load $t round $r: $line"
    echo "$line" >>"$RESULTS"
    log "round $r $t: $(python3 "$LIB" brief "$line")"
    python3 "$LIB" ok "$line" || fail "$t round $r had errors"
  done
done
hwm() { python3 "$LIB" mem "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["hwm_kb"])'; }
peak='{'
for t in "${TARGETS[@]}"; do peak+="\"$t\":$(hwm "${PID[$t]}"),"; done
peak="${peak%,}"; peak+="}"
meta peak_rss_kb "$peak"
meta peak_rss_note "$(jstr "Peak RSS is VmHWM after all rounds; for nginx it is the sum over master + $THREADS workers (shared pages counted in each), and one nginx instance served both variants.")"

# ------------------------------------------------------------------ (f) reload (needs the running servers)
if [[ $NO_SIGNPOST != 1 && $RELOAD == 1 ]]; then
  # Each variant k changes only s500's resource_name to "Server 500 (variant k)" (gen_config.py);
  # nginx gets the same new body. Latency: from just before the file rename / `nginx -s reload`
  # to the first 200 carrying the new text, polled every 1 ms.
  grep -q 'variant 0' "$BODY" || { fail "signpost's PRM for $PRM_SERVER lacks resource_name 'variant 0'; reload tests skipped"; RELOAD=0; }
fi
if [[ $NO_SIGNPOST != 1 && $RELOAD == 1 ]]; then
  status_gen() { curl -fsS "http://127.0.0.1:$A_SP/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])'; }
  # Variants are generated up front so that no generator runs inside a timed window.
  VAR=$WORK/variants
  mkdir -p "$VAR"
  NGINX_RELOAD="'$NGINX_BIN' -p '$NGX' -e '$NGX/error.log' -c '$NGX/nginx.conf' -s reload"
  variant_ids=(1001 1002)
  for ((k = 1; k <= RELOAD_RUNS; k++)); do variant_ids+=("$k"); done
  for k in "${variant_ids[@]}"; do
    python3 "$HERE/gen_config.py" "$LOAD_SERVERS" "http://127.0.0.1:$P_SP" "$VAR/signpost-$k.json" --variant "$k"
    sed "s/variant 0)/variant $k)/" "$BODY" >"$VAR/body-$k"
    write_nginx_conf "$NGX" "$P_NR" "$P_NS" "$VAR/body-$k" "$HDRS" "$VAR/nginx-$k.conf"
  done
  gen0=$(status_gen)
  log "reload latency: $RELOAD_RUNS runs each (signpost generation $gen0)"
  for ((k = 1; k <= RELOAD_RUNS; k++)); do
    if ((SP_RELOADS)); then
      pyrun line reload-latency --timeout 15 --src "$VAR/signpost-$k.json" --dst "$CFG" --url "${URL[signpost]}" --expect "variant $k)" \
        || { fail "signpost did not serve the replaced config: $line; skipping signpost's reload measurements"; SP_RELOADS=0; }
      python3 "$LIB" tag "$line" kind=reload target=signpost >>"$RESULTS"
    fi
    pyrun line reload-latency --src "$VAR/nginx-$k.conf" --dst "$NGX/nginx.conf" --then "$NGINX_RELOAD" \
      --url "${URL[nginx-return]}" --expect "variant $k)" || fail "nginx reload $k: $line"
    python3 "$LIB" tag "$line" kind=reload target=nginx >>"$RESULTS"
    sleep 0.3
  done
  gen1=$(status_gen)
  log "signpost generation $gen0 -> $gen1 after $RELOAD_RUNS config replacements"
  NOTES+=("reload latency: signpost's /status generation went $gen0 -> $gen1 over $RELOAD_RUNS file replacements (write-temp-then-rename); nginx's includes running \`nginx -s reload\` (median $(python3 "$LIB" median-field "$RESULTS" then_s kind=reload target=nginx) s of it)")

  # Reload under load: wrk for RELOAD_LOAD_S s while the config is replaced every RELOAD_EVERY s,
  # alternating two pre-generated variants (cp to a temp name, then rename over the live file).
  reload_targets=(nginx-return)
  if ((SP_RELOADS)); then reload_targets=(signpost nginx-return); fi
  for t in "${reload_targets[@]}"; do
    gen_before=$(status_gen)
    python3 "$LIB" load --target "$t" --round 0 --pid "${PID[$t]}" --url "${URL[$t]}" --lua "$WORK/report.lua" \
      --duration "$RELOAD_LOAD_S" --conns "$CONNS" --threads "$WRK_THREADS" >"$WORK/reload-load.json" &
    LPID=$!
    PIDS+=("$LPID")
    sleep 0.5
    nre=0
    end=$((SECONDS + RELOAD_LOAD_S - 1))
    while ((SECONDS < end)); do
      k=$((1001 + nre % 2)); nre=$((nre + 1))
      if [[ $t == signpost ]]; then
        cp "$VAR/signpost-$k.json" "$CFG.tmp" && mv "$CFG.tmp" "$CFG"
      else
        cp "$VAR/nginx-$k.conf" "$NGX/nginx.conf.tmp" && mv "$NGX/nginx.conf.tmp" "$NGX/nginx.conf"
        bash -c "$NGINX_RELOAD" || fail "nginx -s reload failed"
      fi
      sleep "$RELOAD_EVERY"
    done
    wait "$LPID" || fail "reload under load ($t): wrk run failed: $(cat "$WORK/reload-load.json")"
    forget "$LPID"
    gen_after=$(status_gen)
    extra=(kind=reload_load reloads="$nre" reconnects="$(( $(python3 "$LIB" field "$WORK/reload-load.json" tcp_opens) - CONNS ))")
    if [[ $t == signpost ]]; then extra+=(generations="$((gen_after - gen_before))"); else extra+=(target="nginx (-s reload)"); fi
    python3 "$LIB" tag "$(cat "$WORK/reload-load.json")" "${extra[@]}" >>"$RESULTS"
    log "reload under load $t: $nre reloads, $(python3 "$LIB" brief "$(tail -1 "$RESULTS")")"
  done
fi

# ------------------------------------------------------------------ stop the load servers
for p in "${PID[@]}"; do stop "$p"; done

# ------------------------------------------------------------------ (e) start-up, small
startup() { # target servers prm-url ready-url -- cmd
  local t=$1 n=$2 prm=$3 ready=$4; shift 5
  local line
  pyrun line startup --prm "$prm" --ready "$ready" --timeout 120 --log "$WORK/startup-$t.log" -- "$@" \
    || { fail "start-up $t: $line"; return 0; }
  echo "$line" | python3 -c 'import json,sys; r=json.load(sys.stdin); r.update(kind="startup", target=sys.argv[1], servers=int(sys.argv[2])); print(json.dumps(r))' "$t" "$n" >>"$RESULTS"
}
log "start-up: $STARTUP_RUNS runs per target"
for ((i = 1; i <= STARTUP_RUNS; i++)); do
  read -r p1 p2 p3 p4 < <(ports 4)
  if [[ $NO_SIGNPOST != 1 ]]; then
    python3 "$HERE/gen_config.py" "$LOAD_SERVERS" "http://127.0.0.1:$p1" "$WORK/startup.json"
    startup signpost "$LOAD_SERVERS" "http://127.0.0.1:$p1$PRM_PATH" "http://127.0.0.1:$p2/readyz" -- \
      "$SIGNPOST_BIN" serve --config "$WORK/startup.json" --listen "127.0.0.1:$p1" --admin-listen "127.0.0.1:$p2"
  fi
  startup hyper_baseline 1 "http://127.0.0.1:$p3$PRM_PATH" "http://127.0.0.1:$p3$PRM_PATH" -- \
    "$HYPER_BIN" "$BODY" "127.0.0.1:$p3" --threads "$THREADS" "${hy_args[@]}"
  write_nginx_conf "$WORK/nginx-s" "$p4" "$(ports 1)" "$BODY" "$HDRS"
  startup nginx-return 1 "http://127.0.0.1:$p4$PRM_PATH" "http://127.0.0.1:$p4$PRM_PATH" -- \
    "$NGINX_BIN" -p "$WORK/nginx-s" -e "$WORK/nginx-s/error.log" -c "$WORK/nginx-s/nginx.conf"
done

# ------------------------------------------------------------------ (d) scales
if [[ $NO_SIGNPOST != 1 ]]; then
  for n in $SCALES; do
    read -r p1 p2 < <(ports 2)
    f=$WORK/scale-$n.json
    python3 "$HERE/gen_config.py" "$n" "http://127.0.0.1:$p1" "$f"
    python3 "$HERE/gen_config.py" "$n" "http://127.0.0.1:$p1" "$f.v1" --variant 1
    cp "$f" "$f.v0"
    log "scale $n servers ($(du -h "$f" | cut -f1)): check"
    chk='' srv=''
    pyrun chk timed --stderr "$WORK/check-$n.err" -- "$SIGNPOST_BIN" check --config "$f" || true
    [[ $(echo "$chk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rc"])') == 0 ]] \
      || fail "signpost check at $n servers: $chk: $(head -5 "$WORK/check-$n.err")"
    log "scale $n servers: serve start-up"
    reload_opts=()
    if [[ $SP_RELOADS == 1 ]]; then
      reload_opts=(--reload-src "$f.v1" --reload-dst "$f" --expect "variant 1)"
                   --reloads "$RELOADS_IN_A_ROW" --reload-original "$f.v0" --original-expect "variant 0)")
    fi
    pyrun srv startup --timeout 300 --log "$WORK/serve-$n.log" "${reload_opts[@]}" \
      --prm "http://127.0.0.1:$p1/.well-known/oauth-protected-resource/mcp/s$((n / 2))/mcp" --ready "http://127.0.0.1:$p2/readyz" -- \
      "$SIGNPOST_BIN" serve --config "$f" --listen "127.0.0.1:$p1" --admin-listen "127.0.0.1:$p2" \
      || fail "signpost serve at $n servers: $srv: $(tail -5 "$WORK/serve-$n.log")"
    python3 - "$n" "$(stat -c %s "$f")" "$chk" "$srv" indented >>"$RESULTS" <<'EOF'
import json, sys
n, size, chk, srv, fmt = sys.argv[1:]
print(json.dumps({"kind": "scale", "servers": int(n), "format": fmt, "config_bytes": int(size), "check": json.loads(chk),
                  "serve": json.loads(srv) if srv.strip() else {"error": "no output"}}))
EOF
    log "scale $n: $(tail -1 "$RESULTS")"
    python3 "$LIB" ok-field "$srv" reload_error || fail "signpost did not reload at $n servers: $srv"
    # The same config on one line (jq -c, Helm toJson): loading must be no slower than indented.
    python3 "$HERE/gen_config.py" "$n" "http://127.0.0.1:$p1" "$f" --minified
    log "scale $n servers, minified ($(du -h "$f" | cut -f1)): check and serve start-up"
    chk='' srv=''
    pyrun chk timed --stderr "$WORK/check-$n-min.err" -- "$SIGNPOST_BIN" check --config "$f" || true
    [[ $(echo "$chk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rc"])') == 0 ]] \
      || fail "signpost check at $n servers, minified: $chk: $(head -5 "$WORK/check-$n-min.err")"
    pyrun srv startup --timeout 300 --log "$WORK/serve-$n-min.log" \
      --prm "http://127.0.0.1:$p1/.well-known/oauth-protected-resource/mcp/s$((n / 2))/mcp" --ready "http://127.0.0.1:$p2/readyz" -- \
      "$SIGNPOST_BIN" serve --config "$f" --listen "127.0.0.1:$p1" --admin-listen "127.0.0.1:$p2" \
      || fail "signpost serve at $n servers, minified: $srv: $(tail -5 "$WORK/serve-$n-min.log")"
    python3 - "$n" "$(stat -c %s "$f")" "$chk" "$srv" minified >>"$RESULTS" <<'EOF'
import json, sys
n, size, chk, srv, fmt = sys.argv[1:]
print(json.dumps({"kind": "scale", "servers": int(n), "format": fmt, "config_bytes": int(size), "check": json.loads(chk),
                  "serve": json.loads(srv) if srv.strip() else {"error": "no output"}}))
EOF
    log "scale $n minified: $(tail -1 "$RESULTS")"
    rm -f "$f" "$f.v1"
  done
fi

# ------------------------------------------------------------------ (g) the largest scale under load
# Does routing slow down with 100x the servers, and what does a reload that takes seconds do to
# traffic already flowing? Load the largest config, measure, then replace it mid-run.
BIG=0
for n in $SCALES; do if ((n > BIG)); then BIG=$n; fi; done
if [[ $NO_SIGNPOST != 1 && ${BENCH_BIG_LOAD:-1} == 1 && $BIG -gt 0 ]]; then
  read -r p1 p2 < <(ports 2)
  f=$WORK/big.json
  python3 "$HERE/gen_config.py" "$BIG" "http://127.0.0.1:$p1" "$f"
  python3 "$HERE/gen_config.py" "$BIG" "http://127.0.0.1:$p1" "$f.v1" --variant 1
  big_url="http://127.0.0.1:$p1/.well-known/oauth-protected-resource/mcp/s$((BIG / 2))/mcp"
  log "largest scale under load: $BIG servers"
  spawn "$WORK/signpost-big.log" "$SIGNPOST_BIN" serve --config "$f" --listen "127.0.0.1:$p1" --admin-listen "127.0.0.1:$p2"
  BIG_PID=$SPAWNED
  wait_http "$big_url" 300 "$BIG_PID" "$WORK/signpost-big.log"
  wrk -t "$WRK_THREADS" -c "$CONNS" -d 1s "$big_url" >/dev/null
  pyrun line load --target "signpost ($BIG servers)" --round 1 --pid "$BIG_PID" --url "$big_url" --lua "$WORK/report.lua" \
    --duration "$DURATION" --conns "$CONNS" --threads "$WRK_THREADS" || fail "load at $BIG servers: $line"
  python3 "$LIB" tag "$line" kind=big servers="$BIG" >>"$RESULTS"
  log "$BIG servers: $(python3 "$LIB" brief "$line")"
  if [[ $SP_RELOADS == 1 ]]; then
    gen_before=$(curl -fsS "http://127.0.0.1:$p2/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])')
    # Long enough for the reload to land even on a busy machine: 4x the unloaded reload time
    # measured in (d), plus DURATION of steady state after it.
    big_s=$(python3 - "$RESULTS" "$BIG" "$DURATION" <<'EOF'
import json, math, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
r = [x["serve"].get("reload_s") for x in recs if x.get("kind") == "scale" and x["servers"] == int(sys.argv[2])]
d = int(sys.argv[3])
print(max(2 * d, math.ceil(4 * (r[0] or 0)) + d) if r and r[0] else 2 * d)
EOF
)
    python3 "$LIB" load --target "signpost ($BIG servers, 1 reload)" --round 0 --pid "$BIG_PID" --url "$big_url" --lua "$WORK/report.lua" \
      --duration "$big_s" --conns "$CONNS" --threads "$WRK_THREADS" >"$WORK/big-reload.json" &
    LPID=$!
    PIDS+=("$LPID")
    sleep 1
    cp "$f.v1" "$f.tmp" && mv "$f.tmp" "$f"
    t_swap=$EPOCHREALTIME
    applied_after=''
    while kill -0 "$LPID" 2>/dev/null; do
      g=$(curl -fsS --max-time 2 "http://127.0.0.1:$p2/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])' || echo "$gen_before")
      if ((g != gen_before)); then applied_after=$(awk -v a="$t_swap" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'); break; fi
      sleep 0.2
    done
    wait "$LPID" || fail "reload under load at $BIG servers: wrk run failed: $(cat "$WORK/big-reload.json")"
    forget "$LPID"
    gen_after=$(curl -fsS "http://127.0.0.1:$p2/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])')
    line=$(cat "$WORK/big-reload.json")
    python3 "$LIB" tag "$line" kind=big servers="$BIG" reloads=1 generations="$((gen_after - gen_before))" \
      applied_after_s="${applied_after:--1}" >>"$RESULTS"
    log "$BIG servers, reload mid-run ($big_s s): $(python3 "$LIB" brief "$line"); generation $gen_before -> $gen_after${applied_after:+ after ~${applied_after}s}"
    if ((gen_after == gen_before)); then fail "signpost did not apply the $BIG-server config within the ${big_s}s run"; fi
  fi
  stop "$BIG_PID"
  rm -f "$f" "$f.v1"
fi

# ------------------------------------------------------------------ (h) exhaustion
# 10,000 silent connections (re-opened every 9 s) plus 200 drip readers against the default
# limits: how long does a fresh client wait for its PRM, and the admin listener for /readyz?
# (tests/bench/exhaust.py; BENCH_EXHAUST=0 skips it)
if [[ $NO_SIGNPOST != 1 && ${BENCH_EXHAUST:-1} == 1 ]]; then
  log "exhaustion: ${BENCH_EXHAUST_SILENT:-10000} silent connections + ${BENCH_EXHAUST_DRIP:-200} drip readers"
  if pyrun_ex=$(python3 "$HERE/exhaust.py" --bin "$SIGNPOST_BIN" --silent "${BENCH_EXHAUST_SILENT:-10000}" \
      --drip "${BENCH_EXHAUST_DRIP:-200}" --samples 10 --deadline 20); then
    log "exhaustion: $pyrun_ex"
    NOTES+=("exhaustion (tests/bench/exhaust.py): $pyrun_ex")
  else
    fail "exhaustion scenario failed"
  fi
fi

# ------------------------------------------------------------------ (i) callgrind
# Instructions are counted, not timed: the figures hold on a busy machine and repeat within ~1 %.
if [[ $NO_SIGNPOST != 1 && ${BENCH_CALLGRIND:-1} == 1 ]]; then
  log "callgrind: instructions per keep-alive request (several minutes under valgrind)"
  python3 "$LIB" callgrind --signpost "$SIGNPOST_BIN" --hyper "$HYPER_BIN" --servers "$LOAD_SERVERS" \
    --base "${BENCH_CALLGRIND_BASE:-1000}" --extra "${BENCH_CALLGRIND_EXTRA:-10000}" \
    --threads "${BENCH_CALLGRIND_THREADS:-2}" --work "$WORK/callgrind" >"$WORK/callgrind.jsonl" 2>"$WORK/callgrind.log" &
  FG_PID=$!
  rc=0
  wait "$FG_PID" || rc=$?
  FG_PID=
  cat "$WORK/callgrind.jsonl" >>"$RESULTS"
  grep '^\[callgrind\]' "$WORK/callgrind.log" >&2 || true
  ((rc == 0)) || fail "callgrind measurement failed: $(tail -5 "$WORK/callgrind.log")"
fi

# ------------------------------------------------------------------ report
meta notes "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${NOTES[@]+"${NOTES[@]}"}")"
mkdir -p "$(dirname "$OUT")"
python3 "$LIB" render "$RESULTS" "$WORK/meta.json" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cp "$RESULTS" "${OUT%.md}.jsonl"
cp "$WORK/meta.json" "${OUT%.md}.meta.json"   # re-render: benchlib.py render X.jsonl X.meta.json
cat "$OUT"
log "report: $OUT (raw: ${OUT%.md}.jsonl)"
(( FAILED == 0 )) || die "some measurements failed (see ERROR lines above and the report)"
