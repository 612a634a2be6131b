// One Koa proxy, two HTTP clients: `axios` or `undici`, streaming the
// upstream answer back. Used by run.mjs to compare them side by side.
import http from 'node:http';
import Koa from 'koa';
import axios from 'axios';
import { Agent } from 'undici';

const [mode, port, upstreamPort] = process.argv.slice(2);
const origin = `http://127.0.0.1:${upstreamPort}`;
const app = new Koa();

if (mode === 'axios') {
  const client = axios.create({
    baseURL: origin,
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: 128 }),
    maxRedirects: 0,
    decompress: false,
    responseType: 'stream',
    validateStatus: () => true,
    proxy: false,
  });
  app.use(async (ctx) => {
    const res = await client.request({ method: ctx.method, url: ctx.url, headers: { 'x-forwarded-for': ctx.ip } });
    ctx.status = res.status;
    ctx.set('content-type', res.headers['content-type'] ?? 'application/octet-stream');
    ctx.body = res.data;
  });
} else if (mode === 'undici') {
  const dispatcher = new Agent({ connections: 128, keepAliveTimeout: 4000 });
  app.use(async (ctx) => {
    const res = await dispatcher.request({ origin, path: ctx.url, method: ctx.method, headers: { 'x-forwarded-for': ctx.ip } });
    ctx.status = res.statusCode;
    ctx.set('content-type', String(res.headers['content-type'] ?? 'application/octet-stream'));
    ctx.body = res.body;
  });
} else {
  console.error('usage: proxy-server.mjs axios|undici PORT UPSTREAM_PORT');
  process.exit(2);
}
http.createServer(app.callback()).listen(Number(port), '127.0.0.1', () => process.send?.('ready'));
