# Completes an MCP OAuth login with the REAL MCP Python SDK client (`mcp`, pinned in
# tests/e2e/requirements.txt, installed by .ci/install into .venv/e2e) and prints one JSON report on
# stdout for the Rust tests to assert on; the report has the shape of login.mjs's.
#
# The flow is a real client's: an httpx2 client whose auth is the SDK's OAuthClientProvider, under
# streamable_http_client and ClientSession. The 401 of `initialize` makes the provider run discovery
# (PRM, AS metadata), dynamic client registration and PKCE S256; its redirect_handler plays the user:
# it GETs the authorization URL without following the redirect (the test IdP approves at once) and
# keeps code, state and iss, which callback_handler hands back. The provider exchanges the code for a
# token and retries; then ClientSession.list_tools. Each --call NAME calls a tool; a 403
# insufficient_scope there makes the provider re-authorize with the union of scopes (a step-up).
#
# Usage: .venv/e2e/bin/python tests/e2e/login.py --url MCP_URL [--call TOOL ...]
# Never prints a token, a code or a client secret. Exit 0 whenever a report was printed.
import argparse
import asyncio
import json
import sys
from importlib.metadata import version
from urllib.parse import parse_qs, urlparse

import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.auth.utils import extract_field_from_www_auth
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT_URI = "http://127.0.0.1:9/callback"


