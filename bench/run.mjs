// Throughput of the Koa proxy on one HTTP client: an upstream and the proxy in
// child processes, then REQUESTS requests at CONCURRENCY through it.
//   node bench/run.mjs axios|undici [requests=20000] [concurrency=50]
import http from 'node:http';
import { fork } from 'node:child_process';
import { Pool } from 'undici';

const [mode, requests = '20000', concurrency = '50'] = process.argv.slice(2);
const here = new URL('.', import.meta.url).pathname;
const port = (p) => new Promise((r) => { const s = http.createServer().listen(0, '127.0.0.1', () => { const n = s.address().port; s.close(() => r(n)); }); });
const upPort = await port();
const proxyPort = await port();
const up = fork(`${here}upstream.mjs`, [String(upPort)]);
await new Promise((r) => up.once('message', r));
const proxy = fork(`${here}proxy-server.mjs`, [mode, String(proxyPort), String(upPort)]);
await new Promise((r) => proxy.once('message', r));

const pool = new Pool(`http://127.0.0.1:${proxyPort}`, { connections: Number(concurrency) });
let sent = 0;
let failed = 0;
const t0 = performance.now();
async function worker() {
  while (sent < Number(requests)) {
    sent++;
    const res = await pool.request({ path: '/hello?x=1', method: 'GET' });
    await res.body.text();
    if (res.statusCode !== 200) failed++;
  }
}
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
const secs = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ mode, requests: Number(requests), failed, seconds: +secs.toFixed(2), rps: Math.round(Number(requests) / secs) }));
await pool.close();
up.kill();
proxy.kill();
