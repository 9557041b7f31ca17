#!/usr/bin/env bash
# signpost loading benchmark: `check` wall time and `serve` spawn -> first PRM 200 for large
# configs written two ways, indented (one key a line) and minified (the whole file on one line, as
# `jq -c` or Helm's `toJson` write it). A position lookup that rescans its line makes the minified
# file quadratic; this shows whether it is (minified must be no slower than indented).
#
#   tests/bench/loading.sh                        # 20,000 and 100,000 servers, 1 run each
#   BENCH_SCALES="1000 20000" BENCH_RUNS=3 tests/bench/loading.sh
#
# Environment (defaults in brackets):
#   BENCH_SCALES ["20000 100000"]  servers per config    BENCH_RUNS [1]  runs per measurement
#   SIGNPOST_BIN [target/release/signpost, built when missing unless BENCH_SKIP_BUILD=1]
#   BENCH_OUT [tests/bench/results/loading.md]         BENCH_TIMEOUT [300] seconds per run
# Needs: Linux, bash, python3 (stdlib only); reuses benchlib.py (`timed`, `startup`, `ports`).
# Every child is stopped by its pid (SIGTERM, as a kubelet would) and killed on exit.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LIB="$HERE/benchlib.py"
SCALES=${BENCH_SCALES:-"20000 100000"}
RUNS=${BENCH_RUNS:-1}
TIMEOUT=${BENCH_TIMEOUT:-300}
OUT=${BENCH_OUT:-$HERE/results/loading.md}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SIGNPOST_BIN=${SIGNPOST_BIN:-$TARGET_DIR/release/signpost}

log() { printf '[loading %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/signpost-loading.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

if [[ ! -x $SIGNPOST_BIN && ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  log "building signpost (release)"
  (cd "$ROOT" && cargo build --release --bin signpost)
fi
[[ -x $SIGNPOST_BIN ]] || { echo "no signpost binary at $SIGNPOST_BIN" >&2; exit 1; }

RESULTS=$WORK/results.jsonl
FAILED=0
for n in $SCALES; do
  for format in indented minified; do
    read -r p1 p2 < <(python3 "$LIB" ports 2)
    f=$WORK/scale-$n-$format.json
    flag=()
    [[ $format == minified ]] && flag=(--minified)
    python3 "$HERE/gen_config.py" "$n" "http://127.0.0.1:$p1" "$f" "${flag[@]}"
    for ((r = 1; r <= RUNS; r++)); do
      log "$n servers, $format ($(du -h "$f" | cut -f1)), run $r: check"
      chk=$(python3 "$LIB" timed --stderr "$WORK/check.err" -- "$SIGNPOST_BIN" check --config "$f") || true
      log "  $chk"
      log "$n servers, $format, run $r: serve start-up"
      srv=$(timeout "$((TIMEOUT + 30))" python3 "$LIB" startup --timeout "$TIMEOUT" --log "$WORK/serve.log" \
        --prm "http://127.0.0.1:$p1/.well-known/oauth-protected-resource/mcp/s$((n / 2))/mcp" \
        --ready "http://127.0.0.1:$p2/readyz" -- \
        "$SIGNPOST_BIN" serve --config "$f" --listen "127.0.0.1:$p1" --admin-listen "127.0.0.1:$p2") || FAILED=1
      log "  $srv"
      python3 - "$n" "$format" "$(stat -c %s "$f")" "$chk" "$srv" >>"$RESULTS" <<'EOF'
import json, sys
n, fmt, size, chk, srv = sys.argv[1:]
def load(s):
    try:
        return json.loads(s)
    except ValueError:
        return {"error": s or "no output"}
print(json.dumps({"servers": int(n), "format": fmt, "config_bytes": int(size),
                  "check": load(chk), "serve": load(srv)}))
EOF
    done
    rm -f "$f"
  done
done

mkdir -p "$(dirname "$OUT")"
python3 - "$RESULTS" "$SIGNPOST_BIN" >"$OUT" <<'EOF'
import json, platform, statistics, subprocess, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.median(xs) if xs else None
def s(x):
    return "–" if x is None else f"{x:.2f} s"
print("# signpost loading: indented vs minified configs")
print()
print(f"- {platform.node()}, {platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores; binary `{sys.argv[2].rsplit('/', 1)[-1]}`")
print("- `check`: wall time of `signpost check --config F` (exit 0 expected); `serve`: spawn → first 200 on the PRM of the middle server")
print()
print("| servers | format | config | `check` wall | `check` exit | `serve` spawn → first PRM 200 | runs |")
print("|---:|---|---:|---:|---:|---:|---:|")
keys = sorted({(r["servers"], r["format"]) for r in recs}, key=lambda k: (k[0], k[1] != "indented"))
for n, fmt in keys:
    rs = [r for r in recs if (r["servers"], r["format"]) == (n, fmt)]
    rc = sorted({str(r["check"].get("rc")) for r in rs})
    print(f"| {n:,} | {fmt} | {rs[0]['config_bytes'] / 2**20:.1f} MiB | {s(med([r['check'].get('wall_s') for r in rs]))} | "
          f"{', '.join(rc)} | {s(med([r['serve'].get('first_prm_s') for r in rs]))} | {len(rs)} |")
EOF
cat "$OUT"
exit $FAILED
