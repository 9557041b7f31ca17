#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, on the stable toolchain.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]      (default: 60 s, targets router, config, relayed)
#
# Installs cargo-fuzz when missing. Seeds come from tests/fuzz/corpus/<target>/ (read only, in git);
# what the fuzzer learns goes to tests/fuzz/work/<target>/ (ignored, kept between runs). A crash
# leaves its input in tests/fuzz/artifacts/<target>/ and makes this script exit 1; add the input
# to corpus/<target>/ once the bug is fixed.
#
# `-s none`: no sanitizer, so no nightly-only -Z flags (the crate forbids unsafe code anyway);
# `-a`: debug assertions and overflow checks on.
set -euo pipefail
secs="${1:-60}"
shift || true
cd "$(dirname "$0")/../.."
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(router config relayed)
fi
failed=()
for t in "${targets[@]}"; do
  mkdir -p "tests/fuzz/work/$t"
  echo "== fuzz $t for ${secs}s"
  if ! cargo fuzz run --fuzz-dir tests/fuzz -s none -a "$t" \
      "tests/fuzz/work/$t" "tests/fuzz/corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      -dict="tests/fuzz/$t.dict" -print_final_stats=1; then
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzz: crashes in ${failed[*]}; inputs under tests/fuzz/artifacts/" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${secs}s each without a crash"
