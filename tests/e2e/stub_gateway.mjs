// A gateway stand-in for checking the shipped main-proxy configurations (deploy/<proxy>/) by hand
// or from a test: every answer is chosen by the request, so one process covers every case.
//
//   x-stub-status: N               answer N (default: 401 without Authorization, else 200)
//   x-stub-www-authenticate: V     put `WWW-Authenticate: V` on the answer (default on a 401:
//                                  `Bearer realm="stub-gateway"`); `x-stub-www-authenticate-2`
//                                  adds a second WWW-Authenticate line
//   x-stub-sse: N                  answer 200 text/event-stream with N events, 300 ms apart
//   x-stub-delay-ms: N             wait N ms before answering
// Every non-SSE answer's JSON body says what the stub saw: {"status", "method", "url", "headers",
// "body_bytes"}; SSE answers carry `Mcp-Session-Id: stub-session`.
//
// Usage: node stub_gateway.mjs [--port N]. Prints `{"port":N}` on stdout once listening.
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({ options: { port: { type: 'string', default: '0' } } });

const server = http.createServer(async (req, res) => {
  let bytes = 0;
  for await (const c of req) bytes += c.length;
  const h = req.headers;
  process.stderr.write(`stub-gateway: ${req.method} ${req.url} auth=${JSON.stringify(h.authorization ?? '')}\n`);
  const delay = Number(h['x-stub-delay-ms'] ?? 0);
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));

  const sse = Number(h['x-stub-sse'] ?? 0);
  if (sse > 0) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', 'Mcp-Session-Id': 'stub-session' });
    for (let i = 0; i < sse; i++) {
      res.write(`event: message\ndata: {"n":${i}}\n\n`);
      await new Promise((r) => setTimeout(r, 300));
    }
    return res.end();
  }

  const status = Number(h['x-stub-status'] ?? (h.authorization ? 200 : 401));
  const headers = [['Content-Type', 'application/json'], ['Mcp-Session-Id', 'stub-session']];
  const challenge = h['x-stub-www-authenticate'] ?? (status === 401 ? 'Bearer realm="stub-gateway"' : undefined);
  if (challenge !== undefined) headers.push(['WWW-Authenticate', challenge]);
  if (h['x-stub-www-authenticate-2'] !== undefined) headers.push(['WWW-Authenticate', h['x-stub-www-authenticate-2']]);
  res.writeHead(status, headers.flat());
  res.end(JSON.stringify({ status, method: req.method, url: req.url, headers: h, body_bytes: bytes }) + '\n');
});

server.listen(Number(args.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => process.exit(0));
