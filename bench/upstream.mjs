// Minimal upstream: ~300 bytes of JSON on any path, keep-alive, nothing else, so the proxy is what
// is measured. The body names the port, to check that proxies spread requests over upstreams.
//   node bench/upstream.mjs PORT
import http from 'node:http';

const port = Number(process.argv[2]);
const body = JSON.stringify({
  service: 'bench-minimal',
  port,
  pid: process.pid,
  message: 'hello from the minimal upstream',
  padding: 'x'.repeat(180),
});
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
// Longer than the proxies' upstream idle timeouts, so the proxy side always closes first.
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
