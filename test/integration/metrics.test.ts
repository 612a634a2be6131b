import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { ConsulAgent } from '../lib/consul.js';
import { startGateway, startWeb, type ServiceProcess } from '../lib/procs.js';
import { waitFor } from '../lib/ports.js';
import { routedIds, routedKeys } from '../lib/gateway.js';

// A real Prometheus text parser (npm parse-prometheus-text-format): it throws on
// a line a scraper would reject. It merges a histogram's label sets into one
// entry, so histogram counts are read from unlabelled histograms only.
interface Sample {
  labels?: Record<string, string>;
  value?: string;
  count?: string;
  buckets?: Record<string, string>;
}
type Family = { name: string; type: string; metrics: Sample[] };
const parseText = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

async function scrape(url: string): Promise<Family[]> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4; charset=utf-8/);
  return parseText(await res.text());
}

/** Sum of the samples of `name` whose labels include `labels`. */
function sum(fams: Family[], name: string, labels: Record<string, string> = {}): number {
  const fam = fams.find((f) => f.name === name);
  if (!fam) return 0;
  return fam.metrics
    .filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
    .reduce((n, m) => n + Number(m.value ?? m.count ?? 0), 0);
}

function labelValues(fams: Family[], name: string, label: string): string[] {
  return [...new Set((fams.find((f) => f.name === name)?.metrics ?? []).map((m) => m.labels?.[label] ?? ''))].sort();
}

