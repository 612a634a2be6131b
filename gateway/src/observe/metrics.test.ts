import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { type ConsulState, createLogger, emptyTable, type Instance, instanceKey, type RouteTable, setService } from '@stack/shared';
import { createApp } from '../admin/app.js';
import { TRY_BUDGET_DEFAULTS, TryBudget, type TryBudgetOptions } from '../balancing/hedge.js';
import { InstancePicker } from '../balancing/instance-picker.js';
import { LiveStats } from './live-stats.js';
import { GatewayMetrics, UNKNOWN_SERVICE } from './metrics.js';
import { observers, type AttemptReport } from './observer.js';
import { OutlierDetector, type OutlierOptions } from '../balancing/outlier.js';
import { createProxy, type ProxyOptions } from '../proxy/proxy.js';
import { RetryBudget, type RetryBudgetOptions } from '../balancing/retry-budget.js';
import { createGatewayServer, isAdminPath } from '../proxy/server.js';
import { consulOk, deadPort, defaultProxyOptions, request, startUpstream, testUpstreamOptions } from '../testing/harness.js';
import { UpstreamClient } from '../upstream/client.js';

// A real Prometheus text parser, so what /metrics serves is checked as a scraper reads it
// (it throws on a malformed line). It merges a histogram's label sets into one entry, so
// histogram values are read from prom-client or the text instead.
type Family = { name: string; type: string; metrics: Array<{ labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string }> };
const parseText = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

const inst = (id: string, port = 1000, service = 'svc'): Instance => ({ id, service, address: '127.0.0.1', port, node: 'n1', tags: [], key: instanceKey('n1', id) });

