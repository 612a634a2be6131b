import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { ConsulAgent } from '../lib/consul.js';
import { startGateway, type ServiceProcess } from '../lib/procs.js';
import { freePort, waitFor } from '../lib/ports.js';
import { rawRequest, startFixture, type Fixture } from '../lib/fixture.js';

/** node:http, so hop-by-hop headers can be sent and nothing is decompressed or followed. */
function get(url: string, opts: http.RequestOptions = {}, body?: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; firstChunkMs: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url, { agent: false, ...opts }, (res) => {
      const chunks: Buffer[] = [];
      let firstChunkMs = -1;
      res.on('data', (c: Buffer) => {
        if (firstChunkMs < 0) firstChunkMs = performance.now() - t0;
        chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), firstChunkMs }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('gateway proxying against a real Consul', () => {
  let consul: ConsulAgent;
  let gw: ServiceProcess;
  let fx: Fixture;
  let canary: Fixture;

  before(async () => {
    consul = await new ConsulAgent({ mode: 'dev' }).start();
    fx = await startFixture('fx');
    canary = await startFixture('canary');
    const fxCheck = `http://127.0.0.1:${fx.port}/health`;
    await consul.register({ container: 'fx', name: 'svc-fixture', address: '127.0.0.1', port: fx.port });
    // Passing check (it points at the fixture) but nothing listens on the port: unreachable.
    const deadPort = await freePort();
    await consul.api('PUT', '/v1/agent/service/register', { ID: 'registrator:dead:1', Name: 'svc-dead', Address: '127.0.0.1', Port: deadPort, Check: { HTTP: fxCheck, Interval: '1s' } });
    await consul.api('PUT', '/v1/agent/service/register', { ID: 'registrator:mixed-dead:1', Name: 'svc-mixed', Address: '127.0.0.1', Port: deadPort, Check: { HTTP: fxCheck, Interval: '1s' } });
    await consul.register({ container: 'mixed-ok', name: 'svc-mixed', address: '127.0.0.1', port: fx.port });
    gw = await startGateway(consul.httpAddr, { UPSTREAM_TIMEOUT_MS: '1000', EJECT_AFTER_FAILURES: '1000' });
    await waitFor('gateway sees the fixtures', async () => {
      const s = (await (await fetch(`${gw.url}/_gateway/services`)).json()) as { services: Record<string, unknown[]> };
      return s.services['svc-fixture']?.length === 1 && s.services['svc-dead']?.length === 1 && s.services['svc-mixed']?.length === 2;
    });
  });

  after(async () => {
    await gw?.stop().catch(() => gw.kill());
    await fx?.close();
    await canary?.close();
    await consul?.stop();
  });

  test('path and query string reach the instance; X-Forwarded-* and X-Request-Id are set', async () => {
    const r = await get(`${gw.url}/svc-fixture/a/b%2Fc?x=1&y=%20`, { headers: { 'x-request-id': 'abc-123', host: 'example.test' } });
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body.toString());
    assert.equal(echo.url, '/a/b%2Fc?x=1&y=%20');
    assert.equal(echo.headers['x-request-id'], 'abc-123');
    assert.equal(r.headers['x-request-id'], 'abc-123');
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(echo.headers['x-forwarded-proto'], 'http');
    assert.equal(echo.headers['x-forwarded-host'], 'example.test');
    assert.equal(echo.headers.host, `127.0.0.1:${fx.port}`);
    // Without a client id the gateway makes one and sends the same one both ways.
    const r2 = await get(`${gw.url}/svc-fixture/`);
    const id = r2.headers['x-request-id'];
    assert.match(String(id), /^[0-9a-f-]{36}$/);
    assert.equal(JSON.parse(r2.body.toString()).headers['x-request-id'], id);
  });

  test('hop-by-hop headers are not forwarded', async () => {
    const r = await get(`${gw.url}/svc-fixture/`, {
      headers: { connection: 'keep-alive, x-private', 'x-private': 'secret', 'keep-alive': 'timeout=5', te: 'trailers', 'proxy-authorization': 'Basic eA==', 'x-end-to-end': 'kept' },
    });
    const h = JSON.parse(r.body.toString()).headers;
    assert.equal(h['x-end-to-end'], 'kept');
    for (const name of ['x-private', 'keep-alive', 'te', 'proxy-authorization']) assert.equal(h[name], undefined, name);
    assert.notEqual(h.connection, 'keep-alive, x-private');
  });

  test('request and response bodies stream without buffering', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 7);
    const r = await get(`${gw.url}/svc-fixture/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': big.length } }, big);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body.toString()).bodyBytes, big.length);
    // The first chunk arrives long before the upstream finishes the response.
    const s = await get(`${gw.url}/svc-fixture/stream?ms=800`);
    assert.equal(s.body.toString(), 'first\nlast\n');
    assert.ok(s.firstChunkMs < 500, `first chunk after ${s.firstChunkMs} ms`);
  });

  test('redirects are passed through, bodies are not decompressed', async () => {
    const r = await get(`${gw.url}/svc-fixture/redirect`);
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, '/elsewhere');
    const z = await get(`${gw.url}/svc-fixture/gzip`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(z.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(z.body).toString(), 'hello, compressed world');
  });

  test('an unreachable instance gives 502 JSON', async () => {
    const r = await get(`${gw.url}/svc-dead/`);
    assert.equal(r.status, 502);
    const body = JSON.parse(r.body.toString());
    assert.equal(body.error, 'upstream_unreachable');
    assert.equal(body.service, 'svc-dead');
    assert.ok(body.requestId);
    assert.doesNotMatch(r.body.toString(), /at .*\.js:\d+/);
  });

  test('a refused connection is retried on another instance, for POST too, body intact', async () => {
    for (let i = 0; i < 6; i++) {
      const body = Buffer.from(`payload-${i}`);
      const r = await get(`${gw.url}/svc-mixed/submit`, { method: 'POST', headers: { 'content-length': body.length } }, body);
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(JSON.parse(r.body.toString()).bodyBytes, body.length);
    }
  });

  test('an instance slower than UPSTREAM_TIMEOUT_MS gives 504 at the configured time', async () => {
    const t0 = performance.now();
    const r = await get(`${gw.url}/svc-fixture/slow?ms=3000`);
    const ms = performance.now() - t0;
    assert.equal(r.status, 504);
    assert.equal(JSON.parse(r.body.toString()).error, 'upstream_timeout');
    // Not before the configured time; well before a second timeout (an attempt given a fresh
    // one: 2000 ms) or the default's (5000 ms: the fixture answers 200 at 3000).
    assert.ok(ms >= 1000 && ms < 1500, `504 after ${ms} ms, configured 1000`);
  });

  test('bad service names and path tricks never reach another host', async () => {
    const c = canary.port;
    const before = canary.requests.length;
    const cases: Array<[string, number[]]> = [
      [`//127.0.0.1:${c}/`, [400]],
      [`/127.0.0.1:${c}/`, [400]],
      [`/svc-fixture@127.0.0.1:${c}/`, [400]],
      [`/svc-fixture:${c}/`, [400]],
      [`/svc-fixture%2F..%2F127.0.0.1:${c}/`, [400]],
      [`/..%2F127.0.0.1:${c}/`, [400]],
      [`/../127.0.0.1:${c}/`, [400]],
      [`/svc-fixture/../127.0.0.1:${c}/`, [400]],
      [`/svc-fixture/%2e%2e/%2e%2e/x`, [400]],
      [`/svc-fixture/..%2f..%2fx`, [400]],
      [`/svc-fixture/a\\..\\b`, [400]],
      [`/%73vc-fixture/`, [400]],
      [`/svc_fixture/`, [400]],
      [`/${'a'.repeat(64)}/`, [400]],
      // Absolute-form targets: only the path counts, here the gateway's own page.
      [`http://127.0.0.1:${c}/`, [200]],
      [`http://127.0.0.1:${c}/svc-fixture/abs`, [200]],
    ];
    for (const [target, statuses] of cases) {
      const r = await rawRequest(gw.port, target);
      assert.ok(statuses.includes(r.status), `${target}: got ${r.status}\n${r.text.slice(0, 300)}`);
      assert.doesNotMatch(r.text, /"stack"|at .*\.js:\d+/);
    }
    // A path that looks like a host stays a path on the routed instance.
    const r = await rawRequest(gw.port, `/svc-fixture//127.0.0.1:${c}/x`);
    assert.equal(r.status, 200);
    assert.match(r.text, new RegExp(`"url":"//127.0.0.1:${c}/x"`));
    const r2 = await rawRequest(gw.port, `/svc-fixture/@127.0.0.1:${c}/x`);
    assert.equal(r2.status, 200);
    // A request Node's parser rejects still gets a JSON error.
    const malformed = await rawRequest(gw.port, '/svc-fixture/a b');
    assert.equal(malformed.status, 400);
    assert.match(malformed.text, /"error":"bad_request"/);
    assert.equal(canary.requests.length, before, `canary was reached: ${JSON.stringify(canary.requests.slice(before))}`);
  });

  test('ACCESS_LOG=true: one line per request with id, service, instance, status and time; 499 for a client that left', async () => {
    const logged = await startGateway(consul.httpAddr, { ACCESS_LOG: 'true', UPSTREAM_TIMEOUT_MS: '5000' });
    try {
      await waitFor('the logging gateway sees the fixture', async () => (await get(`${logged.url}/svc-fixture/`)).status === 200);
      await get(`${logged.url}/svc-fixture/x?y=1`, { headers: { 'x-request-id': 'acc-1' } });
      await new Promise<void>((resolve) => {
        const req = http.request(`${logged.url}/svc-fixture/slow?ms=2000`, { agent: false, headers: { 'x-request-id': 'acc-gone' } });
        req.on('error', () => resolve());
        req.end();
        setTimeout(() => req.destroy(), 200);
      });
      const lines = () => logged.raw.split('\n').filter((l) => l.includes('"gateway.access"')).map((l) => JSON.parse(l) as Record<string, unknown>);
      // The destination is asynchronous and buffered: lines arrive in batches, at the latest on exit.
      await logged.stop();
      const ok = lines().find((l) => l.requestId === 'acc-1');
      assert.ok(ok, logged.raw.slice(-2000));
      assert.equal(ok.msg, 'request');
      assert.equal(ok.method, 'GET');
      assert.equal(ok.url, '/svc-fixture/x?y=1');
      assert.equal(ok.service, 'svc-fixture');
      assert.equal(ok.status, 200);
      assert.equal(ok.attempts, 1);
      assert.equal(typeof ok.ms, 'number');
      assert.equal(typeof ok.instance, 'string');
      assert.equal(lines().find((l) => l.requestId === 'acc-gone')?.status, 499);
    } finally {
      logged.kill();
    }
  });
});