describe('metrics and live stats against a real Consul, gateway and web processes', () => {
  let consul: ConsulAgent;
  let gw: ServiceProcess;
  const webs: ServiceProcess[] = [];
  const regIds: string[] = [];

  before(async () => {
    consul = await new ConsulAgent({ mode: 'dev' }).start();
    for (let i = 0; i < 2; i++) {
      const w = await startWeb();
      webs.push(w);
      regIds.push(await consul.register({ container: `web-${i}`, name: 'service-web', address: '127.0.0.1', port: w.port }));
    }
    gw = await startGateway(consul.httpAddr);
    await waitFor('2 passing instances in the gateway', async () => (await routedIds(gw)).length === 2);
  });

  after(async () => {
    await gw?.stop().catch(() => gw.kill());
    for (const w of webs) w.kill();
    await consul?.stop();
  });

  test('both /metrics parse as Prometheus text, every name prefixed, process metrics included', async () => {
    const g = await scrape(gw.url);
    assert.ok(g.every((f) => f.name.startsWith('gateway_')), g.map((f) => f.name).filter((n) => !n.startsWith('gateway_')).join(','));
    for (const name of ['gateway_process_cpu_user_seconds_total', 'gateway_requests_total', 'gateway_upstream_attempts_total', 'gateway_inflight_requests', 'gateway_discovery_latency_seconds'])
      assert.ok(g.some((f) => f.name === name), name);
    assert.equal(sum(g, 'gateway_consul_reachable'), 1);
    assert.equal(sum(g, 'gateway_consul_leader_known'), 1);
    assert.equal(sum(g, 'gateway_consul_degraded'), 0);
    assert.equal(sum(g, 'gateway_routable_instances', { service: 'service-web' }), 2);
    assert.ok(sum(g, 'gateway_route_table_version') >= 1);
    const w = await scrape(webs[0]!.url);
    assert.ok(w.every((f) => f.name.startsWith('web_')));
    assert.ok(w.some((f) => f.name === 'web_process_resident_memory_bytes'));
    assert.equal(sum(w, 'web_draining'), 0);
  });

  test('counters move with traffic, per service, per instance and per route', async () => {
    const g0 = await scrape(gw.url);
    const w0 = await Promise.all(webs.map((w) => scrape(w.url)));
    const N = 20;
    for (let i = 0; i < N; i++) assert.equal((await fetch(`${gw.url}/service-web/`)).status, 200);
    assert.equal((await fetch(`${gw.url}/not-a-service-xyz/`)).status, 404);
    const g1 = await scrape(gw.url);
    const w1 = await Promise.all(webs.map((w) => scrape(w.url)));

    const delta = (name: string, labels: Record<string, string> = {}) => sum(g1, name, labels) - sum(g0, name, labels);
    assert.equal(delta('gateway_requests_total', { service: 'service-web', code: '2xx' }), N);
    assert.equal(delta('gateway_upstream_attempts_total', { service: 'service-web', outcome: 'ok' }), N);
    assert.deepEqual(labelValues(g1, 'gateway_upstream_attempts_total', 'instance_id'), [...regIds].sort(), 'one label per instance in the table');
    // The balancer (peak EWMA) decides the split; each instance's count matches what that instance itself counted.
    const perInstance = regIds.map((id) => delta('gateway_upstream_attempts_total', { instance_id: id, outcome: 'ok' }));
    assert.equal(perInstance.reduce((a, b) => a + b, 0), N);
    assert.equal(delta('gateway_requests_total', { service: '(unknown)', code: '4xx' }), 1);
    assert.equal(delta('gateway_refused_total', { reason: 'unknown_service' }), 1);
    assert.ok(!labelValues(g1, 'gateway_requests_total', 'service').includes('not-a-service-xyz'));

    // Each web instance answered its share, counted under the route pattern "/".
    const webDelta = w1.map((w, i) => sum(w, 'web_requests_total', { route: '/', code: '2xx' }) - sum(w0[i]!, 'web_requests_total', { route: '/', code: '2xx' }));
    assert.deepEqual(webDelta, perInstance);
  });

  test('/_gateway/stats shows the rate of the service and of each instance', async () => {
    for (let i = 0; i < 20; i++) assert.equal((await fetch(`${gw.url}/service-web/`)).status, 200);
    const res = await fetch(`${gw.url}/_gateway/stats`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as { windowSeconds: number; at: string; services: Record<string, { rps: number; errorRate: number; p50Ms: number | null; p99Ms: number | null; instances: Record<string, { rps: number; errorRate: number; p50Ms: number | null }> }> };
    assert.equal(body.windowSeconds, 10);
    assert.ok(Math.abs(Date.parse(body.at) - Date.now()) < 5_000);
    const svc = body.services['service-web']!;
    assert.ok(svc.rps >= 2, `at least 20 requests in the last 10 s: ${svc.rps}/s`);
    assert.equal(svc.errorRate, 0);
    assert.ok(svc.p50Ms !== null && svc.p99Ms !== null && svc.p50Ms <= svc.p99Ms);
    // Keyed by instance key (node/id): one id on two nodes is two instances.
    const keys = await routedKeys(gw);
    assert.deepEqual(Object.keys(svc.instances).sort(), regIds.map((id) => keys.get(id)).sort());
    for (const id of regIds) {
      const key = keys.get(id)!;
      assert.ok(svc.instances[key]!.rps >= 1, `${id}: ${svc.instances[key]!.rps}/s`);
      assert.equal(typeof svc.instances[key]!.p50Ms, 'number');
    }
  });

  test('an instance leaving the table: its label sets and stats go, the change is timed in the discovery histogram', async () => {
    const before = await scrape(gw.url);
    const gone = regIds[1]!;
    const keys = await routedKeys(gw);
    await consul.maintenance(gone, true);
    try {
      await waitFor('the gateway to drop the instance', async () => !(await routedIds(gw)).includes(gone), 10_000);
      const g = await scrape(gw.url);
      assert.deepEqual(labelValues(g, 'gateway_upstream_attempts_total', 'instance_id'), [regIds[0]!]);
      assert.equal(sum(g, 'gateway_routable_instances', { service: 'service-web' }), 1);
      const count = (fams: Family[]) => Number(fams.find((f) => f.name === 'gateway_discovery_latency_seconds')?.metrics[0]?.count ?? 0);
      assert.ok(count(g) > count(before), `discovery latency observed: ${count(before)} → ${count(g)}`);
      const buckets = g.find((f) => f.name === 'gateway_discovery_latency_seconds')!.metrics[0]!.buckets!;
      assert.equal(buckets['+Inf'], String(count(g)));
      assert.equal(Number(buckets['1']), count(g), 'on loopback, within a second');
      const stats = (await (await fetch(`${gw.url}/_gateway/stats`)).json()) as { services: Record<string, { instances: Record<string, unknown> }> };
      assert.deepEqual(Object.keys(stats.services['service-web']!.instances), [keys.get(regIds[0]!)]);
    } finally {
      await consul.maintenance(gone, false);
    }
    await waitFor('the instance back', async () => (await routedIds(gw)).includes(gone), 10_000);
  });

  test('a browser asking the web service through the gateway gets its page; curl still gets JSON', async () => {
    const html = await fetch(`${gw.url}/service-web/`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-type') ?? '', /^text\/html/);
    const instance = html.headers.get('x-instance-id')!;
    assert.ok((await html.text()).includes(`<h1>${instance}</h1>`));
    const json = await fetch(`${gw.url}/service-web/`, { headers: { accept: '*/*' } });
    assert.match(json.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(((await json.json()) as { service: string }).service, 'service-web');
  });
});
