import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { createLogger, type Instance, instanceKey } from '@stack/shared';
import { createApp } from './app.js';
import { callOutcome, createCaller, type Caller, type ServiceDirectory } from './call.js';
import { loadConfig } from './config.js';
import { DrainState } from './drain.js';
import { HttpError } from './http.js';
import { createIdentity } from './identity.js';
import { UNMATCHED, WebMetrics, type CallOutcome } from './metrics.js';

// A real Prometheus text parser: it throws on a malformed line.
type Family = { name: string; metrics: Array<{ labels?: Record<string, string>; value?: string }> };
const parseText = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

const log = createLogger('web-service', 'silent');
const identity = createIdentity({ service: 'service-web', serviceAddress: '10.0.0.9', port: 3000, hostname: 'h', suffix: 'x' });

const servers: http.Server[] = [];
after(() => {
  for (const s of servers) s.closeAllConnections(), s.close();
});

async function listen(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function start(caller?: Caller) {
  const drain = new DrainState();
  const metrics = new WebMetrics({ draining: () => drain.draining, processMetrics: false });
  const app = createApp({
    config: { ...loadConfig({}), ENABLE_FAULTS: true },
    identity,
    log,
    drain,
    caller: caller ?? { call: async () => assert.fail('caller not expected'), close() {} },
    metrics,
  });
  const base = await listen(app.callback());
  return { base, drain, metrics };
}

async function scrape(base: string): Promise<Family[]> {
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseText(await res.text());
}

const sample = (fams: Family[], name: string, labels: Record<string, string>) =>
  fams.find((f) => f.name === name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value;

describe('web metrics', () => {
  test('requests by the matched route pattern and status class, never the raw path', async () => {
    const { base } = await start();
    await fetch(`${base}/`);
    await fetch(`${base}/`);
    await fetch(`${base}/fault/status?code=503`);
    await fetch(`${base}/echo`, { method: 'POST', body: 'x' });
    await fetch(`${base}/no/such/path-12345`);
    await fetch(`${base}/call/bad%ZZname/x`);
    const fams = await scrape(base);
    assert.equal(sample(fams, 'web_requests_total', { route: '/', code: '2xx' }), '2');
    assert.equal(sample(fams, 'web_requests_total', { route: '/fault/status', code: '5xx' }), '1');
    assert.equal(sample(fams, 'web_requests_total', { route: '/echo', code: '2xx' }), '1');
    assert.equal(sample(fams, 'web_requests_total', { route: UNMATCHED, code: '4xx' }), '1');
    assert.equal(sample(fams, 'web_requests_total', { route: '/call/:service{/*rest}', code: '4xx' }), '1');
    const routes = new Set(fams.find((f) => f.name === 'web_requests_total')!.metrics.map((m) => m.labels?.route ?? ''));
    assert.ok(![...routes].some((r) => r.includes('12345') || r.includes('ZZ')), [...routes].join(' '));
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /web_request_duration_seconds_count\{route="\/"\} 2/);
    for (const f of fams) assert.match(f.name, /^web_/);
  });

  test('draining is 0, then 1 once the drain starts', async () => {
    const { base, drain } = await start();
    assert.equal(sample(await scrape(base), 'web_draining', {}), '0');
    drain.start();
    assert.equal(sample(await scrape(base), 'web_draining', {}), '1');
  });

  test('/call refusals by policy are counted before any caller runs', async () => {
    const { base } = await start();
    assert.equal((await fetch(`${base}/call/consul/x`)).status, 403);
    assert.equal((await fetch(`${base}/call/svc/x`, { headers: { via: '1.1 service-web (call)' } })).status, 508);
    const fams = await scrape(base);
    assert.equal(sample(fams, 'web_calls_total', { outcome: 'refused' }), '2');
  });

  test('process metrics are collected with the web_ prefix and parse', async () => {
    const m = new WebMetrics({ draining: () => false });
    const fams = parseText(await m.text());
    assert.ok(fams.some((f) => f.name === 'web_process_cpu_user_seconds_total'));
    for (const f of fams) assert.match(f.name, /^web_/);
  });
});

describe('/call outcomes from the caller', () => {
  function directory(services: Record<string, Instance[]>): ServiceDirectory {
    return { table: { services: new Map(Object.entries(services)) }, async watchService() {} };
  }
  async function instance(id: string, handler: http.RequestListener): Promise<Instance> {
    const url = new URL(await listen(handler));
    return { id, service: 'svc', address: '127.0.0.1', port: Number(url.port), node: 'n1', tags: [], key: instanceKey('n1', id) };
  }
  async function refused(id: string): Promise<Instance> {
    const i = await instance(id, () => undefined);
    const s = servers.pop()!;
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
    return i;
  }

  test('each way a call ends is observed once, with the instances it tried', async () => {
    const ok = await instance('ok', (_req, res) => res.end('{}'));
    const hang = await instance('hang', () => undefined);
    const dead = await refused('dead');
    const seen: Array<[CallOutcome, number]> = [];
    const c = createCaller({
      directory: directory({ svc: [ok], slow: [hang], down: [dead], retry: [dead, ok], none: [] }),
      timeoutMs: 300,
      discoveryTimeoutMs: 50,
      maxServices: 32,
      log,
      observe: (o, n) => seen.push([o, n]),
    });
    const r = (service: string, path = '/') => c.call({ service, path, query: '', requestId: 'r' });
    await r('svc');
    await r('retry');
    await assert.rejects(r('slow'));
    await assert.rejects(r('down'));
    await assert.rejects(r('none'));
    await assert.rejects(r('missing'));
    await assert.rejects(r('bad_name'));
    await assert.rejects(r('svc', '/../x'));
    c.close();
    assert.deepEqual(seen, [
      ['ok', 1],
      ['ok', 2],
      ['timeout', 1],
      ['unreachable', 1],
      ['no_instances', 0],
      ['discovery_unavailable', 0],
      ['invalid', 0],
      ['invalid', 0],
    ]);
  });

  test('outcomes reach the counters; a second attempt is a retry', async () => {
    const m = new WebMetrics({ draining: () => false, processMetrics: false });
    m.call('ok', 1);
    m.call('ok', 2);
    m.call('timeout', 1);
    const fams = parseText(await m.text());
    assert.equal(sample(fams, 'web_calls_total', { outcome: 'ok' }), '2');
    assert.equal(sample(fams, 'web_calls_total', { outcome: 'timeout' }), '1');
    assert.equal(sample(fams, 'web_call_retries_total', {}), '1');
  });

  test('callOutcome: the answer a failure became', () => {
    const cases: Array<[unknown, CallOutcome]> = [
      [new HttpError('too_many_services', 'x'), 'too_many_services'],
      [new HttpError('upstream_error', 'x'), 'upstream_error'],
      [new HttpError('fault_injected', 'x'), 'error'],
      [Object.assign(new Error('canceled'), { isAxiosError: true, code: 'ERR_CANCELED' }), 'canceled'],
      [new Error('boom'), 'error'],
    ];
    for (const [err, outcome] of cases) assert.equal(callOutcome(err), outcome);
  });
});
