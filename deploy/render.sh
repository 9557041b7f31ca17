#!/usr/bin/env bash
# Renders one shipped main-proxy configuration (deploy/<proxy>/) for a deployment.
#
#   deploy/render.sh [--rescue-5xx] PROXY OUT_DIR LISTEN GATEWAY SIGNPOST ADMIN
#
# PROXY is one of nginx, envoy, haproxy, caddy, traefik. Each address is a host:port:
#   LISTEN    where the proxy listens (the public side, behind the ingress / load balancer)
#   GATEWAY   the MCP gateway
#   SIGNPOST  signpost's public listener (--listen), serves /.well-known/*
#   ADMIN     signpost's admin listener (--admin-listen), serves /challenge
# Every file of deploy/PROXY/ except run.sh is copied into OUT_DIR with __LISTEN_ADDR__,
# __GATEWAY_ADDR__, __SIGNPOST_ADDR__ and __SIGNPOST_ADMIN_ADDR__ replaced; nothing else needs
# editing. Start the proxy with `deploy/PROXY/run.sh OUT_DIR`. For proxies that take a host and a port
# apart (Envoy), each NAME_ADDR also renders as __NAME_HOST__ (an IPv6 address without brackets)
# and __NAME_PORT__: still the same four addresses, only spelled in two pieces.
#
# --rescue-5xx (off by default): when the gateway answers a request that carried no
# Authorization header with a 5xx, the proxy answers signpost's 401 challenge instead (the client
# has to log in first anyway; LiteLLM without prisma answers 500 there). Requests with a token
# keep the gateway's 5xx. It sets the switch __RESCUE_5XX__ to 1 (else 0) in the rendered files.
set -euo pipefail

deploy="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage() {
  echo "usage: deploy/render.sh [--rescue-5xx] PROXY OUT_DIR LISTEN GATEWAY SIGNPOST ADMIN" >&2
  echo "  PROXY: nginx | envoy | haproxy | caddy | traefik; each address a host:port" >&2
  exit 2
}
rescue=0
if [[ "${1:-}" == "--rescue-5xx" ]]; then
  rescue=1
  shift
fi
(($# == 6)) || usage
proxy="$1" out="$2"
shift 2
case "$proxy" in
  nginx | envoy | haproxy | caddy | traefik) ;;
  *) echo "deploy/render.sh: unknown proxy '$proxy'" >&2; usage ;;
esac
for addr in "$@"; do
  # host:port, host being a name, an IPv4 address or a bracketed IPv6 address.
  [[ "$addr" =~ ^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$ ]] ||
    { echo "deploy/render.sh: '$addr' is not a host:port (e.g. 127.0.0.1:8080)" >&2; exit 2; }
done
listen="$1" gateway="$2" signpost="$3" admin="$4"
# The host and port of each address, for __NAME_HOST__ / __NAME_PORT__.
host_of() { local h="${1%:*}"; h="${h#[}"; echo "${h%]}"; }
port_of() { echo "${1##*:}"; }
pieces=()
for pair in LISTEN:"$listen" GATEWAY:"$gateway" SIGNPOST:"$signpost" SIGNPOST_ADMIN:"$admin"; do
  name="${pair%%:*}" addr="${pair#*:}"
  pieces+=(-e "s/__${name}_HOST__/$(host_of "$addr")/g" -e "s/__${name}_PORT__/$(port_of "$addr")/g")
done

mkdir -p "$out"
src="$deploy/$proxy"
find "$src" -type f ! -name run.sh -print0 | while IFS= read -r -d '' file; do
  rel="${file#"$src"/}"
  mkdir -p "$out/$(dirname "$rel")"
  sed -e "s/__LISTEN_ADDR__/$listen/g" -e "s/__GATEWAY_ADDR__/$gateway/g" \
    -e "s/__SIGNPOST_ADDR__/$signpost/g" -e "s/__SIGNPOST_ADMIN_ADDR__/$admin/g" \
    -e "s/__RESCUE_5XX__/$rescue/g" "${pieces[@]}" "$file" > "$out/$rel"
  if grep -q '__[A-Z0-9_]*_\(ADDR\|HOST\|PORT\)__\|__RESCUE_5XX__' "$out/$rel"; then
    echo "deploy/render.sh: $rel still holds a placeholder after rendering" >&2
    exit 1
  fi
done
echo "deploy/render.sh: rendered $proxy into $out"
