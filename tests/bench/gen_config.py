#!/usr/bin/env python3
"""Write a signpost config with N servers for the benchmarks (tests/bench/run.sh).

usage: gen_config.py N PUBLIC_URL [OUT] [--variant K] [--minified]

Servers are s0 .. s{N-1}, modes cycling delegate, facade, gateway (so s500 is gateway,
s501 delegate, ...); every third one of each has scopes and a resource_name, so the
documents differ in shape as well as in URL. The default resource_paths apply (three
routes per server). The middle server s{N//2} (s500 of 1,000, the one run.sh loads) always
has resource_name "Server {N//2} (variant K)", K from --variant (default 0): a reload
benchmark changes only that, and can tell the old document from the new one. OUT defaults to stdout; a file is written to OUT.tmp and renamed over OUT (the way
an editor or a ConfigMap update replaces it), so a watcher never sees half a file.
--minified writes the whole file on one line, as `jq -c` or Helm's `toJson` do (the case where
a position lookup that rescans its line goes quadratic); the default is indented, one key a line.
Python 3 standard library only.
"""

import json
import os
import sys

MODES = ("delegate", "facade", "gateway")


def server(i: int, middle: int, variant: int) -> dict:
    mode = MODES[i % 3]
    s: dict = {"mode": mode}
    if mode == "delegate":
        # Keycloak-style issuer with a path: the case the contract insists is kept byte-identical.
        s["issuer"] = f"https://sso{i % 7}.example.com/realms/r{i}"
    elif mode == "facade":
        base = f"https://idp{i % 5}.example.net/t{i}"
        s["issuer"] = base
        s["authorization_endpoint"] = f"{base}/oauth2/authorize"
        s["token_endpoint"] = f"{base}/oauth2/token"
        s["registration_endpoint"] = f"{base}/oauth2/register"
    if (i // 3) % 3 == 0:
        s["scopes"] = [f"read:s{i}", "offline_access"]
        s["resource_name"] = f"Server {i}"
    if i == middle:
        s["resource_name"] = f"Server {i} (variant {variant})"
    return s


def config(n: int, public_url: str, variant: int = 0) -> dict:
    return {
        "public_url": public_url,
        "cache_max_age": 300,
        "servers": {f"s{i}": server(i, n // 2, variant) for i in range(n)},
    }


def main(argv: list) -> int:
    args = list(argv[1:])
    variant = 0
    minified = "--minified" in args
    if minified:
        args.remove("--minified")
    if "--variant" in args:
        k = args.index("--variant")
        try:
            variant = int(args[k + 1])
        except (IndexError, ValueError):
            print("gen_config.py: --variant needs an integer", file=sys.stderr)
            return 2
        del args[k : k + 2]
    if len(args) not in (2, 3) or not args[0].isdigit():
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    n, public_url = int(args[0]), args[1]
    if minified:
        text = json.dumps(config(n, public_url, variant), separators=(",", ":")) + "\n"
    else:
        text = json.dumps(config(n, public_url, variant), indent=1) + "\n"
    if len(args) == 2:
        sys.stdout.write(text)
        return 0
    out = args[2]
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
