# The OAuth-protected upstream MCP server behind LiteLLM in tests/litellm.rs: the real MCP Python
# SDK server (MCPServer, streamable HTTP at /mcp) as a resource server of the test IdP. It serves
# its own protected-resource metadata (authorization_servers = the IdP's issuer) and a 401 with the
# resource_metadata hint, so `signpost import litellm --online` and LiteLLM both find the issuer as
# a client does; it accepts a token only when the IdP's introspection says it is active and its
# audience is one of --audience (the gateway's public MCP URLs: the audience rule).
#
#   .venv/e2e/bin/python tests/litellm/upstream.py --issuer URL --introspect URL --audience URL...
#
# Prints {"port": N} once listening on 127.0.0.1 (an OS-chosen port); one tool, `echo`.
import argparse
import json
import socket
import sys

import httpx2
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

parser = argparse.ArgumentParser()
parser.add_argument("--issuer", required=True)
parser.add_argument("--introspect", required=True)
parser.add_argument("--audience", action="append", required=True)
args = parser.parse_args()
audiences = set(args.audience)


class Introspection:
    """RFC 7662 introspection at the IdP; the audience must be one of the gateway's URLs."""

    async def verify_token(self, token: str) -> AccessToken | None:
        async with httpx2.AsyncClient(timeout=5) as client:
            r = await client.post(args.introspect, data={"token": token})
        info = r.json()
        if not info.get("active") or info.get("aud") not in audiences:
            print(f"upstream: refused a token for {info.get('aud')!r}", file=sys.stderr, flush=True)
            return None
        return AccessToken(
            token=token,
            client_id=str(info.get("client_id", "unknown")),
            scopes=str(info.get("scope", "")).split(),
            expires_at=info.get("exp"),
            resource=info.get("aud"),
        )


sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
# Listening before the ready line: a connection made right after it waits in the backlog.
sock.listen(128)

server = MCPServer(
    "litellm-upstream",
    token_verifier=Introspection(),
    auth=AuthSettings(
        issuer_url=args.issuer,
        resource_server_url=f"http://127.0.0.1:{port}/mcp",
        validate_token_resource=False,
    ),
)


@server.tool()
def echo(text: str = "hello") -> str:
    """Echoes its argument."""
    return f"upstream echo: {text}"


app = server.streamable_http_app(
    transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
)
print(json.dumps({"port": port}), flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
