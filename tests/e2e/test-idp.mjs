// The test IdP of the login tests (tests/proxies.rs, tests/common/e2e.rs): an OAuth 2.1 authorization
// server shaped like Keycloak, with a PATH issuer http://127.0.0.1:<port>/realms/<realm>, that really
// checks what real IdPs check, so a login that would fail against one fails here too.
//
//   GET  /.well-known/oauth-authorization-server/realms/<realm>   RFC 8414 metadata (path-inserted)
//   GET  /realms/<realm>/.well-known/openid-configuration         OIDC discovery (path-appended)
//   POST /realms/<realm>/clients-registrations/openid-connect     open dynamic client registration (RFC 7591)
//   GET  /realms/<realm>/protocol/openid-connect/auth             authorization: auto-approves and redirects at
//                                                                  once to redirect_uri with code and state
//                                                                  (plus RFC 9207 `iss` with --iss)
//   POST /realms/<realm>/protocol/openid-connect/token            token: PKCE S256 verified; the access token is
//                                                                  bound to the RFC 8707 `resource`, which must be
//                                                                  present and equal the authorization request's
//   POST /realms/<realm>/protocol/openid-connect/token/introspect RFC 7662: {active, aud, scope, client_id, iss}
//   GET  /realms/<realm>/protocol/openid-connect/certs            JWKS (empty; tokens are opaque)
//   POST /_test/token   {"resource": URL, "scope": "a b"}           mints a token without a login (raw tests only)
//   GET  /_test/events                                              what the IdP granted: [{kind, client_id,
//                                                                  resource, scope}] (never a token)
// Every answer carries CORS headers (a browser client needs them on registration and token too).
//
// Usage: node test-idp.mjs [--port N] [--realm eng] [--iss] [--require-scope] [--refresh]
//                          [--scopes "openid mcp:tools ..."]
//   --iss            put RFC 9207 `iss` on the authorization redirect (Keycloak's and oidc-provider's way)
//   --require-scope  refuse an authorization request without `scope` (access_denied, like oidc-provider)
//   --refresh        also issue refresh tokens (off: a step-up must then run a new authorization)
//   --scopes         scopes_supported; a requested scope outside it is invalid_scope
// Prints one line `{"port":N,"issuer":"..."}` on stdout once listening (port 0 = any free port), then
// logs each request to stderr.
import http from 'node:http';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    realm: { type: 'string', default: 'eng' },
    iss: { type: 'boolean', default: false },
    'require-scope': { type: 'boolean', default: false },
    refresh: { type: 'boolean', default: false },
    scopes: { type: 'string', default: 'openid profile offline_access mcp:tools admin:write files:read' },
  },
});
const realm = args.realm;
const scopesSupported = args.scopes.split(/\s+/).filter(Boolean);
let issuer = ''; // known once listening

const clients = new Map(); // client_id -> registration
const codes = new Map(); // code -> {client_id, redirect_uri, challenge, resource, scope, used}
const tokens = new Map(); // access token -> {client_id, resource, scope, exp}
const refreshTokens = new Map(); // refresh token -> {client_id, resource, scope}
const events = []; // what was granted, for the tests

function metadata() {
  const base = `${issuer}/protocol/openid-connect`;
  return {
    issuer,
    authorization_endpoint: `${base}/auth`,
    token_endpoint: `${base}/token`,
    introspection_endpoint: `${base}/token/introspect`,
    registration_endpoint: `${issuer}/clients-registrations/openid-connect`,
    jwks_uri: `${base}/certs`,
    response_types_supported: ['code'],
    grant_types_supported: args.refresh ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['none'],
    scopes_supported: scopesSupported,
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    ...(args.iss ? { authorization_response_iss_parameter_supported: true } : {}),
  };
}

function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Allow-Headers': 'authorization, content-type, mcp-protocol-version',
    'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
    'Cache-Control': 'no-store',
    ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    ...headers,
  });
  res.end(text);
}

const oauthError = (res, status, error, description) =>
  send(res, status, { error, error_description: description });

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

