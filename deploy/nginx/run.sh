#!/usr/bin/env bash
# Starts the shipped nginx main proxy in the foreground from a directory rendered by
# deploy/render.sh (nginx.conf + signpost.conf):
#
#   deploy/nginx/run.sh OUT_DIR
#
# nginx runs with OUT_DIR as its prefix: the pid file and every temp file are inside it, logs go to
# stderr/stdout; no root needed. The binary: `nginx` on PATH, else /usr/sbin/nginx (.ci/install's
# Debian package). signpost.conf needs the headers-more filter module: when this nginx does not
# have it built in (OpenResty does), the dynamic module is loaded from nginx's modules path.
# SIGTERM (and SIGINT) stop nginx at once (its fast shutdown); SIGQUIT lets open requests finish.
set -euo pipefail

out="${1:?usage: deploy/nginx/run.sh OUT_DIR (rendered by deploy/render.sh nginx OUT_DIR ...)}"
out="$(cd "$out" && pwd)"
[[ -f "$out/nginx.conf" && -f "$out/signpost.conf" ]] ||
  { echo "deploy/nginx/run.sh: $out has no nginx.conf/signpost.conf; run deploy/render.sh nginx $out ..." >&2; exit 2; }

nginx="$(command -v nginx || true)"
[[ -n "$nginx" ]] || for c in /usr/sbin/nginx /usr/local/sbin/nginx /usr/local/nginx/sbin/nginx; do
  [[ -x "$c" ]] && { nginx="$c"; break; }
done
[[ -n "$nginx" ]] || { echo "deploy/nginx/run.sh: nginx is not installed (.ci/install, or apt-get install nginx libnginx-mod-http-headers-more-filter)" >&2; exit 1; }

globals="daemon off;"
build="$("$nginx" -V 2>&1 || true)"
if [[ "$build" != *headers-more* ]]; then
  modules="$(tr ' ' '\n' <<<"$build" | sed -n 's/^--modules-path=//p')"
  so="${modules:-/usr/lib/nginx/modules}/ngx_http_headers_more_filter_module.so"
  [[ -f "$so" ]] || { echo "deploy/nginx/run.sh: the headers-more module is missing ($so; Debian: apt-get install libnginx-mod-http-headers-more-filter)" >&2; exit 1; }
  globals="load_module $so; $globals"
fi

# exec: nginx's master is this process, so SIGTERM from a supervisor or a test reaches it directly.
exec "$nginx" -p "$out/" -e stderr -c "$out/nginx.conf" -g "$globals"
