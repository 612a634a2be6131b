import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createLogger } from '@stack/shared';
import { createApp, type AppDeps } from './app.js';
import { createCaller, type Caller, type CallRequest } from './call.js';
import { loadConfig } from './config.js';
import { DrainState } from './drain.js';
import { HttpError } from './http.js';
import { createIdentity } from './identity.js';

const log = createLogger('web-service', 'silent');
const identity = createIdentity({
  service: 'service-web',
  serviceAddress: '10.9.8.7',
  port: 3000,
  hostname: 'host1',
  suffix: 'abcd',
  interfaces: { eth0: [{ address: '172.18.0.5', netmask: '255.255.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr: null }] },
});

const fakeCaller = (fn: (req: CallRequest) => ReturnType<Caller['call']>): Caller & { seen: CallRequest[] } => {
  const seen: CallRequest[] = [];
  return { seen, call: (r) => (seen.push(r), fn(r)), close() {} };
};

const servers: http.Server[] = [];
after(() => {
  for (const s of servers) s.closeAllConnections(), s.close();
});

async function start(over: Partial<AppDeps> & { faults?: boolean } = {}) {
  const drain = over.drain ?? new DrainState();
  const deps: AppDeps = {
    config: over.config ?? { ...loadConfig({}), ENABLE_FAULTS: over.faults ?? false },
    identity,
    log: over.log ?? log,
    drain,
    caller: over.caller ?? fakeCaller(async () => assert.fail('caller not expected')),
  };
  const server = http.createServer(createApp(deps).callback());
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, drain };
}

async function getJson(url: string, init?: RequestInit) {
  const res = await fetch(url, init);
  const text = await res.text();
  return { res, text, body: JSON.parse(text) as Record<string, any> };
}

/** node:http, to see hop-by-hop headers such as Connection that fetch may hide. */
function rawGet(url: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => (res.resume(), resolve(res))).on('error', reject);
  });
}