const b64url = (buf) => buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const secret = (prefix) => `${prefix}-${b64url(randomBytes(24))}`;

function validResource(r) {
  try {
    const u = new URL(r);
    return (u.protocol === 'http:' || u.protocol === 'https:') && !u.hash;
  } catch {
    return false;
  }
}

/** Checks a requested scope; returns an error message or null. */
function scopeProblem(scope) {
  if (!scope) return args['require-scope'] ? 'a scope is required' : null;
  const unknown = scope.split(' ').filter((s) => !scopesSupported.includes(s));
  return unknown.length ? `unknown scope ${unknown.join(' ')}` : null;
}

function issue(client_id, resource, scope) {
  const access_token = secret('at');
  tokens.set(access_token, { client_id, resource, scope, exp: Math.floor(Date.now() / 1000) + 3600 });
  const out = { access_token, token_type: 'Bearer', expires_in: 3600, ...(scope ? { scope } : {}) };
  if (args.refresh) {
    out.refresh_token = secret('rt');
    refreshTokens.set(out.refresh_token, { client_id, resource, scope });
  }
  events.push({ kind: 'token', client_id, resource, scope: scope ?? null });
  return out;
}

async function register(req, res) {
  let meta;
  try {
    meta = JSON.parse((await readBody(req)) || '{}');
  } catch {
    return oauthError(res, 400, 'invalid_client_metadata', 'the body is not JSON');
  }
  if (!Array.isArray(meta.redirect_uris) || meta.redirect_uris.length === 0) {
    return oauthError(res, 400, 'invalid_redirect_uri', 'redirect_uris is required');
  }
  if (meta.scope && scopeProblem(meta.scope)) return oauthError(res, 400, 'invalid_client_metadata', scopeProblem(meta.scope));
  const client = {
    ...meta,
    client_id: `dcr-${randomUUID()}`,
    client_id_issued_at: Math.floor(Date.now() / 1000),
    token_endpoint_auth_method: 'none',
  };
  delete client.client_secret;
  clients.set(client.client_id, client);
  events.push({ kind: 'registration', client_id: client.client_id, scope: meta.scope ?? null });
  return send(res, 201, client);
}

function authorize(url, res) {
  const q = url.searchParams;
  const client = clients.get(q.get('client_id') ?? '');
  if (!client) return oauthError(res, 400, 'invalid_client', 'unknown client_id');
  const redirect = q.get('redirect_uri') ?? '';
  if (!client.redirect_uris.includes(redirect)) return oauthError(res, 400, 'invalid_request', 'redirect_uri is not registered');
  // From here on, errors go back to the client on its redirect_uri (RFC 6749 §4.1.2.1).
  const back = new URL(redirect);
  const fail = (error, description) => {
    back.searchParams.set('error', error);
    back.searchParams.set('error_description', description);
    if (q.get('state')) back.searchParams.set('state', q.get('state'));
    if (args.iss) back.searchParams.set('iss', issuer);
    events.push({ kind: 'authorization_error', client_id: client.client_id, error, description });
    return send(res, 302, undefined, { Location: back.href });
  };
  if (q.get('response_type') !== 'code') return fail('unsupported_response_type', 'only code');
  if (q.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43,128}$/.test(q.get('code_challenge') ?? '')) {
    return fail('invalid_request', 'PKCE with S256 is required');
  }
  const resource = q.get('resource');
  if (!resource || !validResource(resource)) return fail('invalid_target', 'an RFC 8707 resource (absolute URL) is required');
  const scope = q.get('scope') || undefined;
  const problem = scopeProblem(scope);
  if (problem) return fail(scope ? 'invalid_scope' : 'access_denied', problem);
  const code = secret('code');
  codes.set(code, { client_id: client.client_id, redirect_uri: redirect, challenge: q.get('code_challenge'), resource, scope, used: false });
  events.push({ kind: 'authorization', client_id: client.client_id, resource, scope: scope ?? null });
  back.searchParams.set('code', code);
  if (q.get('state')) back.searchParams.set('state', q.get('state'));
  if (args.iss) back.searchParams.set('iss', issuer);
  return send(res, 302, undefined, { Location: back.href });
}

