// A real, certified OpenID provider (the `oidc-provider` npm package, pinned in package-lock.json)
// as the upstream IdP of the end-to-end tests, under a PATH issuer http://127.0.0.1:<port>/<path>:
//
//   GET  /<path>/.well-known/openid-configuration   OIDC discovery (the only metadata URL it serves,
//                                                   like Keycloak: the path-inserted forms are 404)
//   POST /<path>/reg                                open dynamic client registration (RFC 7591)
//   GET  /<path>/auth                               authorization endpoint, approving at once
//   POST /<path>/token                              token endpoint
//   GET  /<path>/jwks                               the key the access tokens are signed with
//   POST /_test/introspect                          RFC 7662 introspection without client auth, for
//                                                   the test MCP backend (mcp-backend.mjs --introspect):
//                                                   checks the JWT's signature and expiry itself
//
// Settings that matter to MCP clients:
// - PKCE (S256) is required of every client;
// - resource indicators (RFC 8707): the `resource` a client sends (the MCP URL) is the `aud` of its
//   access token, a JWT signed with the key at jwks_uri (scope `mcp:tools`); a token request
//   without a resource gets no token for it;
// - scopes_supported is `openid offline_access mcp:tools`: a requested scope outside it fails;
// - RFC 9207: the authorization response always carries `iss` (oidc-provider always sends it);
// - no UI: devInteractions is off and the only interaction prompt logs the user `test-user` in and
//   grants every requested scope in its check, so /auth answers with the redirect to the client
//   directly (no cookies, no pages).
//
// Usage: node oidc.mjs [--port N] [--path oidc]. Prints one line
// `{"port":N,"issuer":"...","introspect":"..."}` on
// stdout once listening (port 0 = any free port), then logs each request to stderr. Stops on
// SIGTERM or SIGINT.
import http from 'node:http';
import { generateKeyPairSync, createPublicKey, verify } from 'node:crypto';
import { parseArgs } from 'node:util';
import Provider, { interactionPolicy } from 'oidc-provider';

const { values: args } = parseArgs({
  options: { port: { type: 'string', default: '0' }, path: { type: 'string', default: 'oidc' } },
});
const mount = `/${args.path.replace(/^\/+|\/+$/g, '')}`;
const ACCOUNT = 'test-user';
const RESOURCE_SCOPE = 'mcp:tools';

// Listen first: the issuer must name the real port.
const server = http.createServer();
await new Promise((resolve) => server.listen(Number(args.port), '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}${mount}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: 'e2e' };

// Logs the user in and grants everything the request asks for, inside the policy's one check, so
// the authorization request resolves without any interaction.
const { Prompt, Check } = interactionPolicy;
const autoApprove = new Prompt(
  { name: 'login', requestable: true },
  new Check('auto_approve', 'the test user is logged in and every scope granted', async (ctx) => {
    const { oidc } = ctx;
    if (!oidc.session.accountId) {
      oidc.session.loginAccount({ accountId: ACCOUNT });
    }
    if (!oidc.entities.Account) {
      oidc.entity('Account', await findAccount(ctx, ACCOUNT));
    }
    let grant = oidc.entities.Grant;
    if (!grant) {
      grant = new oidc.provider.Grant({ accountId: ACCOUNT, clientId: oidc.client.clientId });
      oidc.entity('Grant', grant);
    }
    const oidcScopes = [...oidc.requestParamOIDCScopes].join(' ');
    if (oidcScopes) grant.addOIDCScope(oidcScopes);
    const scopes = [...oidc.requestParamScopes].join(' ');
    for (const resource of Object.keys(oidc.resourceServers)) {
      if (scopes) grant.addResourceScope(resource, scopes);
    }
    await grant.save();
    oidc.session.ensureClientContainer(oidc.params.client_id);
    oidc.session.grantIdFor(oidc.params.client_id, grant.jti);
    return Check.NO_NEED_TO_PROMPT;
  }),
);

// `consent` must exist for clients that send prompt=consent (the Python SDK does, with
// offline_access); it never asks. A requestable prompt gets a check that asks whenever the client
// requested it: removed from both, so a requested prompt is answered by the auto-approval above.
const consent = new Prompt({ name: 'consent', requestable: true });
consent.checks.remove('consent_prompt');
autoApprove.checks.remove('login_prompt');

async function findAccount(_ctx, sub) {
  return { accountId: sub, claims: async () => ({ sub }) };
}

const provider = new Provider(issuer, {
  jwks: { keys: [jwk] },
  cookies: { keys: ['signpost-e2e-cookie-key-not-a-secret'] },
  findAccount,
  scopes: ['openid', 'offline_access', RESOURCE_SCOPE],
  claims: { openid: ['sub'] },
  interactions: { policy: [autoApprove, consent], url: (_ctx, i) => `${mount}/interaction/${i.uid}` },
  pkce: { required: () => true },
  clientBasedCORS: () => true,
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resourceIndicator) => ({
        scope: RESOURCE_SCOPE,
        audience: resourceIndicator,
        accessTokenTTL: 3600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  renderError: (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});
provider.on('server_error', (_ctx, err) => console.error(`oidc-provider server_error: ${err.stack}`));

// Introspection for the backend: a JWT access token signed by our key and not expired is active.
const publicKey = createPublicKey(privateKey);
function introspect(token) {
  const [head, payload, sig] = String(token).split('.');
  if (!head || !payload || !sig) return { active: false };
  const ok = verify('sha256', Buffer.from(`${head}.${payload}`), publicKey, Buffer.from(sig, 'base64url'));
  if (!ok) return { active: false };
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  if (claims.iss !== issuer || !(claims.exp > Date.now() / 1000)) return { active: false };
  return { active: true, ...claims };
}

const callback = provider.callback();
server.on('request', async (req, res) => {
  console.error(`${req.method} ${req.url}`);
  if (req.method === 'POST' && req.url === '/_test/introspect') {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const token = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('token');
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(introspect(token)));
    return;
  }
  if (req.url === mount || req.url.startsWith(`${mount}/`) || req.url.startsWith(`${mount}?`)) {
    // Mounted under the issuer's path: oidc-provider reads the mount from originalUrl.
    req.originalUrl = req.url;
    req.url = req.url.slice(mount.length) || '/';
    callback(req, res);
    return;
  }
  res.writeHead(404, { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*' });
  res.end(JSON.stringify({ error: 'not_found' }));
});

console.log(JSON.stringify({ port, issuer, introspect: `http://127.0.0.1:${port}/_test/introspect` }));
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
