// The MCP gateway of the login tests (tests/proxies.rs, tests/common/e2e.rs): a REAL MCP server (the
// TypeScript SDK's McpServer over StreamableHTTPServerTransport, stateless, one server per request) on
// every path, behind the main proxy, that accepts only tokens of the test IdP (test-idp.mjs) issued
// for its PUBLIC URL: the token's audience (RFC 8707 resource, read by RFC 7662 introspection) must be
// one of the --audience URLs and name the path of this very request.
//
//   no token                       401 `Bearer realm="backend-own-challenge"` (the gateway's OWN challenge:
//                                  the proxy must replace it with signpost's)
//   a token the IdP does not know,  401 `Bearer realm="backend-own-challenge", error="invalid_token", ...`
//   or issued for another resource
//   tools/call of a tool whose      403 `Bearer realm="backend-own-challenge", error="insufficient_scope",
//   scope the token lacks           scope="<the tool's scope>"`
//   otherwise                      the MCP answer (SSE unless the client accepts only JSON)
//
// Tools: `echo` (no scope), `admin_write` (needs admin:write), `files_read` (needs files:read) and
// `stream`, which sends a log notification on the answer's SSE stream, waits --stream-delay ms, then
// returns: a proxy that buffers SSE delivers both at once.
//
// Test-only request headers (raw tests shape the gateway's answer with them; the proxy forwards them):
//   x-e2e-status: N         answer N with a JSON body and no challenge (e.g. 500 for --rescue-5xx)
//   x-e2e-extra-challenge   add a second WWW-Authenticate line (`Basic realm="backend-basic"`) to a 401/403
//   x-e2e-forbid            answer 403 without insufficient_scope (a policy refusal)
//   x-e2e-echo-headers      answer 200 with the request headers as JSON, no auth (what the proxy forwards)
//
// Usage: node mcp-backend.mjs --introspect URL --audience URL [--audience URL ...] [--port N]
//                             [--stream-delay MS] [--introspect-client ID:SECRET]
//   --introspect-client  authenticate the introspection request (HTTP Basic), as oidc-provider needs
// Prints `{"port":N}` on stdout once listening; logs each request (never a token) to stderr.
import http from 'node:http';
import { parseArgs } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    introspect: { type: 'string' },
    'introspect-client': { type: 'string' },
    audience: { type: 'string', multiple: true, default: [] },
    'stream-delay': { type: 'string', default: '1500' },
  },
});
if (!args.introspect || args.audience.length === 0) {
  process.stderr.write('usage: node mcp-backend.mjs --introspect URL --audience URL [...]\n');
  process.exit(2);
}
const audiences = new Set(args.audience);
const streamDelay = Number(args['stream-delay']);
const OWN = 'Bearer realm="backend-own-challenge"';
/** The scope each tool needs, beyond a valid token. */
const TOOL_SCOPES = { admin_write: 'admin:write', files_read: 'files:read' };

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

const stripSlash = (p) => (p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p);

/** The token's introspection when it is valid for this request's URL, else a reason. */
async function verify(token, path) {
  const res = await fetch(args.introspect, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(args['introspect-client']
        ? { authorization: `Basic ${Buffer.from(args['introspect-client']).toString('base64')}` }
        : {}),
    },
    body: new URLSearchParams({ token }),
  });
  const info = await res.json();
  if (!info.active && res.status !== 200) return { error: `introspection answered ${res.status}: ${JSON.stringify(info)}` };
  if (!info.active) return { error: 'the token is not active at the IdP' };
  if (!audiences.has(info.aud)) return { error: `the token is for ${info.aud}, not for this server` };
  if (stripSlash(new URL(info.aud).pathname) !== stripSlash(path)) {
    return { error: `the token is for ${info.aud}, not for ${path}` };
  }
  return { info };
}

function challenge(res, status, params, extra, body) {
  const lines = [params ? `${OWN}, ${params}` : OWN];
  if (extra) lines.push('Basic realm="backend-basic"');
  res.writeHead(status, { 'WWW-Authenticate': lines, 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

function mcpServer() {
  const server = new McpServer(
    { name: 'signpost-e2e-backend', version: '0.0.0' },
    { capabilities: { logging: {} } },
  );
  const text = (t) => ({ content: [{ type: 'text', text: t }] });
  server.registerTool('echo', { description: 'Answers "echo"' }, async () => text('echo'));
  server.registerTool('admin_write', { description: 'Needs admin:write' }, async () => text('admin_write done'));
  server.registerTool('files_read', { description: 'Needs files:read' }, async () => text('files_read done'));
  server.registerTool('stream', { description: 'Streams a notification, then answers' }, async (extra) => {
    await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: 'first event' } });
    await new Promise((r) => setTimeout(r, streamDelay));
    return text('stream done');
  });
  return server;
}

const server = http.createServer(async (req, res) => {
  const path = new URL(req.url, 'http://backend').pathname;
  const auth = req.headers.authorization ?? '';
  process.stderr.write(`backend: ${req.method} ${req.url} token=${auth ? 'yes' : 'no'}\n`);
  try {
    const body = await readBody(req);
    if (req.headers['x-e2e-echo-headers'] !== undefined) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify(req.headers));
    }
    const forced = req.headers['x-e2e-status'];
    if (forced) {
      res.writeHead(Number(forced), { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ error: 'forced', status: Number(forced) }));
    }
    const extra = req.headers['x-e2e-extra-challenge'] !== undefined;
    if (req.headers['x-e2e-forbid'] !== undefined) {
      return challenge(res, 403, 'error="access_denied"', extra, { error: 'forbidden-by-policy' });
    }
    const token = /^Bearer (.+)$/i.exec(auth)?.[1];
    if (!token) return challenge(res, 401, '', extra, { error: 'backend-own-401' });
    const { info, error } = await verify(token, path);
    if (!info) {
      process.stderr.write(`backend: rejected the token: ${error}\n`);
      return challenge(res, 401, `error="invalid_token", error_description="${error.replace(/"/g, "'")}"`, extra, {
        error: 'backend-own-invalid-token',
      });
    }
    let parsed;
    if (req.method === 'POST') {
      try {
        parsed = JSON.parse(body);
      } catch {
        res.writeHead(400, { 'Content-Type': 'application/json' });
        return res.end('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}');
      }
      const granted = new Set((info.scope ?? '').split(' ').filter(Boolean));
      for (const msg of Array.isArray(parsed) ? parsed : [parsed]) {
        const need = msg?.method === 'tools/call' ? TOOL_SCOPES[msg.params?.name] : undefined;
        if (need && !granted.has(need)) {
          return challenge(res, 403, `error="insufficient_scope", scope="${need}"`, extra, { error: 'insufficient_scope' });
        }
      }
    }
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    const mcp = mcpServer();
    res.on('close', () => {
      transport.close();
      mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res, parsed);
  } catch (e) {
    process.stderr.write(`backend: error ${e?.stack ?? e}\n`);
    if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: 'backend_error', error_description: String(e) }));
  }
});

server.listen(Number(args.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => process.exit(0));
