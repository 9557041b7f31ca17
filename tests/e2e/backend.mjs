// A tiny MCP backend standing in for the gateway behind nginx (Streamable HTTP, JSON answers only).
//
//   no token, or any token but the ones below  401 with the backend's OWN challenge,
//                                               `Bearer realm="backend-own-challenge"` (plus
//                                               error="invalid_token" when a token was sent): the
//                                               test proves that nginx replaces it with signpost's
//   Authorization: Bearer scoped                403 `Bearer error="insufficient_scope", scope="admin:write"`
//   Authorization: Bearer good                  POST: JSON-RPC answers (initialize, tools/list, ...;
//                                               202 for notifications); GET: 405 (no SSE stream);
//                                               DELETE: 200
//
// Usage: node backend.mjs [--port N]. Prints `{"port":N}` on stdout once listening.
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({ options: { port: { type: 'string', default: '0' } } });

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

function answer(msg) {
  switch (msg.method) {
    case 'initialize':
      return {
        protocolVersion: msg.params?.protocolVersion ?? '2025-06-18',
        capabilities: { tools: {} },
        serverInfo: { name: 'signpost-e2e-backend', version: '0.0.0' },
      };
    case 'tools/list':
      return { tools: [] };
    case 'ping':
      return {};
    default:
      return undefined;
  }
}

const server = http.createServer(async (req, res) => {
  const body = await readBody(req);
  const auth = req.headers.authorization ?? '';
  process.stderr.write(`backend: ${req.method} ${req.url} auth=${JSON.stringify(auth)}\n`);
  if (auth === 'Bearer scoped') {
    res.writeHead(403, { 'WWW-Authenticate': 'Bearer error="insufficient_scope", scope="admin:write"', 'Content-Type': 'application/json' });
    return res.end('{"error":"insufficient_scope"}');
  }
  if (auth !== 'Bearer good') {
    const own = auth ? 'Bearer realm="backend-own-challenge", error="invalid_token"' : 'Bearer realm="backend-own-challenge"';
    res.writeHead(401, { 'WWW-Authenticate': own, 'Content-Type': 'application/json' });
    return res.end('{"error":"backend-own-401"}');
  }
  if (req.method === 'GET') {
    res.writeHead(405, { Allow: 'POST, DELETE' });
    return res.end();
  }
  if (req.method === 'DELETE') {
    res.writeHead(200);
    return res.end();
  }
  let msg;
  try {
    msg = JSON.parse(body);
  } catch {
    res.writeHead(400, { 'Content-Type': 'application/json' });
    return res.end('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}');
  }
  if (msg.id === undefined) {
    res.writeHead(202);
    return res.end();
  }
  const result = answer(msg);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Mcp-Session-Id': 'e2e-session' });
  res.end(JSON.stringify(result === undefined
    ? { jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: `unknown method ${msg.method}` } }
    : { jsonrpc: '2.0', id: msg.id, result }));
});

server.listen(Number(args.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => process.exit(0));