/** The value of the first series of a counter or gauge with these labels (undefined: no such series). */
async function value(m: GatewayMetrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = m.registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} exists`);
  const got = await metric.get();
  return got.values.find((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l))?.value;
}

async function series(m: GatewayMetrics, name: string): Promise<Array<Record<string, unknown>>> {
  const got = await m.registry.getSingleMetric(name)!.get();
  return got.values.map((v) => v.labels as Record<string, unknown>);
}

function fixture(services: Record<string, Instance[]> = { svc: [inst('a', 1001), inst('b', 1002)] }) {
  const state: { table: RouteTable; inflight: number; consul: ConsulState } = { table: emptyTable, inflight: 0, consul: consulOk };
  for (const [name, list] of Object.entries(services)) state.table = setService(state.table, name, list);
  const outliers = new OutlierDetector({ consecutiveFailures: 3, baseEjectMs: 30_000, maxEjectMs: 30_000, maxEjectPercent: 50 });
  const m = new GatewayMetrics({ table: () => state.table, inflight: () => state.inflight, consul: () => state.consul, outliers, processMetrics: false });
  return { state, outliers, m };
}

const report = (i: Instance, over: Partial<AttemptReport> = {}): AttemptReport => ({ inst: i, outcome: 'ok', status: 200, ms: 3, retry: 'none', ejected: false, ...over });

describe('GatewayMetrics: what each observation moves', () => {
  const cases: Array<{ name: string; attempt: Partial<AttemptReport>; expect: Array<[string, Record<string, string>, number]> }> = [
    { name: 'ok', attempt: {}, expect: [['gateway_upstream_attempts_total', { instance_id: 'a', outcome: 'ok' }, 1]] },
    {
      name: 'connect failure, retried',
      attempt: { outcome: 'connect_failure', status: 0, retry: 'retried' },
      expect: [['gateway_upstream_attempts_total', { instance_id: 'a', outcome: 'connect_failure' }, 1], ['gateway_retries_total', { service: 'svc' }, 1]],
    },
    { name: 'reset', attempt: { outcome: 'reset', status: 0 }, expect: [['gateway_upstream_attempts_total', { instance_id: 'a', outcome: 'reset' }, 1]] },
    {
      name: 'timeout, retry refused by the budget',
      attempt: { outcome: 'timeout', status: 0, retry: 'refused' },
      expect: [['gateway_upstream_attempts_total', { instance_id: 'a', outcome: 'timeout' }, 1], ['gateway_retries_refused_total', { service: 'svc' }, 1]],
    },
    {
      name: 'ejection',
      attempt: { outcome: 'connect_failure', status: 0, ejected: true },
      expect: [['gateway_ejections_total', { service: 'svc', instance_id: 'a' }, 1]],
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const { m } = fixture();
      m.attempt('svc', report(inst('a', 1001), c.attempt));
      for (const [name, labels, n] of c.expect) assert.equal(await value(m, name, { service: 'svc', ...labels }), n, `${name} ${JSON.stringify(labels)}`);
      // Nothing else moved: no retry counted without a retry, no ejection without one.
      if (c.attempt.retry !== 'retried') assert.equal(await value(m, 'gateway_retries_total'), undefined);
      if (c.attempt.retry !== 'refused') assert.equal(await value(m, 'gateway_retries_refused_total'), undefined);
      if (!c.attempt.ejected) assert.equal(await value(m, 'gateway_ejections_total'), undefined);
    });
  }

  test('requests by service and status class; latency in seconds', async () => {
    const { m } = fixture();
    for (const [status, code] of [[200, '2xx'], [204, '2xx'], [304, '3xx'], [404, '4xx'], [499, '4xx'], [502, '5xx'], [101, '1xx'], [799, 'other']] as const) {
      m.request('svc', status, 12, null);
      assert.ok((await value(m, 'gateway_requests_total', { service: 'svc', code }))! >= 1, `${status} → ${code}`);
    }
    assert.equal(await value(m, 'gateway_requests_total', { service: 'svc', code: '2xx' }), 2);
    const text = await m.text();
    assert.match(text, /gateway_request_duration_seconds_bucket\{le="0\.01",service="svc"\} 0/);
    assert.match(text, /gateway_request_duration_seconds_bucket\{le="0\.025",service="svc"\} 8/);
    const hist = (await m.registry.getSingleMetric('gateway_request_duration_seconds')!.get()).values as Array<{ metricName?: string; labels: Record<string, unknown>; value: number }>;
    const sum = hist.find((v) => v.metricName === 'gateway_request_duration_seconds_sum' && v.labels.service === 'svc')!.value;
    assert.ok(Math.abs(sum - 0.096) < 1e-9, `8 × 12 ms: ${sum}`);
  });

  test('an unknown service name is counted under (unknown), never under its own name', async () => {
    const { m } = fixture();
    m.request('no-such-service', 404, 1, 'unknown_service');
    m.request(null, 400, 1, 'invalid_service_name');
    m.request('another-one', 404, 1, 'unknown_service');
    assert.equal(await value(m, 'gateway_requests_total', { service: UNKNOWN_SERVICE, code: '4xx' }), 3);
    assert.equal(await value(m, 'gateway_refused_total', { reason: 'unknown_service' }), 2);
    const text = await m.text();
    assert.ok(!text.includes('no-such-service') && !text.includes('another-one'), 'raw names never become labels');
  });

  test('overloaded is counted as a refusal, under the service', async () => {
    const { m } = fixture();
    m.request('svc', 503, 0.1, 'overloaded');
    assert.equal(await value(m, 'gateway_refused_total', { reason: 'overloaded' }), 1);
    assert.equal(await value(m, 'gateway_requests_total', { service: 'svc', code: '5xx' }), 1);
  });

  test('an attempt at an instance or service no longer in the table is not counted under a label', async () => {
    const { m } = fixture();
    m.attempt('svc', report(inst('gone', 1009), { retry: 'retried' }));
    m.attempt('other-svc', report(inst('x', 1010, 'other-svc'), { retry: 'retried' }));
    assert.deepEqual(await series(m, 'gateway_upstream_attempts_total'), []);
    assert.equal(await value(m, 'gateway_retries_total', { service: 'svc' }), 1, 'the service-level retry still counts');
    assert.equal((await series(m, 'gateway_retries_total')).length, 1);
  });

  test("an instance leaving the table takes its label sets along; a service leaving takes all of its", async () => {
    const { m, state } = fixture({ svc: [inst('a', 1001), inst('b', 1002)], api: [inst('c', 1003, 'api')] });
    for (const [svc, i] of [['svc', inst('a', 1001)], ['svc', inst('b', 1002)], ['api', inst('c', 1003, 'api')]] as const) {
      m.attempt(svc, report(i));
      m.attempt(svc, report(i, { outcome: 'reset', status: 0, ejected: true, retry: 'retried' }));
      m.request(svc, 200, 1, null);
    }
    assert.equal((await series(m, 'gateway_upstream_attempts_total')).length, 6);
    state.table = setService(state.table, 'svc', [inst('a', 1001)]); // b leaves
    state.table = { ...state.table, version: state.table.version + 1, services: new Map([...state.table.services].filter(([n]) => n !== 'api')) };
    const text = await m.text();
    const ids = (await series(m, 'gateway_upstream_attempts_total')).map((l) => l.instance_id);
    assert.deepEqual([...new Set(ids)], ['a']);
    assert.deepEqual((await series(m, 'gateway_ejections_total')).map((l) => l.instance_id), ['a']);
    assert.ok(!text.includes('service="api"'), 'nothing of the departed service is left');
    assert.ok(!text.includes('instance_id="b"'));
    // a's counts are untouched by b leaving.
    assert.equal(await value(m, 'gateway_upstream_attempts_total', { instance_id: 'a', outcome: 'reset' }), 1);
    // b coming back starts from nothing.
    state.table = setService(state.table, 'svc', [inst('a', 1001), inst('b', 1002)]);
    m.attempt('svc', report(inst('b', 1002)));
    assert.equal(await value(m, 'gateway_upstream_attempts_total', { instance_id: 'b', outcome: 'ok' }), 1);
    assert.equal(await value(m, 'gateway_upstream_attempts_total', { instance_id: 'b', outcome: 'reset' }), undefined);
  });

  test('gauges read the table, the proxy, passive health and Consul at scrape time', async () => {
    const { m, state, outliers } = fixture({ svc: [inst('a', 1001), inst('b', 1002)], empty: [] });
    state.inflight = 7;
    for (let i = 0; i < 3; i++) outliers.failure(inst('a', 1001).key, [inst('a', 1001).key, inst('b', 1002).key]);
    state.consul = { ...consulOk, reachable: false, knownLeader: false, lastContactMs: 2500, degraded: true, reasons: ['consul unreachable'] };
    assert.equal(await value(m, 'gateway_inflight_requests'), 7);
    assert.equal(await value(m, 'gateway_route_table_version'), state.table.version);
    assert.equal(await value(m, 'gateway_routable_instances', { service: 'svc' }), 2);
    assert.equal(await value(m, 'gateway_routable_instances', { service: 'empty' }), 0);
    assert.equal(await value(m, 'gateway_ejected_instances', { service: 'svc' }), 1);
    assert.equal(await value(m, 'gateway_consul_reachable'), 0);
    assert.equal(await value(m, 'gateway_consul_leader_known'), 0);
    assert.equal(await value(m, 'gateway_consul_degraded'), 1);
    assert.equal(await value(m, 'gateway_consul_last_contact_seconds'), 2.5);
    state.table = setService(state.table, 'svc', [inst('b', 1002)]);
    assert.equal(await value(m, 'gateway_routable_instances', { service: 'svc' }), 1);
    state.table = { ...state.table, version: state.table.version + 1, services: new Map() };
    assert.deepEqual(await series(m, 'gateway_routable_instances'), [], 'services that left are not reported');
  });

  test('discovery latency goes into its histogram, in seconds', async () => {
    const { m } = fixture();
    m.discoveryApplied(0.4);
    m.discoveryApplied(30);
    const text = await m.text();
    assert.match(text, /gateway_discovery_latency_seconds_bucket\{le="0\.001"\} 1/);
    assert.match(text, /gateway_discovery_latency_seconds_bucket\{le="0\.05"\} 2/);
    assert.match(text, /gateway_discovery_latency_seconds_count 2/);
  });

  test('the text parses as Prometheus text, awkward instance ids included; process metrics are prefixed', async () => {
    const { m } = fixture({ svc: [inst('quote"back\\slash\nnewline', 1001)] });
    m.attempt('svc', report(inst('quote"back\\slash\nnewline', 1001)));
    const withProcess = new GatewayMetrics({ table: () => emptyTable, inflight: () => 0, consul: () => consulOk, outliers: new OutlierDetector({ consecutiveFailures: 3, baseEjectMs: 1, maxEjectMs: 1, maxEjectPercent: 50 }) });
    for (const text of [await m.text(), await withProcess.text()]) {
      const families = parseText(text);
      assert.ok(families.length > 5);
      for (const f of families) assert.match(f.name, /^gateway_/, f.name);
    }
    const attempts = parseText(await m.text()).find((f) => f.name === 'gateway_upstream_attempts_total')!;
    assert.equal(attempts.metrics[0]!.labels!.instance_id, 'quote"back\\slash\nnewline');
    assert.ok(parseText(await withProcess.text()).some((f) => f.name === 'gateway_process_cpu_user_seconds_total'));
  });
});

describe('isAdminPath: /metrics', () => {
  for (const [url, admin] of [['/metrics', true], ['/metrics/', false], ['/metrics/x', false], ['/metrics?x=1', false], ['/metricsx', false]] as const)
    test(`${url} → ${admin ? 'admin' : 'proxy'}`, () => assert.equal(isAdminPath(url), admin));
});

// The proxy in-process against real upstreams on loopback, with the metrics
// and live stats as its observer: each outcome reaches them from where the
// exchange learns it.
describe('the proxy reports each outcome to its observer', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });

  async function upstream(handler: Parameters<typeof startUpstream>[0]) {
    const u = await startUpstream(handler);
    cleanup.push(() => u.close());
    return u;
  }

  async function gateway(opts: { proxy?: Partial<ProxyOptions>; outliers?: Partial<OutlierOptions>; budget?: Partial<RetryBudgetOptions>; tryBudget?: Partial<TryBudgetOptions> } = {}) {
    const state = { table: emptyTable };
    const table = () => state.table;
    const outliers = new OutlierDetector({ consecutiveFailures: 3, baseEjectMs: 30_000, maxEjectMs: 30_000, maxEjectPercent: 50, ...opts.outliers });
    const upstream = new UpstreamClient(testUpstreamOptions);
    const log = createLogger('test', 'silent');
    const seen: Array<{ service: string; outcome: string; retry: string; ejected: boolean; status: number }> = [];
    let proxy: ReturnType<typeof createProxy>;
    const tryBudget = opts.tryBudget ? new TryBudget({ ...TRY_BUDGET_DEFAULTS, ...opts.tryBudget }) : undefined;
    // Round robin, so the first request goes to the first instance.
    const picker = new InstancePicker(outliers, 'round_robin');
    const metrics = new GatewayMetrics({ table, inflight: () => proxy.inflight(), consul: () => consulOk, outliers, processMetrics: false, load: (list) => picker.view(list) });
    const live = new LiveStats(table);
    const spy = {
      request() {},
      attempt(service: string, a: AttemptReport) {
        seen.push({ service, outcome: a.outcome, retry: a.retry, ejected: a.ejected, status: a.status });
      },
    };
    proxy = createProxy({
      table,
      synced: () => true,
      picker,
      outliers,
      tryBudget,
      budget: new RetryBudget({ percent: 20, minPerSecond: 10, windowS: 10, ...opts.budget }),
      upstream,
      log,
      observer: observers(metrics, live, spy, ...(tryBudget ? [tryBudget] : [])),
      options: { ...defaultProxyOptions, ...opts.proxy, body: { ...defaultProxyOptions.body, ...opts.proxy?.body } },
    });
    const app = createApp({ log, inflight: proxy.inflight, outliers, table, synced: () => true, syncedAt: () => null, consul: () => consulOk, stats: () => live.toJSON(), metrics });
    const admin = app.callback();
    const gw = createGatewayServer({
      admin: (req, res) => void admin(req, res),
      proxy,
      limits: { headersTimeoutMs: 10_000, requestTimeoutMs: 300_000, keepAliveTimeoutMs: 5_000, maxConnections: 10_000 },
      log,
    });
    await new Promise<void>((r) => gw.server.listen(0, '127.0.0.1', r));
    cleanup.push(async () => {
      gw.server.closeAllConnections();
      await new Promise<void>((r) => gw.server.close(() => r()));
      await upstream.destroy();
    });
    const url = `http://127.0.0.1:${(gw.server.address() as AddressInfo).port}`;
    return {
      url,
      metrics,
      seen,
      outliers,
      setService: (name: string, list: Instance[]) => void (state.table = setService(state.table, name, list)),
    };
  }

  const ok = (_req: http.IncomingMessage, res: http.ServerResponse) => res.end('ok');

  test('ok, with the instance status; counted per instance, served on /metrics', async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(503);
      res.end('app says no');
    });
    const g = await gateway();
    g.setService('svc', [up.instance('a')]);
    assert.equal((await request(g.url, '/svc/')).status, 503);
    assert.deepEqual(g.seen, [{ service: 'svc', outcome: 'ok', retry: 'none', ejected: false, status: 503 }]);
    const res = await request(g.url, '/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const fam = parseText(res.text);
    const attempts = fam.find((f) => f.name === 'gateway_upstream_attempts_total')!;
    assert.deepEqual(attempts.metrics.map((s) => [s.labels, s.value]), [[{ service: 'svc', instance_id: 'a', node: 'n1', outcome: 'ok' }, '1']]);
    const requests = fam.find((f) => f.name === 'gateway_requests_total')!;
    assert.deepEqual(requests.metrics.map((s) => [s.labels, s.value]), [[{ service: 'svc', code: '5xx' }, '1']]);
  });

  test('connect failure, retried on another instance', async () => {
    const up = await upstream(ok);
    const g = await gateway();
    g.setService('svc', [{ ...up.instance('dead'), port: await deadPort() }, up.instance('live')]);
    assert.equal((await request(g.url, '/svc/')).status, 200);
    assert.deepEqual(g.seen.map((s) => `${s.outcome}/${s.retry}`), ['connect_failure/retried', 'ok/none']);
    assert.equal(await value(g.metrics, 'gateway_upstream_attempts_total', { instance_id: 'dead', outcome: 'connect_failure' }), 1);
    assert.equal(await value(g.metrics, 'gateway_retries_total', { service: 'svc' }), 1);
  });

  test('reset before the response, retried (GET)', async () => {
    const resets = await upstream((req) => req.socket.destroy());
    const up = await upstream(ok);
    const g = await gateway();
    g.setService('svc', [resets.instance('a'), up.instance('b')]);
    assert.equal((await request(g.url, '/svc/')).status, 200);
    assert.deepEqual(g.seen.map((s) => `${s.outcome}/${s.retry}`), ['reset/retried', 'ok/none']);
    assert.equal(await value(g.metrics, 'gateway_upstream_attempts_total', { instance_id: 'a', outcome: 'reset' }), 1);
  });

  test("the balancer's score, latency estimate and in-flight count per instance", async () => {
    const outliers = new OutlierDetector({ consecutiveFailures: 3, baseEjectMs: 30_000, maxEjectMs: 30_000, maxEjectPercent: 50 });
    const picker = new InstancePicker(outliers, 'peak_ewma');
    const a: Instance = { id: 'a', service: 'svc', address: '10.0.0.1', port: 1, node: 'n', tags: [], key: instanceKey('n', 'a') };
    const b: Instance = { ...a, id: 'b', port: 2, key: instanceKey('n', 'b') };
    const table = setService(emptyTable, 'svc', [a, b]);
    const m = new GatewayMetrics({ table: () => table, inflight: () => 0, consul: () => consulOk, outliers, processMetrics: false, load: (list) => picker.view(list) });
    picker.started(a.key);
    picker.finished(a.key, 300, false);
    picker.started(a.key);
    picker.started(b.key);
    picker.finished(b.key, 4, false);
    assert.ok(Math.abs((await value(m, 'gateway_upstream_score', { instance_id: 'a' }))! - 600) < 1, 'a: 300 ms × (1 in flight + 1)');
    assert.ok(Math.abs((await value(m, 'gateway_upstream_score', { instance_id: 'b' }))! - 50) < 0.1, 'b: 4 ms, under the 50 ms floor');
    assert.ok(Math.abs((await value(m, 'gateway_upstream_latency_ewma_seconds', { instance_id: 'a' }))! - 0.3) < 0.001);
    assert.equal(await value(m, 'gateway_upstream_inflight_requests', { instance_id: 'a' }), 1);
  });

  test('timeout: the request ends at UPSTREAM_TIMEOUT_MS, all attempts together, with no retry after it', async () => {
    const up = await upstream(() => undefined); // never answers
    const other = await upstream(ok);
    const g = await gateway({ proxy: { upstreamTimeoutMs: 150 } });
    g.setService('svc', [up.instance('a'), other.instance('b')]);
    assert.equal((await request(g.url, '/svc/')).status, 504);
    assert.deepEqual(g.seen.map((s) => `${s.outcome}/${s.retry}`), ['timeout/none']);
    assert.equal(await value(g.metrics, 'gateway_upstream_attempts_total', { outcome: 'timeout' }), 1);
  });

  test('hedges sent and won, and a hedge the retry budget refuses; the score per instance', async () => {
    const frozen = await upstream(() => undefined);
    const other = await upstream(ok);
    const g = await gateway({ proxy: { upstreamTimeoutMs: 400 }, tryBudget: { fixedMs: 50 } });
    g.setService('svc', [frozen.instance('a'), other.instance('b')]);
    assert.equal((await request(g.url, '/svc/')).status, 200);
    assert.equal(await value(g.metrics, 'gateway_hedges_total', { service: 'svc' }), 1);
    assert.equal(await value(g.metrics, 'gateway_hedges_won_total', { service: 'svc' }), 1);
    const refused = await gateway({ proxy: { upstreamTimeoutMs: 300 }, tryBudget: { fixedMs: 50 }, budget: { percent: 0, minPerSecond: 0 } });
    refused.setService('svc', [frozen.instance('a'), other.instance('b')]);
    assert.equal((await request(refused.url, '/svc/')).status, 504);
    assert.equal(await value(refused.metrics, 'gateway_hedges_refused_total', { service: 'svc' }), 1);
  });

  test('an ejection', async () => {
    const up = await upstream(ok);
    const g = await gateway({ outliers: { consecutiveFailures: 1, maxEjectPercent: 100 } });
    const dead = { ...up.instance('dead'), port: await deadPort() };
    g.setService('svc', [dead, up.instance('live')]);
    await request(g.url, '/svc/');
    assert.deepEqual(g.seen.filter((s) => s.outcome !== 'ok').map((s) => s.ejected), [true]);
    assert.equal(await value(g.metrics, 'gateway_ejections_total', { instance_id: 'dead' }), 1);
    assert.equal(await value(g.metrics, 'gateway_ejected_instances', { service: 'svc' }), 1);
  });

  test('one service id on two nodes: two instances, two metrics rows, passive health of each its own', async () => {
    const up = await upstream(ok);
    const g = await gateway({ outliers: { consecutiveFailures: 1, maxEjectPercent: 100 } });
    const onN1: Instance = { ...up.instance('web-1'), node: 'n1', key: instanceKey('n1', 'web-1') };
    const onN2: Instance = { ...up.instance('web-1'), node: 'n2', key: instanceKey('n2', 'web-1'), port: await deadPort() };
    g.setService('svc', [onN2, onN1]);
    for (let i = 0; i < 4; i++) assert.equal((await request(g.url, '/svc/')).status, 200);
    // n2's refused connection ejected n2's instance only: n1's, same id, stays in.
    assert.deepEqual(g.seen.filter((s) => s.outcome !== 'ok').map((s) => s.ejected), [true]);
    assert.equal(g.outliers.isEjected(onN2.key), true);
    assert.equal(g.outliers.isEjected(onN1.key), false);
    assert.equal(await value(g.metrics, 'gateway_upstream_attempts_total', { instance_id: 'web-1', node: 'n2', outcome: 'connect_failure' }), 1);
    assert.equal(await value(g.metrics, 'gateway_upstream_attempts_total', { instance_id: 'web-1', node: 'n1', outcome: 'ok' }), 4);
    assert.equal(await value(g.metrics, 'gateway_upstream_attempts_total', { instance_id: 'web-1', node: 'n1', outcome: 'connect_failure' }), undefined);
    assert.equal(await value(g.metrics, 'gateway_ejections_total', { instance_id: 'web-1', node: 'n2' }), 1);
    assert.equal(await value(g.metrics, 'gateway_ejections_total', { instance_id: 'web-1', node: 'n1' }), undefined);
    assert.equal(await value(g.metrics, 'gateway_ejected_instances', { service: 'svc' }), 1);
    const text = (await request(g.url, '/metrics')).text;
    const rows = parseText(text).find((f) => f.name === 'gateway_upstream_attempts_total')!.metrics.map((s) => `${s.labels!.node}/${s.labels!.outcome}`);
    assert.deepEqual(rows.sort(), ['n1/ok', 'n2/connect_failure']);
  });

  test('overloaded and unknown services are refusals, counted without a raw name', async () => {
    const up = await upstream(ok);
    const g = await gateway({ proxy: { maxInflight: 0 } });
    g.setService('svc', [up.instance('a')]);
    assert.equal((await request(g.url, '/svc/')).status, 503);
    assert.equal((await request(g.url, '/nope-not-here/')).status, 404);
    assert.equal((await request(g.url, '/bad_name!/')).status, 400);
    assert.deepEqual(g.seen, [], 'no attempt was made');
    assert.equal(await value(g.metrics, 'gateway_refused_total', { reason: 'overloaded' }), 1);
    assert.equal(await value(g.metrics, 'gateway_refused_total', { reason: 'unknown_service' }), 1);
    assert.equal(await value(g.metrics, 'gateway_requests_total', { service: UNKNOWN_SERVICE, code: '4xx' }), 2);
    const text = (await request(g.url, '/metrics')).text;
    assert.ok(!text.includes('nope-not-here') && !text.includes('bad_name'));
  });

  test('/_gateway/stats shows the traffic per service and instance', async () => {
    const up = await upstream(ok);
    const up2 = await upstream(ok);
    const g = await gateway();
    g.setService('svc', [up.instance('a'), up2.instance('b')]);
    for (let i = 0; i < 10; i++) assert.equal((await request(g.url, '/svc/')).status, 200);
    const res = await request(g.url, '/_gateway/stats');
    assert.equal(res.status, 200);
    assert.equal(res.headers['cache-control'], 'no-store');
    const body = res.json();
    assert.equal(body.windowSeconds, 10);
    assert.ok(Math.abs(Date.parse(body.at) - Date.now()) < 5_000);
    const svc = body.services.svc;
    assert.ok(svc.rps >= 1 && svc.rps <= 10 / 9, `10 requests in the window: ${svc.rps}/s`);
    assert.equal(svc.errorRate, 0);
    assert.equal(typeof svc.p50Ms, 'number');
    assert.deepEqual(Object.keys(svc.instances).sort(), ['n1/a', 'n1/b'], 'keyed by instance key (node/id)');
    assert.equal(svc.instances['n1/a'].rps, svc.instances['n1/b'].rps, 'round robin: 5 each');
    assert.equal(svc.instances['n1/a'].errorRate, 0);
  });
});