def same_url(a: str, b: str) -> bool:
    pa, pb = urlparse(a), urlparse(b)
    return (pa.scheme, pa.netloc, pa.path.rstrip("/")) == (pb.scheme, pb.netloc, pb.path.rstrip("/"))


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Login:
    def __init__(self, url: str) -> None:
        self.url = url
        self.report: dict = {
            "client": "python",
            "sdk_version": version("mcp"),
            "url": url,
            "requests": [],
            "hint": None,
            "challenges": [],
            "prm": None,
            "as_metadata_url": None,
            "as_metadata": None,
            "registration": None,
            "authorizations": [],
            "tokens": [],
            "token_obtained": False,
            "tools": None,
            "calls": [],
            "ok": False,
            "error": None,
        }
        self.pending: AuthorizationCodeResult | None = None

    # ---- recording: every response of the MCP client's httpx2 client, auth flow included -------
    async def on_response(self, response: httpx2.Response) -> None:
        r = self.report
        req = response.request
        url = str(req.url)
        path = req.url.path
        r["requests"].append({"method": req.method, "url": url, "status": response.status_code})
        if same_url(url, self.url):
            # MCP answers may be SSE streams: never read their bodies here.
            if response.status_code in (401, 403):
                challenge = {
                    "status": response.status_code,
                    "www_authenticate": response.headers.get("www-authenticate"),
                    "resource_metadata": extract_field_from_www_auth(response, "resource_metadata"),
                    "scope": extract_field_from_www_auth(response, "scope"),
                    "error": extract_field_from_www_auth(response, "error"),
                }
                r["challenges"].append(challenge)
                if r["hint"] is None:
                    r["hint"] = challenge
            return
        await response.aread()
        try:
            body = response.json()
        except ValueError:
            body = None
        meta = r["as_metadata"] or {}
        if path.startswith("/.well-known/oauth-protected-resource") and response.status_code == 200:
            if r["prm"] is None:
                r["prm"] = {"url": url, "status": response.status_code, "body": body}
        elif ("/.well-known/oauth-authorization-server" in path or "/.well-known/openid-configuration" in path) and (
            response.status_code == 200 and r["as_metadata"] is None
        ):
            r["as_metadata_url"] = url
            r["as_metadata"] = body
        elif req.method == "POST" and url == meta.get("registration_endpoint"):
            b = body if isinstance(body, dict) else {}
            r["registration"] = {
                "url": url,
                "status": response.status_code,
                "client_id": b.get("client_id"),
                "scope": b.get("scope"),
            }
        elif req.method == "POST" and url == meta.get("token_endpoint"):
            b = body if isinstance(body, dict) else {}
            obtained = isinstance(b.get("access_token"), str)
            r["tokens"].append(
                {
                    "url": url,
                    "status": response.status_code,
                    "obtained": obtained,
                    "scope": b.get("scope"),
                    "error": b.get("error"),
                }
            )
            r["token_obtained"] = r["token_obtained"] or obtained

    # ---- playing the user --------------------------------------------------------------------
    async def redirect_handler(self, authorization_url: str) -> None:
        q = {k: v[0] for k, v in parse_qs(urlparse(authorization_url).query).items()}
        entry = {
            "url": authorization_url,
            "resource": q.get("resource"),
            "scope": q.get("scope"),
            "code_challenge_method": q.get("code_challenge_method"),
            "status": None,
            "code": False,
            "state_ok": False,
            "iss": None,
            "error": None,
        }
        self.report["authorizations"].append(entry)
        # Play the browser: follow the IdP's own redirects (keeping its cookies) until one goes back
        # to redirect_uri. The test IdP goes there at once; oidc-provider passes through its interaction.
        location = None
        async with httpx2.AsyncClient(timeout=20) as browser:
            url = authorization_url
            for _ in range(10):
                res = await browser.get(url)
                self.report["requests"].append({"method": "GET", "url": url, "status": res.status_code})
                if entry["status"] is None:
                    entry["status"] = res.status_code
                loc = res.headers.get("location")
                if not loc:
                    break
                target = str(httpx2.URL(url).join(loc))
                if target.startswith(REDIRECT_URI):
                    location = target
                    break
                url = target
        if not location:
            entry["error"] = f"no redirect back to the client ({entry['status']})"
            self.pending = None
            return
        back = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
        entry["iss"] = back.get("iss")
        entry["error"] = back.get("error")
        entry["state_ok"] = back.get("state") == q.get("state")
        entry["code"] = bool(back.get("code"))
        # The SDK checks state and iss itself; hand it what the redirect said.
        self.pending = AuthorizationCodeResult(code=back.get("code") or "", state=back.get("state"), iss=back.get("iss"))

    async def callback_handler(self) -> AuthorizationCodeResult:
        if self.pending is None:
            raise RuntimeError("the authorization endpoint did not redirect back")
        result, self.pending = self.pending, None
        return result

    async def run(self, calls: list[str]) -> None:
        provider = OAuthClientProvider(
            server_url=self.url,
            client_metadata=OAuthClientMetadata(
                client_name="signpost login.py",
                redirect_uris=[REDIRECT_URI],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=MemoryStorage(),
            redirect_handler=self.redirect_handler,
            callback_handler=self.callback_handler,
        )
        http = httpx2.AsyncClient(
            auth=provider,
            timeout=httpx2.Timeout(30, read=60),
            event_hooks={"response": [self.on_response]},
        )
        async with http:
            async with streamable_http_client(self.url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = await session.list_tools()
                    self.report["tools"] = [t.name for t in tools.tools]
                    all_ok = True
                    for name in calls:
                        try:
                            result = await session.call_tool(name, {})
                            text = result.content[0].text if result.content else None
                            self.report["calls"].append(
                                {"name": name, "ok": not result.is_error, "text": text, "error": None}
                            )
                            all_ok = all_ok and not result.is_error
                        except Exception as e:  # noqa: BLE001 - the report says what failed
                            self.report["calls"].append({"name": name, "ok": False, "text": None, "error": repr(e)})
                            all_ok = False
        self.report["ok"] = all_ok
        if not all_ok:
            self.report["error"] = "a tool call failed"


def describe(e: BaseException) -> str:
    """An exception group (anyio task groups) flattened to its leaves."""
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(describe(x) for x in e.exceptions)
    return f"{type(e).__name__}: {e}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--call", action="append", default=[])
    args = parser.parse_args()
    login = Login(args.url)
    try:
        await asyncio.wait_for(login.run(args.call), timeout=60)
    except BaseException as e:  # noqa: BLE001 - the report says what failed
        login.report["ok"] = False
        login.report["error"] = describe(e)
    print(json.dumps(login.report), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
