// Completes an MCP OAuth login with the REAL MCP TypeScript SDK client (@modelcontextprotocol/sdk,
// pinned in package-lock.json) and prints one JSON report on stdout for the Rust tests to assert on.
//
// The flow is a real client's: Client.connect() over StreamableHTTPClientTransport with an in-memory
// OAuthClientProvider. The 401 makes the transport run the SDK's auth(): PRM discovery, AS metadata
// discovery, dynamic client registration, PKCE S256, then provider.redirectToAuthorization(url). Here
// that plays the user: it GETs the authorization URL with `redirect: "manual"` (the test IdP approves
// at once) and captures code, state and iss from the redirect. The transport then throws
// UnauthorizedError; transport.finishAuth(code) exchanges the code for a token, and a new connection
// lists the tools. Each --call NAME then calls a tool; a 403 insufficient_scope there makes the
// transport re-run auth() with the challenge's scope (a step-up), handled the same way.
//
// Usage: node login.mjs --url MCP_URL [--call TOOL ...]
// Report (one line of JSON; the same shape as login.py's):
//   client, sdk_version, url,
//   requests:       every HTTP request made: [{method, url, status}]
//   hint:           the first 401/403 of the MCP URL: {status, www_authenticate, resource_metadata, scope, error}
//   challenges:     every 401/403 of the MCP URL, in that shape
//   prm:            the first PRM answered 200: {url, status, body}
//   as_metadata_url, as_metadata: the AS metadata used (first 200) and its body
//   registration:   {url, status, client_id, scope}
//   authorizations: each authorization request: {url, resource, scope, code_challenge_method, status,
//                   code (true when the redirect carried one), state_ok, iss, error}
//   tokens:         each token request: {url, status, obtained, scope, error}; token_obtained: any obtained
//   tools:          tool names from tools/list; calls: [{name, ok, text, error}]
//   ok, error:      whether login + tools/list (+ calls) worked, and why not
// Never prints a token, a code or a client secret. Exit 0 whenever a report was printed.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: { url: { type: 'string' }, call: { type: 'string', multiple: true, default: [] } },
});
if (!args.url) {
  process.stderr.write('usage: node login.mjs --url MCP_URL [--call TOOL ...]\n');
  process.exit(2);
}
const serverUrl = new URL(args.url);
const sdkVersion = JSON.parse(
  readFileSync(new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url), 'utf8'),
).version;

const report = {
  client: 'typescript',
  sdk_version: sdkVersion,
  url: serverUrl.href,
  requests: [],
  hint: null,
  challenges: [],
  prm: null,
  as_metadata_url: null,
  as_metadata: null,
  registration: null,
  authorizations: [],
  tokens: [],
  token_obtained: false,
  tools: null,
  calls: [],
  ok: false,
  error: null,
};

// ---- recording fetch: every request, and what the report needs from some answers ----------------
const isPrm = (u) => u.pathname.startsWith('/.well-known/oauth-protected-resource');
const isAs = (u) => /\/\.well-known\/(oauth-authorization-server|openid-configuration)/.test(u.pathname) || u.pathname.endsWith('/.well-known/openid-configuration');
const sameUrl = (a, b) => a.origin === b.origin && a.pathname.replace(/\/$/, '') === b.pathname.replace(/\/$/, '');

async function recordingFetch(input, init) {
  const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
  const method = (init?.method ?? (typeof input === 'object' && 'method' in input ? input.method : 'GET')).toUpperCase();
  const res = await fetch(input, init);
  report.requests.push({ method, url: url.href, status: res.status });
  const json = async () => {
    try {
      return await res.clone().json();
    } catch {
      return null;
    }
  };
  if (sameUrl(url, serverUrl) && (res.status === 401 || res.status === 403)) {
    const p = extractWWWAuthenticateParams(res);
    const challenge = {
      status: res.status,
      www_authenticate: res.headers.get('www-authenticate'),
      resource_metadata: p.resourceMetadataUrl?.href ?? null,
      scope: p.scope ?? null,
      error: p.error ?? null,
    };
    report.challenges.push(challenge);
    report.hint ??= challenge;
  } else if (isPrm(url) && res.status === 200 && !report.prm) {
    report.prm = { url: url.href, status: res.status, body: await json() };
  } else if (isAs(url) && res.status === 200 && !report.as_metadata) {
    report.as_metadata_url = url.href;
    report.as_metadata = await json();
  } else if (method === 'POST' && report.as_metadata?.registration_endpoint === url.href) {
    const b = await json();
    report.registration = { url: url.href, status: res.status, client_id: b?.client_id ?? null, scope: b?.scope ?? null };
  } else if (method === 'POST' && report.as_metadata?.token_endpoint === url.href) {
    const b = await json();
    report.tokens.push({
      url: url.href,
      status: res.status,
      obtained: typeof b?.access_token === 'string',
      scope: b?.scope ?? null,
      error: b?.error ?? null,
    });
    report.token_obtained ||= typeof b?.access_token === 'string';
  }
  return res;
}

