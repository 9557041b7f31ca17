// A local test identity provider shaped like Keycloak: a PATH issuer http://127.0.0.1:<port>/realms/<realm>.
//
//   GET  /.well-known/oauth-authorization-server/realms/<realm>   RFC 8414 metadata (path-inserted)
//   GET  /realms/<realm>/.well-known/openid-configuration         OIDC discovery (path-appended)
//   POST /realms/<realm>/clients-registrations/openid-connect     dynamic client registration (RFC 7591)
//   GET  /realms/<realm>/protocol/openid-connect/auth             authorization endpoint (302 back with a code)
//   POST /realms/<realm>/protocol/openid-connect/token            token endpoint (access_token "good")
//   GET  /realms/<realm>/protocol/openid-connect/certs            JWKS (empty)
// Everything else is 404, including /.well-known/openid-configuration/realms/<realm>, which
// Keycloak does not serve either. Every answer carries CORS headers, like a well-configured IdP.
//
// Usage: node idp.mjs [--port N] [--realm eng]. Prints one line `{"port":N,"issuer":"..."}` on
// stdout once listening (port 0 = any free port), then logs each request to stderr.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: { port: { type: 'string', default: '0' }, realm: { type: 'string', default: 'eng' } },
});
const realm = args.realm;
let issuer = ''; // known once listening

function metadata() {
  const base = `${issuer}/protocol/openid-connect`;
  return {
    issuer,
    authorization_endpoint: `${base}/auth`,
    token_endpoint: `${base}/token`,
    registration_endpoint: `${issuer}/clients-registrations/openid-connect`,
    jwks_uri: `${base}/certs`,
    response_types_supported: ['code'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['none', 'client_secret_post', 'client_secret_basic'],
    scopes_supported: ['openid', 'profile', 'admin:write'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
  };
}

function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Allow-Headers': 'authorization, content-type, mcp-protocol-version',
    'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
    ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    ...headers,
  });
  res.end(text);
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  const p = url.pathname;
  const r = `/realms/${realm}`;
  process.stderr.write(`idp: ${req.method} ${req.url}\n`);
  try {
    if (req.method === 'OPTIONS') return send(res, 204);
    if (req.method === 'GET' && (p === `/.well-known/oauth-authorization-server${r}` || p === `${r}/.well-known/openid-configuration`)) {
      return send(res, 200, metadata());
    }
    if (req.method === 'POST' && p === `${r}/clients-registrations/openid-connect`) {
      const meta = JSON.parse((await readBody(req)) || '{}');
      if (!Array.isArray(meta.redirect_uris) || meta.redirect_uris.length === 0) {
        return send(res, 400, { error: 'invalid_redirect_uri', error_description: 'redirect_uris is required' });
      }
      return send(res, 201, { ...meta, client_id: `dcr-${randomUUID()}`, client_id_issued_at: Math.floor(Date.now() / 1000) });
    }
    if (req.method === 'GET' && p === `${r}/protocol/openid-connect/auth`) {
      const q = url.searchParams;
      if (q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge') || !q.get('redirect_uri')) {
        return send(res, 400, { error: 'invalid_request', error_description: 'PKCE S256 and redirect_uri are required' });
      }
      const back = new URL(q.get('redirect_uri'));
      back.searchParams.set('code', `code-${randomUUID()}`);
      if (q.get('state')) back.searchParams.set('state', q.get('state'));
      return send(res, 302, undefined, { Location: back.href });
    }
    if (req.method === 'POST' && p === `${r}/protocol/openid-connect/token`) {
      await readBody(req);
      return send(res, 200, { access_token: 'good', token_type: 'Bearer', expires_in: 300 });
    }
    if (req.method === 'GET' && p === `${r}/protocol/openid-connect/certs`) return send(res, 200, { keys: [] });
    return send(res, 404, { error: 'not_found' });
  } catch (e) {
    return send(res, 500, { error: 'server_error', error_description: String(e) });
  }
});

server.listen(Number(args.port), '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `http://127.0.0.1:${port}${`/realms/${realm}`}`;
  process.stdout.write(`${JSON.stringify({ port, issuer })}\n`);
});
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => process.exit(0));
