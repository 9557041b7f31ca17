#!/usr/bin/env bash
# Starts the shipped Caddy main proxy in the foreground from a directory rendered by
# deploy/render.sh (caddy.json):
#
#   deploy/caddy/run.sh OUT_DIR
#
# The binary: `caddy` on PATH, else /usr/bin/caddy (.ci/install's Debian package, 2.6). Runs from
# OUT_DIR with HOME, XDG_CONFIG_HOME and XDG_DATA_HOME inside it, so whatever Caddy writes (its
# storage; the config has no admin API and no autosave) stays there: no root, nothing under /var.
# Logs on stderr. SIGTERM (and SIGINT) stop it gracefully.
set -euo pipefail

out="${1:?usage: deploy/caddy/run.sh OUT_DIR (rendered by deploy/render.sh caddy OUT_DIR ...)}"
out="$(cd "$out" && pwd)"
[[ -f "$out/caddy.json" ]] ||
  { echo "deploy/caddy/run.sh: $out has no caddy.json; run deploy/render.sh caddy $out ..." >&2; exit 2; }

caddy="$(command -v caddy || true)"
[[ -n "$caddy" ]] || for c in /usr/bin/caddy /usr/local/bin/caddy; do
  [[ -x "$c" ]] && { caddy="$c"; break; }
done
[[ -n "$caddy" ]] || { echo "deploy/caddy/run.sh: caddy is not installed (.ci/install, or apt-get install caddy)" >&2; exit 1; }

cd "$out"
mkdir -p "$out/home" "$out/config" "$out/data"
export HOME="$out/home" XDG_CONFIG_HOME="$out/config" XDG_DATA_HOME="$out/data"
# exec: this process is Caddy, so SIGTERM reaches it directly.
exec "$caddy" run --config "$out/caddy.json"