// ---- in-memory OAuth client provider that plays the user ------------------------------------
class LoginProvider {
  constructor() {
    this._tokens = undefined;
    this._client = undefined;
    this._verifier = undefined;
    this._state = undefined;
    this.pendingCode = undefined; // the code of the last authorization, until finishAuth takes it
  }
  get redirectUrl() {
    return 'http://127.0.0.1:9/callback';
  }
  get clientMetadata() {
    return {
      client_name: 'signpost login.mjs',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    this._state = randomBytes(16).toString('hex');
    return this._state;
  }
  clientInformation() {
    return this._client;
  }
  saveClientInformation(info) {
    this._client = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
  }
  saveCodeVerifier(v) {
    this._verifier = v;
  }
  codeVerifier() {
    return this._verifier;
  }
  async redirectToAuthorization(url) {
    const q = url.searchParams;
    const entry = {
      url: url.href,
      resource: q.get('resource'),
      scope: q.get('scope'),
      code_challenge_method: q.get('code_challenge_method'),
      status: null,
      code: false,
      state_ok: false,
      iss: null,
      error: null,
    };
    report.authorizations.push(entry);
    // Play the browser: follow the IdP's own redirects (with its cookies) until one goes back to
    // redirect_uri. The test IdP goes there at once; oidc-provider passes through its interaction.
    const cookies = new Map();
    let next = url.href;
    let location = null;
    for (let hop = 0; hop < 10 && next; hop++) {
      const headers = cookies.size ? { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {};
      const res = await recordingFetch(next, { redirect: 'manual', headers });
      entry.status ??= res.status;
      for (const c of res.headers.getSetCookie?.() ?? []) {
        const [pair] = c.split(';');
        const i = pair.indexOf('=');
        cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
      }
      const loc = res.headers.get('location');
      if (!loc) break;
      const target = new URL(loc, next);
      if (target.href.startsWith(this.redirectUrl)) {
        location = target.href;
        break;
      }
      next = target.href;
    }
    if (!location) {
      entry.error = `no redirect back to the client (${entry.status})`;
      return;
    }
    const back = new URL(location).searchParams;
    entry.iss = back.get('iss');
    entry.error = back.get('error');
    entry.state_ok = back.get('state') === this._state;
    const code = back.get('code');
    entry.code = Boolean(code);
    if (code && entry.state_ok) this.pendingCode = code;
  }
}

const provider = new LoginProvider();

/** Runs `step`; on UnauthorizedError after an authorization that yielded a code, finishes the login
 * on `transport` and runs `retry` (a fresh step after a failed connect, the same one otherwise). */
async function withLogin(transport, step, retry = step) {
  try {
    return await step();
  } catch (e) {
    if (!(e instanceof UnauthorizedError) || !provider.pendingCode) throw e;
    const code = provider.pendingCode;
    provider.pendingCode = undefined;
    await transport.finishAuth(code);
    return await retry();
  }
}

async function main() {
  const newTransport = () => new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: recordingFetch });
  let transport = newTransport();
  let client = new Client({ name: 'signpost-login-mjs', version: '0.0.0' });
  await withLogin(
    transport,
    () => client.connect(transport),
    async () => {
      transport = newTransport();
      client = new Client({ name: 'signpost-login-mjs', version: '0.0.0' });
      await client.connect(transport);
    },
  );
  report.tools = (await client.listTools()).tools.map((t) => t.name);
  let allCalls = true;
  for (const name of args.call) {
    try {
      const result = await withLogin(transport, () => client.callTool({ name, arguments: {} }));
      report.calls.push({ name, ok: !result.isError, text: result.content?.[0]?.text ?? null, error: null });
      allCalls &&= !result.isError;
    } catch (e) {
      report.calls.push({ name, ok: false, text: null, error: String(e?.message ?? e) });
      allCalls = false;
    }
  }
  await client.close();
  report.ok = allCalls;
  if (!allCalls) report.error = 'a tool call failed';
}

const deadline = setTimeout(() => {
  report.error = 'login.mjs: timed out after 60 s';
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
}, 60_000);

main()
  .catch((e) => {
    report.ok = false;
    report.error = String(e?.stack ?? e);
  })
  .finally(() => {
    clearTimeout(deadline);
    process.stdout.write(`${JSON.stringify(report)}\n`);
    process.exit(0);
  });