async function token(req, res) {
  const form = new URLSearchParams(await readBody(req));
  const grant = form.get('grant_type');
  if (grant === 'authorization_code') {
    const entry = codes.get(form.get('code') ?? '');
    if (!entry || entry.used) return oauthError(res, 400, 'invalid_grant', 'unknown or used code');
    entry.used = true;
    if (form.get('client_id') !== entry.client_id) return oauthError(res, 400, 'invalid_grant', 'client_id differs from the authorization request');
    if (form.get('redirect_uri') !== entry.redirect_uri) return oauthError(res, 400, 'invalid_grant', 'redirect_uri differs');
    const verifier = form.get('code_verifier') ?? '';
    if (b64url(createHash('sha256').update(verifier).digest()) !== entry.challenge) {
      return oauthError(res, 400, 'invalid_grant', 'PKCE verification failed');
    }
    const resource = form.get('resource');
    if (!resource) return oauthError(res, 400, 'invalid_target', 'the token request has no resource');
    if (resource !== entry.resource) return oauthError(res, 400, 'invalid_target', 'resource differs from the authorization request');
    return send(res, 200, issue(entry.client_id, resource, entry.scope));
  }
  if (grant === 'refresh_token' && args.refresh) {
    const entry = refreshTokens.get(form.get('refresh_token') ?? '');
    if (!entry || form.get('client_id') !== entry.client_id) return oauthError(res, 400, 'invalid_grant', 'unknown refresh token');
    const resource = form.get('resource') ?? entry.resource;
    if (resource !== entry.resource) return oauthError(res, 400, 'invalid_target', 'resource differs from the grant');
    return send(res, 200, issue(entry.client_id, resource, entry.scope));
  }
  return oauthError(res, 400, 'unsupported_grant_type', `grant_type ${grant}`);
}

async function introspect(req, res) {
  const form = new URLSearchParams(await readBody(req));
  const t = tokens.get(form.get('token') ?? '');
  if (!t || t.exp < Date.now() / 1000) return send(res, 200, { active: false });
  return send(res, 200, { active: true, iss: issuer, aud: t.resource, scope: t.scope ?? '', client_id: t.client_id, exp: t.exp, token_type: 'Bearer' });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  const p = url.pathname;
  const r = `/realms/${realm}`;
  const oidc = `${r}/protocol/openid-connect`;
  process.stderr.write(`idp: ${req.method} ${p}\n`);
  try {
    if (req.method === 'OPTIONS') return send(res, 204);
    if (req.method === 'GET' && (p === `/.well-known/oauth-authorization-server${r}` || p === `${r}/.well-known/openid-configuration`)) {
      return send(res, 200, metadata());
    }
    if (req.method === 'POST' && p === `${r}/clients-registrations/openid-connect`) return await register(req, res);
    if (req.method === 'GET' && p === `${oidc}/auth`) return authorize(url, res);
    if (req.method === 'POST' && p === `${oidc}/token`) return await token(req, res);
    if (req.method === 'POST' && p === `${oidc}/token/introspect`) return await introspect(req, res);
    if (req.method === 'GET' && p === `${oidc}/certs`) return send(res, 200, { keys: [] });
    if (req.method === 'POST' && p === '/_test/token') {
      const { resource, scope } = JSON.parse((await readBody(req)) || '{}');
      if (!resource) return oauthError(res, 400, 'invalid_target', 'resource is required');
      return send(res, 200, issue('test-minted', resource, scope || undefined));
    }
    if (req.method === 'GET' && p === '/_test/events') return send(res, 200, events);
    return send(res, 404, { error: 'not_found' });
  } catch (e) {
    return send(res, 500, { error: 'server_error', error_description: String(e) });
  }
});

server.listen(Number(args.port), '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `http://127.0.0.1:${port}/realms/${realm}`;
  process.stdout.write(`${JSON.stringify({ port, issuer })}\n`);
});
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => process.exit(0));
