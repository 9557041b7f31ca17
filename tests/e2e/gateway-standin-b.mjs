// A gateway stand-in for checking the main-proxy configurations of deploy/<proxy>/ by hand (and
// from tests): it answers whatever the request asks for, so every path a proxy must handle can be
// reached with curl alone. Each request is answered from its own headers:
//
//   X-Standin-Status: N            answer status N (default 200)
//   X-Standin-WWW-Authenticate: V  the gateway's own WWW-Authenticate (default on 401/403:
//                                  `Bearer realm="gateway-own-challenge"`; `none` sends none)
//   X-Standin-Body-Bytes: N        a body of N bytes instead of the JSON echo (for "body relayed?")
//   X-Standin-SSE: N               200 text/event-stream, N events 300 ms apart, then the end
//   X-Standin-Delay-Ms: N          wait N ms before answering
//
// The default body is a JSON echo of what the gateway received: method, URL, headers, body
// length. Tests read it to prove that a request reached the gateway unchanged (or that the
// client's token and cookies never reached signpost: the proxy must not call this server for
// /.well-known/).
//
// Every request is logged on stderr (method, URL, headers).
//
// Usage: node gateway-standin-b.mjs [--port N] [--hang]
//   --hang   accept connections and never answer: a stand-in for a signpost that is up but stuck
// Prints `{"port":N}` on stdout once listening; exits on SIGTERM/SIGINT.
import http from 'node:http';
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: { port: { type: 'string', default: '0' }, hang: { type: 'boolean', default: false } },
});

function listening(server) {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
}

if (args.hang) {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.resume(); // read and drop whatever comes, answer nothing
  });
  server.listen(Number(args.port), '127.0.0.1', () => listening(server));
} else {
  const server = http.createServer(async (req, res) => {
    let length = 0;
    for await (const c of req) length += c.length;
    const h = req.headers;
    process.stderr.write(`gateway-standin-b: ${req.method} ${req.url} ${JSON.stringify(h)}\n`);
    const delay = Number(h['x-standin-delay-ms'] ?? 0);
    if (delay > 0) await new Promise((r) => setTimeout(r, Math.min(delay, 60_000)));

    if (h['x-standin-sse'] !== undefined) {
      const n = Math.min(Number(h['x-standin-sse']) || 0, 100);
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', 'Mcp-Session-Id': 'standin-session' });
      res.flushHeaders();
      for (let i = 0; i < n; i += 1) {
        res.write(`id: ${i}\ndata: {"event":${i}}\n\n`);
        await new Promise((r) => setTimeout(r, 300));
      }
      return res.end();
    }

    const status = Number(h['x-standin-status'] ?? 200);
    const headers = { 'Content-Type': 'application/json', 'X-Standin': 'gateway' };
    if (status === 200) headers['Mcp-Session-Id'] = 'standin-session';
    let www = h['x-standin-www-authenticate'];
    if (www === undefined && (status === 401 || status === 403)) www = 'Bearer realm="gateway-own-challenge"';
    if (www !== undefined && www !== 'none') headers['WWW-Authenticate'] = www;
    const bodyBytes = h['x-standin-body-bytes'];
    const body = bodyBytes !== undefined
      ? 'x'.repeat(Math.min(Number(bodyBytes) || 0, 10_000_000))
      : `${JSON.stringify({ gateway: true, status, method: req.method, url: req.url, headers: h, body_length: length })}\n`;
    headers['Content-Length'] = Buffer.byteLength(body);
    res.writeHead(status, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  server.listen(Number(args.port), '127.0.0.1', () => listening(server));
}
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => process.exit(0));
