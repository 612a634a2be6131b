// Reference Node proxy: the least a Node proxy has to do, to show what the gateway's own work costs.
// node:http in, one undici Pool per upstream (kept-alive), round robin, the answer streamed back
// through undici's dispatch handler (no intermediate stream objects). No retries, no logs, no
// discovery. The first path segment (/<service>) is stripped, as the gateway does.
// --gateway-headers: also set the headers the gateway sets (as bench/lib/nginx.mjs does for nginx):
// the forwarded headers, a request id both ways, Via and the answering instance, so the row shows
// what a Node proxy pays for the gateway's header work alone.
//   node bench/raw-proxy.mjs [--gateway-headers] PORT UPSTREAM_PORT...
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { Pool } from 'undici';

const args = process.argv.slice(2);
const gatewayHeaders = args[0] === '--gateway-headers';
const [port, ...upstreams] = args.slice(gatewayHeaders ? 1 : 0).map(Number);
const pools = upstreams.map((p) => new Pool(`http://127.0.0.1:${p}`, { keepAliveTimeout: 4000 }));
// Hop-by-hop headers are per connection, never forwarded; host is set by undici from the origin.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host']);
const endToEnd = (headers) => Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP.has(k)));
let next = 0;

const server = http.createServer((req, res) => {
  const i = next++ % pools.length;
  const pool = pools[i];
  const slash = req.url.indexOf('/', 1);
  const path = slash < 0 ? '/' : req.url.slice(slash);
  const body = req.method === 'GET' || req.method === 'HEAD' ? null : req;
  const headers = endToEnd(req.headers);
  let id;
  if (gatewayHeaders) {
    const ip = req.socket.remoteAddress;
    id = randomUUID();
    const xff = req.headers['x-forwarded-for'];
    Object.assign(headers, {
      'x-forwarded-for': xff ? `${xff}, ${ip}` : ip,
      'x-forwarded-proto': 'http',
      'x-forwarded-host': req.headers.host ?? '',
      'x-real-ip': ip,
      'x-request-id': id,
      via: '1.1 gateway',
    });
    delete headers.forwarded;
  }
  pool.dispatch({ method: req.method, path, headers, body }, {
    onRequestStart(controller) {
      res.once('close', () => res.writableFinished || controller.abort(new Error('client went away')));
    },
    onResponseStart(_c, status, headers) {
      const out = endToEnd(headers);
      if (gatewayHeaders) Object.assign(out, { 'x-request-id': id, 'x-upstream-instance': `127.0.0.1:${upstreams[i]}` });
      res.writeHead(status, out);
    },
    onResponseData(controller, chunk) {
      // Backpressure: stop reading the upstream while the client is not keeping up.
      if (!res.write(chunk)) {
        controller.pause();
        res.once('drain', () => controller.resume());
      }
    },
    onResponseEnd() {
      res.end();
    },
    onResponseError(_c, err) {
      if (res.headersSent) res.destroy(err);
      else res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway\n');
    },
  });
});
server.keepAliveTimeout = 65_000; // outlasts any client idle time in the bench
server.listen(port, '127.0.0.1');
