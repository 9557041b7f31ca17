#!/usr/bin/env bash
# Starts the shipped HAProxy main proxy in the foreground from a directory rendered by
# deploy/render.sh (haproxy.cfg + signpost.lua):
#
#   deploy/haproxy/run.sh OUT_DIR
#
# The binary: `haproxy` on PATH, else /usr/sbin/haproxy (.ci/install's Debian package; it needs
# Lua: `haproxy -vv | grep -i lua`). Runs from OUT_DIR (lua-load finds signpost.lua there), in the
# foreground (-db), so it writes no pid file and nothing outside OUT_DIR; logs on stderr; no root
# needed. SIGTERM (and SIGINT) stop it without waiting for open requests (measured: about 1.2 s,
# HAProxy's own stop latency); SIGUSR1 lets open requests finish.
set -euo pipefail

out="${1:?usage: deploy/haproxy/run.sh OUT_DIR (rendered by deploy/render.sh haproxy OUT_DIR ...)}"
out="$(cd "$out" && pwd)"
[[ -f "$out/haproxy.cfg" && -f "$out/signpost.lua" ]] ||
  { echo "deploy/haproxy/run.sh: $out has no haproxy.cfg/signpost.lua; run deploy/render.sh haproxy $out ..." >&2; exit 2; }

haproxy="$(command -v haproxy || true)"
[[ -n "$haproxy" ]] || for c in /usr/sbin/haproxy /usr/local/sbin/haproxy; do
  [[ -x "$c" ]] && { haproxy="$c"; break; }
done
[[ -n "$haproxy" ]] || { echo "deploy/haproxy/run.sh: haproxy is not installed (.ci/install, or apt-get install haproxy)" >&2; exit 1; }
# (the output is captured first: `grep -q` on a pipe would exit early and, with pipefail, fail it)
build="$("$haproxy" -vv 2>&1 || true)"
[[ "$build" == *"Built with Lua"* ]] ||
  { echo "deploy/haproxy/run.sh: $haproxy is built without Lua, which signpost.lua needs" >&2; exit 1; }

cd "$out"
# -db: foreground, no daemon; exec: this process is HAProxy, so SIGTERM reaches it directly.
exec "$haproxy" -db -f "$out/haproxy.cfg"
