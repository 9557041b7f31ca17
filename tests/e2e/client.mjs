// Drives the REAL MCP TypeScript SDK (@modelcontextprotocol/sdk, version pinned in package-lock.json)
// against one MCP endpoint and prints a JSON report on stdout for tests/e2e.rs to assert on.
//
// The flow is the one a real client runs: Client.connect() over StreamableHTTPClientTransport with
// an in-memory OAuthClientProvider. The transport POSTs `initialize`, gets the 401 (or, with
// --token scoped, the 403 insufficient_scope), reads the challenge with the SDK's
// extractWWWAuthenticateParams and calls the SDK's auth(): PRM discovery, AS metadata discovery,
// dynamic client registration, then PKCE S256 — ending in provider.redirectToAuthorization(url),
// which only records the URL. Every HTTP exchange goes through a recording fetch.
// With --complete, the client then plays the user: it GETs the authorization URL at the IdP,
// takes the code from the redirect, finishAuth() exchanges it and it connects again.
//
// The SDK's exported helpers record intermediate values independently of auth():
// extractWWWAuthenticateParams / extractResourceMetadataUrl on the first challenge, and
// discoverOAuthProtectedResourceMetadata.
//
// Usage: node client.mjs --url http://127.0.0.1:PORT/mcp/<server>/mcp [--token T] [--complete]
// Exit code 0 whenever a report was printed (the test decides), 1 on a crash of this script.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  UnauthorizedError,
  discoverOAuthProtectedResourceMetadata,
  extractResourceMetadataUrl,
  extractWWWAuthenticateParams,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    token: { type: 'string' },
    complete: { type: 'boolean', default: false },
  },
});
if (!args.url) {
  process.stderr.write('usage: node client.mjs --url MCP_URL [--token T] [--complete]\n');
  process.exit(2);
}
const serverUrl = new URL(args.url);
const sdkVersion = JSON.parse(
  readFileSync(new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url), 'utf8'),
).version;

const report = {
  sdk_version: sdkVersion,
  protocol_version: LATEST_PROTOCOL_VERSION,
  url: serverUrl.href,
  exchanges: [], // every HTTP request the SDK made: method, url, status, www_authenticate, json body
  first_challenge: null, // the first 401/403 on the MCP URL
  hint: null, // extractWWWAuthenticateParams of that response
  hint_legacy_resource_metadata_url: null, // extractResourceMetadataUrl of that response
  prm_via_helper: null, // discoverOAuthProtectedResourceMetadata(url, {resourceMetadataUrl: hint})
  prm_fetched: null, // the PRM exchange auth() made
  as_metadata_fetched: null, // the AS metadata exchange auth() used (first 200)
  registration: null, // the DCR exchange
  discovery_state: null, // what auth() handed provider.saveDiscoveryState
  authorization_url: null, // what auth() handed provider.redirectToAuthorization
  authorization_params: null,
  outcome: null, // "redirect" | "connected" | "error"
  error: null,
  completed: null, // with --complete: { code, connected, tools }
};

// ---- recording fetch ----------------------------------------------------------------------
const responses = [];
async function recordingFetch(input, init) {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  const method = init?.method ?? (typeof input === 'object' && 'method' in input ? input.method : 'GET');
  const res = await fetch(input, init);
  const entry = {
    method,
    url,
    status: res.status,
    www_authenticate: res.headers.get('www-authenticate'),
    content_type: res.headers.get('content-type'),
    body: null,
  };
  if ((res.headers.get('content-type') ?? '').includes('application/json')) {
    try {
      entry.body = await res.clone().json();
    } catch {
      entry.body = '<unparseable json>';
    }
  }
  report.exchanges.push(entry);
  responses.push({ entry, res });
  return res;
}

