// Reference Node proxy: the least a Node proxy has to do, to show what the gateway's own work costs.
// node:http in, kept-alive upstream connections, round robin, the answer streamed back through the
// client's dispatch handler (no intermediate stream objects). No retries, no logs, no discovery.
// The first path segment (/<service>) is stripped, as the gateway does.
// --gateway-headers: also set the headers the gateway sets (as bench/lib/nginx.mjs does for nginx):
// the forwarded headers, a request id both ways, Via and the answering instance, so the row shows
// what a Node proxy pays for the gateway's header work alone.
// --client=gateway: the gateway's own upstream client (gateway/dist/upstream/client.js, so build
// first) instead of one undici Pool per upstream: the floor under the gateway, same client, none of
// its routing, checks, retries or bookkeeping.
//   node bench/raw-proxy.mjs [--gateway-headers] [--client=undici|gateway] PORT UPSTREAM_PORT...
import { randomUUID } from 'node:crypto';
import http from 'node:http';

const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const gatewayHeaders = flags.includes('--gateway-headers');
const client = flags.find((f) => f.startsWith('--client='))?.slice('--client='.length) ?? 'undici';
const [port, ...upstreams] = process.argv.slice(2).filter((a) => !a.startsWith('--')).map(Number);
// Hop-by-hop headers are per connection, never forwarded; host is set per upstream.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host']);
let next = 0;

const endToEnd = (headers) => Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP.has(k)));

/** The headers the gateway sets on the request (--gateway-headers). */
function ownRequestHeaders(req, id) {
  const ip = req.socket.remoteAddress;
  const xff = req.headers['x-forwarded-for'];
  return {
    'x-forwarded-for': xff ? `${xff}, ${ip}` : ip,
    'x-forwarded-proto': 'http',
    'x-forwarded-host': req.headers.host ?? '',
    'x-real-ip': ip,
    'x-request-id': id,
    via: '1.1 gateway',
  };
}

function badGateway(res, err) {
  if (res.headersSent) res.destroy(err);
  else res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway\n');
}

/** Sends req to upstream i with one of the two clients; the answer goes to res as it arrives. */
const forward = client === 'gateway' ? await gatewayClient() : await undiciClient();

async function undiciClient() {
  const { Pool } = await import('undici');
  const pools = upstreams.map((p) => new Pool(`http://127.0.0.1:${p}`, { keepAliveTimeout: 4000 }));
  return (i, req, res, path, id) => {
    const headers = endToEnd(req.headers);
    if (gatewayHeaders) {
      Object.assign(headers, ownRequestHeaders(req, id));
      delete headers.forwarded;
    }
    pools[i].dispatch({ method: req.method, path, headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req }, {
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
      onResponseEnd: () => res.end(),
      onResponseError: (_c, err) => badGateway(res, err),
    });
  };
}

async function gatewayClient() {
  const { UpstreamClient } = await import('../gateway/dist/upstream/client.js');
  const c = new UpstreamClient({ connectTimeoutMs: 1000, keepAliveMs: 4000, bodyTimeoutMs: 30_000 });
  return (i, req, res, path, id) => {
    // Flat [name, value, ...] lists both ways, as the gateway builds them.
    const headers = [];
    const raw = req.rawHeaders;
    for (let k = 0; k < raw.length; k += 2) {
      const name = raw[k].toLowerCase();
      if (!HOP.has(name) && name !== 'content-length' && !(gatewayHeaders && name === 'forwarded')) headers.push(raw[k], raw[k + 1]);
    }
    if (gatewayHeaders) for (const [k, v] of Object.entries(ownRequestHeaders(req, id))) headers.push(k, v);
    const length = Number(req.headers['content-length'] ?? 0);
    const chunked = req.headers['transfer-encoding'] !== undefined;
    headers.push('host', `127.0.0.1:${upstreams[i]}`);
    if (length > 0) headers.push('content-length', String(length));
    c.dispatch({ host: '127.0.0.1', port: upstreams[i], method: req.method, path, headers, body: length > 0 || chunked ? req : null, contentLength: chunked ? null : length }, {
      onConnect(abort) {
        res.once('close', () => res.writableFinished || abort(new Error('client went away')));
      },
      onRequestSent() {},
      onHeaders(status, raw, resume) {
        const out = [];
        for (let k = 0; k < raw.length; k += 2) if (!HOP.has(raw[k].toLowerCase())) out.push(raw[k], raw[k + 1]);
        if (gatewayHeaders) out.push('x-request-id', id, 'x-upstream-instance', `127.0.0.1:${upstreams[i]}`);
        res.writeHead(status, out);
        this.resume = resume;
        return true;
      },
      onData(chunk) {
        if (res.write(chunk)) return true;
        res.once('drain', this.resume);
        return false;
      },
      onComplete: () => res.end(),
      onError: (err) => badGateway(res, err),
    });
  };
}

const server = http.createServer((req, res) => {
  const i = next++ % upstreams.length;
  const slash = req.url.indexOf('/', 1);
  const path = slash < 0 ? '/' : req.url.slice(slash);
  const id = gatewayHeaders ? randomUUID() : undefined;
  forward(i, req, res, path, id);
});
server.keepAliveTimeout = 65_000; // outlasts any client idle time in the bench
server.listen(port, '127.0.0.1');
