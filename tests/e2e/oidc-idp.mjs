// A real, certified OpenID provider as the upstream IdP of the login tests: `oidc-provider` (npm,
// pinned in package-lock.json) under a PATH issuer http://127.0.0.1:<port>/realms/<realm>, with open
// dynamic registration, PKCE (S256, required), resource indicators (RFC 8707: access tokens bound
// to the MCP URL) and interactions that approve at once: the authorization request redirects to
// /interaction/<uid>, which logs the user in, grants every requested scope for the requested
// resource and redirects back, and the provider then redirects to the client with code, state and
// RFC 9207 `iss` (which oidc-provider always sends). Its discovery document is only at
// {issuer}/.well-known/openid-configuration, as oidc-provider serves it.
//
// The MCP backend (mcp-backend.mjs) verifies tokens by RFC 7662 introspection as the confidential
// client `mcp-backend` (secret `mcp-backend-secret`, a test fixture): pass
// `--introspect {issuer}/token/introspection --introspect-client mcp-backend:mcp-backend-secret`.
//
// Usage: node oidc-idp.mjs [--port N] [--realm eng] [--scopes "openid offline_access mcp:tools ..."]
// Prints one line `{"port":N,"issuer":"..."}` on stdout once listening; logs requests to stderr.
import http from 'node:http';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    realm: { type: 'string', default: 'eng' },
    scopes: { type: 'string', default: 'openid offline_access mcp:tools admin:write files:read' },
  },
});
const scopes = args.scopes.split(/\s+/).filter(Boolean);
const oidcScopes = new Set(['openid', 'offline_access']);
const prefix = `/realms/${args.realm}`;

const server = http.createServer();
server.listen(Number(args.port), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}${prefix}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'mcp-backend',
        client_secret: 'mcp-backend-secret',
        token_endpoint_auth_method: 'client_secret_basic',
        redirect_uris: [],
        response_types: [],
        grant_types: [],
      },
    ],
    scopes,
    clientDefaults: { token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'] },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => ({
          scope: scopes.filter((s) => !oidcScopes.has(s)).join(' '),
          audience: resource,
          accessTokenFormat: 'opaque',
          accessTokenTTL: 3600,
        }),
      },
    },
    pkce: { required: () => true },
    interactions: { url: (_ctx, interaction) => `${prefix}/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
  });
  provider.proxy = false;
  const callback = provider.callback();

  server.on('request', async (req, res) => {
    process.stderr.write(`oidc-idp: ${req.method} ${req.url.split('?')[0]}\n`);
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type, mcp-protocol-version');
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
    try {
      const path = new URL(req.url, issuer).pathname;
      if (path.startsWith(`${prefix}/interaction/`)) {
        // Approve at once: log in as `user`, grant what was asked for, go back to the provider.
        const details = await provider.interactionDetails(req, res);
        const { params, prompt } = details;
        const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId: 'user', clientId: params.client_id });
        // Grant exactly what the provider says is missing (its own example's way), and the
        // requested scopes for the requested resource.
        const missing = prompt.details ?? {};
        if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
        if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
        for (const [indicator, s] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, s.join(' '));
        const requested = String(params.scope ?? '').split(' ').filter((s) => s && !oidcScopes.has(s));
        for (const r of [params.resource ?? []].flat()) grant.addResourceScope(r, requested.join(' '));
        const grantId = await grant.save();
        const result = prompt.name === 'login' ? { login: { accountId: 'user' }, consent: { grantId } } : { consent: { grantId } };
        return await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
      }
      if (path === prefix || path.startsWith(`${prefix}/`)) {
        // Mounted under the issuer's path, as express's app.use(prefix, …) would.
        req.originalUrl = req.url;
        req.url = req.url.slice(prefix.length) || '/';
        return callback(req, res);
      }
      res.writeHead(404, { 'Content-Type': 'application/json' });
      return res.end('{"error":"not_found"}');
    } catch (e) {
      process.stderr.write(`oidc-idp: error ${e?.stack ?? e}\n`);
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ error: 'server_error', error_description: String(e) }));
    }
  });
  process.stdout.write(`${JSON.stringify({ port, issuer })}\n`);
});
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => process.exit(0));