// ---- in-memory OAuth client provider ------------------------------------------------------
class MemoryProvider {
  constructor(token) {
    this._tokens = token ? { access_token: token, token_type: 'Bearer' } : undefined;
    this._client = undefined;
    this._verifier = undefined;
  }
  get redirectUrl() {
    return 'http://127.0.0.1:9/callback';
  }
  get clientMetadata() {
    return {
      client_name: 'signpost e2e client',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
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
  redirectToAuthorization(url) {
    report.authorization_url = url.href;
    report.authorization_params = Object.fromEntries(url.searchParams);
  }
  saveCodeVerifier(v) {
    this._verifier = v;
  }
  codeVerifier() {
    return this._verifier;
  }
  saveDiscoveryState(state) {
    report.discovery_state = state;
  }
}

function summarize(entry) {
  return entry && { url: entry.url, status: entry.status, body: entry.body };
}

async function connect(transport) {
  const client = new Client({ name: 'signpost-e2e', version: '0.0.0' });
  await client.connect(transport);
  const tools = await client.listTools();
  await client.close();
  return tools.tools;
}

async function main() {
  const provider = new MemoryProvider(args.token);
  const transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: recordingFetch });
  let code = null;
  try {
    const tools = await connect(transport);
    report.outcome = 'connected';
    report.completed = { code: null, connected: true, tools };
  } catch (e) {
    if (e instanceof UnauthorizedError && report.authorization_url) {
      report.outcome = 'redirect';
    } else {
      report.outcome = 'error';
      report.error = String(e?.stack ?? e);
    }
  }

  // What the SDK saw, step by step.
  const challenge = responses.find(
    (r) => r.entry.url === serverUrl.href && (r.entry.status === 401 || r.entry.status === 403),
  );
  if (challenge) {
    report.first_challenge = challenge.entry;
    const p = extractWWWAuthenticateParams(challenge.res);
    report.hint = {
      resource_metadata_url: p.resourceMetadataUrl?.href ?? null,
      scope: p.scope ?? null,
      error: p.error ?? null,
    };
    report.hint_legacy_resource_metadata_url = extractResourceMetadataUrl(challenge.res)?.href ?? null;
  }
  const isPrm = (e) => new URL(e.url).pathname.startsWith('/.well-known/oauth-protected-resource');
  const isAs = (e) =>
    /\/\.well-known\/(oauth-authorization-server|openid-configuration)/.test(new URL(e.url).pathname);
  report.prm_fetched = summarize(report.exchanges.find(isPrm));
  report.as_metadata_fetched = summarize(report.exchanges.find((e) => isAs(e) && e.status === 200));
  report.as_metadata_attempts = report.exchanges.filter(isAs).map((e) => ({ url: e.url, status: e.status }));
  const asMeta = report.discovery_state?.authorizationServerMetadata;
  if (asMeta?.registration_endpoint) {
    report.registration = summarize(report.exchanges.find((e) => e.method === 'POST' && e.url === asMeta.registration_endpoint));
  }
  try {
    report.prm_via_helper = await discoverOAuthProtectedResourceMetadata(
      serverUrl,
      { resourceMetadataUrl: report.hint?.resource_metadata_url ?? undefined },
      fetch,
    );
  } catch (e) {
    report.prm_via_helper = { error: String(e) };
  }

  // Play the user: authorize at the IdP, come back with the code, finish, connect for real.
  if (args.complete && report.outcome === 'redirect') {
    try {
      const res = await fetch(report.authorization_url, { redirect: 'manual' });
      const location = res.headers.get('location');
      if (res.status !== 302 || !location) throw new Error(`authorization endpoint answered ${res.status}`);
      code = new URL(location).searchParams.get('code');
      await transport.finishAuth(code);
      const again = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: recordingFetch });
      const tools = await connect(again);
      report.completed = { code, connected: true, tools };
    } catch (e) {
      report.completed = { code, connected: false, error: String(e?.stack ?? e) };
    }
  }
}

main()
  .then(() => {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    process.exit(0);
  })
  .catch((e) => {
    process.stderr.write(`client.mjs crashed: ${e?.stack ?? e}\n`);
    process.exit(1);
  });