describe('GET /', () => {
  test('reports the instance, pretty-printed, with instance headers', async () => {
    const { base } = await start();
    const { res, text, body } = await getJson(`${base}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.ok(text.startsWith('{\n  "service": "service-web"'), 'two-space JSON');
    assert.equal(body.instance, 'host1-abcd');
    assert.equal(body.hostname, 'host1');
    assert.equal(body.ip, '10.9.8.7');
    assert.deepEqual(body.addresses, [{ interface: 'eth0', address: '172.18.0.5', family: 'IPv4' }]);
    assert.equal(body.port, 3000);
    assert.equal(body.pid, process.pid);
    assert.equal(typeof body.uptimeSeconds, 'number');
    assert.ok(!Number.isNaN(Date.parse(body.time)));
    assert.equal(res.headers.get('x-instance-id'), 'host1-abcd');
    assert.equal(res.headers.get('x-instance-ip'), '10.9.8.7');
  });

  test('echoes the caller request id, or makes one', async () => {
    const { base } = await start();
    const given = await getJson(`${base}/`, { headers: { 'X-Request-Id': 'req-123' } });
    assert.equal(given.res.headers.get('x-request-id'), 'req-123');
    assert.equal(given.body.requestId, 'req-123');
    const made = await getJson(`${base}/`);
    assert.match(made.res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(made.body.requestId, made.res.headers.get('x-request-id'));
    const junk = await getJson(`${base}/`, { headers: { 'X-Request-Id': 'x'.repeat(500) } });
    assert.match(junk.body.requestId, /^[0-9a-f-]{36}$/);
  });
});

describe('GET /health', () => {
  test('ok, then 503 with Connection: close while draining', async () => {
    const { base, drain } = await start();
    const ok = await getJson(`${base}/health`);
    assert.equal(ok.res.status, 200);
    assert.deepEqual(ok.body, { status: 'ok' });
    drain.start();
    const draining = await getJson(`${base}/health`);
    assert.equal(draining.res.status, 503);
    assert.deepEqual(draining.body, { status: 'draining' });
    const raw = await rawGet(`${base}/`);
    assert.equal(raw.statusCode, 200, 'still answering while draining');
    assert.equal(raw.headers.connection, 'close');
    assert.equal(drain.inFlight, 0);
  });
});

describe('faults', () => {
  test('disabled: every fault route is a JSON 404', async () => {
    const { base } = await start();
    for (const [method, path] of [['GET', '/fault/delay?ms=1'], ['GET', '/fault/status?code=500'], ['POST', '/fault/mode?mode=fail']] as const) {
      const { res, body } = await getJson(`${base}${path}`, { method });
      assert.equal(res.status, 404, path);
      assert.equal(body.error, 'not_found');
    }
  });

  test('delay sleeps then answers like /', async () => {
    const { base } = await start({ faults: true });
    const t0 = Date.now();
    const { res, body } = await getJson(`${base}/fault/delay?ms=120`, { method: 'POST' });
    assert.ok(Date.now() - t0 >= 110);
    assert.equal(res.status, 200);
    assert.equal(body.instance, 'host1-abcd');
    const tooLong = await getJson(`${base}/fault/delay?ms=60001`);
    assert.equal(tooLong.res.status, 400);
    assert.match(tooLong.body.message, /ms must be/);
  });

  test('status answers with the code asked for, within bounds', async () => {
    const { base } = await start({ faults: true });
    assert.equal((await fetch(`${base}/fault/status?code=503`)).status, 503);
    assert.equal((await fetch(`${base}/fault/status?code=418`)).status, 418);
    assert.equal((await fetch(`${base}/fault/status?code=700`)).status, 400);
    assert.equal((await fetch(`${base}/fault/status`)).status, 400);
  });

  test('mode fail / slow / ok changes later / requests', async () => {
    const { base } = await start({ faults: true });
    const fail = await getJson(`${base}/fault/mode`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"mode":"fail"}' });
    assert.deepEqual(fail.body, { mode: 'fail', delayMs: 0 });
    const failed = await getJson(`${base}/`);
    assert.equal(failed.res.status, 500);
    assert.equal(failed.body.error, 'fault_injected');
    assert.equal((await fetch(`${base}/health`)).status, 200, 'health is not affected');

    await getJson(`${base}/fault/mode?mode=slow&delayMs=150`, { method: 'POST' });
    const t0 = Date.now();
    assert.equal((await fetch(`${base}/`)).status, 200);
    assert.ok(Date.now() - t0 >= 140);

    const reset = await getJson(`${base}/fault/mode`, { method: 'POST', body: JSON.stringify({ mode: 'ok' }) });
    assert.deepEqual(reset.body, { mode: 'ok', delayMs: 0 });
    assert.deepEqual((await getJson(`${base}/fault/mode`)).body, { mode: 'ok', delayMs: 0 });

    assert.equal((await fetch(`${base}/fault/mode?mode=explode`, { method: 'POST' })).status, 400);
    assert.equal((await fetch(`${base}/fault/mode`, { method: 'POST', body: '{not json' })).status, 400);
    assert.equal((await fetch(`${base}/fault/mode?mode=slow&delayMs=99999999`, { method: 'POST' })).status, 400);
  });
});

describe('GET /echo', () => {
  test('any method: method, url, headers and the counted body size', async () => {
    const { base } = await start();
    const { res, body } = await getJson(`${base}/echo?a=1`, {
      method: 'PUT',
      headers: { 'X-Custom': 'yes', 'X-Request-Id': 'e1' },
      body: Buffer.alloc(200_000, 1),
    });
    assert.equal(res.status, 200);
    assert.equal(body.method, 'PUT');
    assert.equal(body.url, '/echo?a=1');
    assert.equal(body.headers['x-custom'], 'yes');
    assert.equal(body.headers['x-request-id'], 'e1');
    assert.equal(body.bodyBytes, 200_000);
    const del = await getJson(`${base}/echo`, { method: 'DELETE' });
    assert.equal(del.body.method, 'DELETE');
    assert.equal(del.body.bodyBytes, 0);
  });
});

describe('errors', () => {
  test('unknown route: JSON 404; wrong method: JSON 405', async () => {
    const { base } = await start();
    const nf = await getJson(`${base}/nope?x=1`, { headers: { 'X-Request-Id': 'r404' } });
    assert.equal(nf.res.status, 404);
    assert.deepEqual(nf.body, { error: 'not_found', message: 'no route for GET /nope', status: 404, requestId: 'r404' });
    const na = await getJson(`${base}/health`, { method: 'POST' });
    assert.equal(na.res.status, 405);
    assert.equal(na.body.error, 'method_not_allowed');
  });

  test('an unexpected exception is a bare 500 with no stack or message', async () => {
    const { base } = await start({ caller: fakeCaller(async () => { throw new Error('secret detail'); }) });
    const { res, text, body } = await getJson(`${base}/call/svc/x`);
    assert.equal(res.status, 500);
    assert.equal(body.error, 'internal');
    assert.ok(!text.includes('secret') && !text.includes('at '), text);
  });
});

describe('GET /call', () => {
  test('passes service, raw path, query and request id to the caller and wraps the answer', async () => {
    const caller = fakeCaller(async (r) => ({
      service: r.service,
      target: { id: 'i1', address: '10.0.0.2', port: 3000 },
      status: 201,
      body: { hello: 'world' },
      attempts: 1,
    }));
    const { base } = await start({ caller });
    const { res, body } = await getJson(`${base}/call/other-svc/a/b%20c/?q=1&r=%2F`, { headers: { 'X-Request-Id': 'c1' } });
    assert.equal(res.status, 200);
    assert.equal(caller.seen[0]?.service, 'other-svc');
    assert.equal(caller.seen[0]?.path, '/a/b%20c/');
    assert.equal(caller.seen[0]?.query, 'q=1&r=%2F');
    assert.equal(caller.seen[0]?.requestId, 'c1');
    assert.equal(caller.seen[0]?.via, '1.1 service-web (call)', 'our hop, marked, for the next /call to count');
    assert.deepEqual(body.from, { service: 'service-web', instance: 'host1-abcd', hostname: 'host1', ip: '10.9.8.7', port: 3000 });
    assert.equal(body.service, 'other-svc');
    assert.deepEqual(body.target, { id: 'i1', address: '10.0.0.2', port: 3000 });
    assert.equal(body.status, 201);
    assert.deepEqual(body.body, { hello: 'world' });

    await fetch(`${base}/call/other-svc`);
    assert.equal(caller.seen[1]?.path, '', 'no path: the upstream root');
  });

  test('caller errors become JSON with their status and headers', async () => {
    const caller = fakeCaller(async () => {
      throw new HttpError('no_instance', 'no passing instance of x', { service: 'x' }, { 'Retry-After': '1' });
    });
    const { base } = await start({ caller });
    const { res, body } = await getJson(`${base}/call/x/`, { headers: { 'X-Request-Id': 'c2' } });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    assert.deepEqual(body, { error: 'no_instance', message: 'no passing instance of x', service: 'x', status: 503, requestId: 'c2' });
  });

  test('an invalid service name is a 400 and never reaches discovery', async () => {
    const watched: string[] = [];
    const caller = createCaller({
      directory: { table: { services: new Map() }, watchService: async (n) => void watched.push(n) },
      timeoutMs: 1000,
      discoveryTimeoutMs: 100,
      maxServices: 4,
      log,
    });
    const { base } = await start({ caller });
    for (const name of ['bad_name', 'a.b', '-x', 'x%2Fy', '%zz']) {
      const { res, body } = await getJson(`${base}/call/${name}/`);
      assert.equal(res.status, 400, name);
      assert.equal(body.error, 'invalid_service_name', name);
    }
    assert.deepEqual(watched, []);
    caller.close();
  });
});

test('config defaults are accepted by createApp', async () => {
  const { base } = await start({ config: loadConfig({}) });
  assert.equal((await fetch(`${base}/fault/mode`)).status, 404);
});

test('a client hanging up mid-upload is logged at debug, never as an error', async () => {
  const lines: Array<{ level: number; msg: string; status?: number }> = [];
  const sink = new Writable({ write: (chunk, _enc, cb) => (lines.push(JSON.parse(String(chunk))), cb()) });
  const { base } = await start({ log: pino({ level: 'debug' }, sink) });
  const { port } = new URL(base);
  await new Promise<void>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/echo', method: 'POST', headers: { 'content-length': '100000' } });
    req.on('error', () => resolve());
    req.write(Buffer.alloc(1000));
    setTimeout(() => req.destroy(), 100);
  });
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(lines.some((l) => l.msg === 'client went away'), JSON.stringify(lines));
  assert.ok(lines.some((l) => l.msg === 'request' && l.status === 499));
  assert.deepEqual(lines.filter((l) => l.level >= 50), []);
});

describe('/call loop and amplification protection', () => {
  const ok = () =>
    fakeCaller(async (r) => ({ service: r.service, target: { id: 'i1', address: '10.0.0.2', port: 3000 }, status: 200, body: 'ok', attempts: 1 }));

  test('forbidden names: 403 call_forbidden, any case, before discovery', async () => {
    const caller = ok();
    const { base } = await start({ caller, config: { ...loadConfig({ CALL_DENY: 'Secret-Svc, other' }), ENABLE_FAULTS: false } });
    const cases: Array<[string, RegExp]> = [
      ['consul', /consul/],
      ['CONSUL', /consul/],
      ['%63onsul', /consul/],
      ['gateway', /gateway/],
      ['Gateway', /gateway/],
      ['service-web', /itself.*CALL_ALLOW_SELF/],
      ['SERVICE-WEB', /itself/],
      ['secret-svc', /CALL_DENY/],
      ['OTHER', /CALL_DENY/],
    ];
    for (const [name, message] of cases) {
      const { res, body } = await getJson(`${base}/call/${name}/x`, { headers: { 'X-Request-Id': 'f1' } });
      assert.equal(res.status, 403, name);
      assert.equal(body.error, 'call_forbidden', name);
      assert.match(body.message, message, name);
      assert.equal(body.requestId, 'f1');
      assert.equal(body.status, 403);
      assert.equal(res.headers.get('cache-control'), 'no-store');
    }
    assert.deepEqual(caller.seen, [], 'nothing reached the caller');
  });

  test('GATEWAY_SERVICE_NAME and CALL_ALLOW_SELF are honoured', async () => {
    const caller = ok();
    const { base } = await start({ caller, config: { ...loadConfig({ GATEWAY_SERVICE_NAME: 'edge', CALL_ALLOW_SELF: 'true' }), ENABLE_FAULTS: false } });
    assert.equal((await fetch(`${base}/call/edge/`)).status, 403);
    assert.equal((await fetch(`${base}/call/gateway/`)).status, 200, 'no longer the gateway name');
    assert.equal((await fetch(`${base}/call/service-web/`)).status, 200, 'self allowed');
    assert.equal(caller.seen.length, 2);
  });

  test('a request that already made a /call hop: 508 loop_detected', async () => {
    const caller = ok();
    const { base } = await start({ caller });
    const cases: Array<[string, number]> = [
      ['1.1 service-b (call)', 508],
      ['1.1 gateway, 1.1 service-web (call), 1.1 gateway', 508],
      ['1.1 x (CALL)', 508],
      [Array(40).fill('1.1 p').join(', '), 508], // too many entries to trace
      ['1.1 gateway', 200],
      ['1.1 gateway (not a call)', 200],
      ['junk (', 200],
    ];
    for (const [via, status] of cases) {
      const { res, body } = await getJson(`${base}/call/svc/`, { headers: { Via: via } });
      assert.equal(res.status, status, via);
      if (status === 508) assert.equal(body.error, 'loop_detected');
    }
    assert.deepEqual(
      caller.seen.map((r) => r.via),
      ['1.1 gateway, 1.1 service-web (call)', '1.1 gateway (not a call), 1.1 service-web (call)', '1.1 service-web (call)'],
      'incoming Via forwarded, junk dropped, our marked hop appended',
    );
  });

  test('CALL_MAX_DEPTH allows that many hops; 0 turns /call off', async () => {
    const two = await start({ caller: ok(), config: { ...loadConfig({ CALL_MAX_DEPTH: '2' }), ENABLE_FAULTS: false } });
    assert.equal((await fetch(`${two.base}/call/svc/`, { headers: { Via: '1.1 a (call)' } })).status, 200);
    assert.equal((await fetch(`${two.base}/call/svc/`, { headers: { Via: '1.1 a (call), 1.1 b (call)' } })).status, 508);
    const off = await start({ caller: ok(), config: { ...loadConfig({ CALL_MAX_DEPTH: '0' }), ENABLE_FAULTS: false } });
    assert.equal((await fetch(`${off.base}/call/svc/`)).status, 508);
  });
});

describe('TRACE and CONNECT', () => {
  test('405 JSON with Allow on every path, never reflected by /echo', async () => {
    const caller = fakeCaller(async () => assert.fail('caller not expected'));
    const { base } = await start({ caller, faults: true });
    const port = Number(new URL(base).port);
    const cases: Array<[string, (allow: string) => boolean]> = [
      ['/echo', (a) => a.includes('GET') && a.includes('POST') && !a.includes('TRACE') && !a.includes('CONNECT')],
      ['/health', (a) => a === 'HEAD, GET'],
      ['/call/svc/x', (a) => a === 'HEAD, GET'],
      ['/fault/delay', (a) => a.includes('GET') && a.includes('POST')],
      ['/nope', (a) => a === ''],
    ];
    for (const [path, allowOk] of cases) {
      const res = await new Promise<{ status: number; allow: string; text: string }>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path, method: 'TRACE', agent: false, headers: { Cookie: 'secret=1', 'X-Request-Id': 't1' } }, (r) => {
          let text = '';
          r.on('data', (c) => (text += c));
          r.on('end', () => resolve({ status: r.statusCode!, allow: String(r.headers.allow), text }));
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(res.status, 405, path);
      assert.ok(allowOk(res.allow), `${path}: Allow ${res.allow}`);
      assert.ok(!res.text.includes('secret'), 'nothing reflected');
      assert.deepEqual(JSON.parse(res.text), { error: 'method_not_allowed', message: 'TRACE is not allowed here', status: 405, requestId: 't1' });
    }
  });
});
