import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, emptyTable, type HealthEntry, type Instance, instanceKey, type QueryMeta, ReadError, type RouteTable, setService, type TrackedServiceView } from '@stack/shared';
import { createApp } from './app.js';
import { createExplainer, exclusionReason, explainBalancer, explainedName, type ExplainResponse } from './explain.js';
import { OutlierDetector } from '../balancing/outlier.js';
import { assertErrorBody, consulOk, request } from '../testing/harness.js';

const NOW = Date.parse('2024-05-01T12:00:00.000Z');

const check = (id: string, Status: string, Output: string, ServiceID = '') => ({ CheckID: id, Name: id, Status, Output, ServiceID });
const entry = (id: string, port: number, status = 'passing', output = 'HTTP GET: 200 OK'): HealthEntry => ({
  Node: { Node: 'n1', Address: '127.0.0.1' },
  Service: { ID: id, Service: 'web', Address: '127.0.0.1', Port: port },
  Checks: [check('serfHealth', 'passing', 'Agent alive and reachable'), check(`service:${id}`, status, output, id)],
});
const inst = (id: string, port: number): Instance => ({ id, service: 'web', address: '127.0.0.1', port, node: 'n1', tags: [], key: instanceKey('n1', id) });
const meta = (over: Partial<QueryMeta> = {}): QueryMeta => ({ agent: 'http://127.0.0.1:8500', index: 42n, knownLeader: true, lastContactMs: 0, fresh: false, at: NOW, ...over });
const view = (over: Partial<TrackedServiceView> = {}): TrackedServiceView => ({
  name: 'web',
  index: 40n,
  holdMs: 3000,
  hold: null,
  untrusted: null,
  agentLost: false,
  failure: undefined,
  entries: undefined,
  ...over,
});

const config = { excluded: new Set(['consul', 'gateway', 'secret-admin']), GATEWAY_SERVICE_NAME: 'gateway', EXCLUDE_SERVICES: ['Secret-Admin'] };

interface World {
  table: RouteTable;
  synced: boolean;
  views: Map<string, TrackedServiceView>;
  answers: Map<string, { body: HealthEntry[]; meta: QueryMeta } | Error>;
  reads: string[];
}

function setup(w: Partial<World> = {}) {
  const world: World = { table: emptyTable, synced: true, views: new Map(), answers: new Map(), reads: [], ...w };
  const outliers = new OutlierDetector({ consecutiveFailures: 2, baseEjectMs: 5_000, maxEjectMs: 30_000, maxEjectPercent: 50 }, () => NOW);
  const explainer = createExplainer({
    table: () => world.table,
    synced: () => world.synced,
    tracked: (name) => world.views.get(name),
    read: async (name) => {
      world.reads.push(name);
      await new Promise((r) => setTimeout(r, 5));
      const a = world.answers.get(name) ?? { body: [], meta: meta() };
      if (a instanceof Error) throw a;
      return a;
    },
    ejection: (key) => outliers.ejection(key),
    exclusion: (name) => exclusionReason(name, config),
    staleAfterMs: 5000,
    now: () => NOW,
  });
  return { world, outliers, explain: explainer.explain };
}

describe('explainBalancer: why an instance gets little traffic', () => {
  const mk = (id: string): Instance => ({ id, service: 'svc', address: '10.0.0.1', port: id.charCodeAt(0), node: 'n', tags: [], key: instanceKey('n', id) });
  const list = ['a', 'b', 'c'].map(mk);
  const view = (rows: Record<string, [latencyMs: number | null, inflight: number, failures?: number]>) =>
    new Map(Object.entries(rows).map(([id, [latencyMs, inflight, failures]]) => [instanceKey('n', id), { latencyMs, inflight, score: (latencyMs ?? 1) * (inflight + 1), failures: failures ?? 0 }]));
  const cases: Array<{ name: string; policy: string; rows: Record<string, [number | null, number, number?]>; want: Record<string, RegExp | null> }> = [
    { name: 'one failing', policy: 'peak_ewma', rows: { a: [4, 0], b: [4, 0], c: [1000, 0, 2] }, want: { a: null, b: null, c: /^failing: its last 2 attempts failed, each counted as at least 1 s; EWMA 1000 ms vs 4\.0 ms/ } },
    { name: 'all alike: none', policy: 'peak_ewma', rows: { a: [4, 0], b: [5, 1], c: [4, 0] }, want: { a: null, b: null, c: null } },
    { name: 'one slow', policy: 'peak_ewma', rows: { a: [4, 0], b: [4.2, 0], c: [310, 0] }, want: { a: null, b: null, c: /^slow: EWMA 310 ms vs 4\.1 ms/ } },
    { name: 'slower but within 20 ms: not called slow', policy: 'peak_ewma', rows: { a: [2, 0], b: [2, 0], c: [15, 0] }, want: { a: null, b: null, c: null } },
    { name: 'one busy (least_request)', policy: 'least_request', rows: { a: [null, 0], b: [null, 1], c: [null, 9] }, want: { a: null, b: null, c: /^busy: 9 requests in flight vs 0\.5/ } },
    { name: 'round robin: never', policy: 'round_robin', rows: { a: [4, 0], b: [4, 0], c: [310, 0] }, want: { a: null, b: null, c: null } },
  ];
  for (const c of cases)
    test(c.name, () => {
      const got = explainBalancer(c.policy, list, view(c.rows));
      for (const r of got) {
        const w = c.want[r.id]!;
        if (w === null) assert.equal(r.lowTraffic, null, r.id);
        else assert.match(r.lowTraffic ?? '', w);
      }
    });
});

describe('exclusionReason', () => {
  const cases: Array<[name: string, expected: RegExp | null]> = [
    ['web', null],
    ['secret-admin', /EXCLUDE_SERVICES/],
    ['SECRET-ADMIN', /EXCLUDE_SERVICES/],
    ['gateway', /GATEWAY_SERVICE_NAME/],
    ['consul', /Consul servers/],
  ];
  for (const [name, expected] of cases)
    test(`${name}: ${expected ?? 'routed'}`, () => {
      const got = exclusionReason(name, config);
      if (expected === null) assert.equal(got, null);
      else assert.match(got ?? '', expected);
    });
});

describe('explainedName: names are validated as the proxy validates them', () => {
  const ok: Array<[string, string]> = [['web', 'web'], ['Service-Web', 'service-web'], ['web/', 'web'], ['a'.repeat(63), 'a'.repeat(63)]];
  for (const [raw, name] of ok) test(`accepts ${JSON.stringify(raw)}`, () => assert.equal(explainedName(raw), name));
  const bad = ['', '-web', 'web-', 'a.b', '..', 'a%2Fb', 'web%2D1', 'a_b', 'a'.repeat(64), 'wéb', 'web/x', 'web%20'];
  for (const raw of bad)
    test(`refuses ${JSON.stringify(raw)}`, () => assert.throws(() => explainedName(raw), (e: { code?: string; status?: number }) => e.code === 'invalid_service_name' && e.status === 400));
});

describe('createExplainer', () => {
  test('a critical check: not routable, with its check and output; the table and Consul source are said', async () => {
    const { world, explain } = setup();
    world.table = setService(emptyTable, 'web', [inst('a', 3001)]);
    world.views.set('web', view());
    world.answers.set('web', { body: [entry('a', 3001), entry('b', 3002, 'critical', 'HTTP GET: 500 Internal Server Error')], meta: meta() });
    const r = await explain('web');
    assert.equal(r.service, 'web');
    assert.equal(r.checkedAt, '2024-05-01T12:00:00.000Z');
    assert.equal(r.routable, true);
    assert.equal(r.decision, 'apply');
    assert.equal(r.excluded, null);
    assert.equal(r.summary, '1 of 2 instances routable');
    const b = r.instances.find((i) => i.id === 'b')!;
    assert.equal(b.routable, false);
    assert.deepEqual(b.reasons.map((x) => x.code), ['check_critical']);
    assert.deepEqual(b.reasons[0]!.check, { id: 'service:b', name: 'service:b', status: 'critical', output: 'HTTP GET: 500 Internal Server Error', scope: 'service' });
    assert.deepEqual(r.gateway.table, [{ id: 'a', address: '127.0.0.1', port: 3001, node: 'n1' }]);
    assert.deepEqual(r.consul, { source: 'consul', agent: 'http://127.0.0.1:8500', index: '42', knownLeader: true, lastContactMs: 0, distrust: null, error: null });
    assert.deepEqual(r.gateway.trust, { index: '40', untrusted: null });
  });

  test('an ejected instance: routable, with when and after what failures', async () => {
    const { world, outliers, explain } = setup();
    world.table = setService(emptyTable, 'web', [inst('a', 3001), inst('b', 3002)]);
    world.answers.set('web', { body: [entry('a', 3001), entry('b', 3002)], meta: meta() });
    const pool = [inst('a', 3001), inst('b', 3002)].map((i) => i.key);
    outliers.failure(inst('a', 3001).key, pool, 'connect');
    outliers.failure(inst('a', 3001).key, pool, 'timeout');
    const r = await explain('web');
    const a = r.instances.find((i) => i.id === 'a')!;
    assert.equal(a.routable, true);
    assert.deepEqual(a.reasons.map((x) => x.code), ['passing', 'ejected']);
    assert.deepEqual(a.ejection, { since: '2024-05-01T12:00:00.000Z', until: '2024-05-01T12:00:05.000Z', remainingMs: 5000, failures: 2, kinds: { connect: 1, timeout: 1 }, ejections: 1 });
    assert.equal(r.gateway.ejected, 1);
    assert.match(r.summary, /1 of them ejected/);
  });

  test('a stale answer that would remove an instance: kept, and why', async () => {
    const { world, explain } = setup();
    world.table = setService(emptyTable, 'web', [inst('a', 3001), inst('b', 3002)]);
    world.views.set('web', view({ untrusted: { why: 'the answering server knows no leader', since: NOW - 1000 } }));
    world.answers.set('web', { body: [entry('a', 3001), entry('b', 3002, 'critical', 'down')], meta: meta({ knownLeader: false }) });
    const r = await explain('web');
    assert.equal(r.decision, 'confirm');
    assert.equal(r.consul.distrust, 'the answering server knows no leader');
    assert.deepEqual(r.instances.find((i) => i.id === 'b')!.reasons.map((x) => x.code), ['kept_untrusted', 'check_critical']);
    assert.deepEqual(r.gateway.trust.untrusted, { why: 'the answering server knows no leader', since: '2024-05-01T11:59:59.000Z' });
  });

  test('an answer whose index went back is judged against what discovery applied', async () => {
    const { world, explain } = setup();
    world.table = setService(emptyTable, 'web', [inst('a', 3001), inst('b', 3002)]);
    world.views.set('web', view({ index: 50n }));
    world.answers.set('web', { body: [entry('a', 3001)], meta: meta({ index: 45n }) });
    const r = await explain('web');
    assert.equal(r.consul.distrust, 'index went back from 50 to 45');
    assert.deepEqual(r.instances.find((i) => i.id === 'b')!.reasons.map((x) => x.code), ['kept_untrusted', 'not_in_consul']);
  });

  test('a held empty answer: kept until the hold ends', async () => {
    const { world, explain } = setup();
    world.table = setService(emptyTable, 'web', [inst('a', 3001)]);
    world.views.set('web', view({ hold: { since: NOW - 1000, until: NOW + 2000 } }));
    world.answers.set('web', { body: [entry('a', 3001, 'critical', 'connection refused')], meta: meta() });
    const r = await explain('web');
    assert.equal(r.decision, 'hold');
    assert.deepEqual(r.gateway.hold, { since: '2024-05-01T11:59:59.000Z', until: '2024-05-01T12:00:02.000Z' });
    assert.deepEqual(r.instances[0]!.reasons.map((x) => x.code), ['held_empty', 'check_critical']);
    assert.match(r.instances[0]!.reasons[0]!.detail, /until 2024-05-01T12:00:02.000Z/);
  });

  test('an excluded service: said, with the setting responsible, even with nothing registered', async () => {
    const { world, explain } = setup();
    world.answers.set('secret-admin', { body: [entry('a', 3001)], meta: meta() });
    const r = await explain('secret-admin');
    assert.equal(r.decision, 'excluded');
    assert.equal(r.routable, false);
    assert.equal(r.excluded?.code, 'service_excluded');
    assert.match(r.excluded.detail, /EXCLUDE_SERVICES/);
    assert.deepEqual(r.instances.map((i) => [i.id, i.routable, i.reasons[0]!.code]), [['a', false, 'service_excluded']]);
    assert.match((await explain('gateway')).excluded!.detail, /GATEWAY_SERVICE_NAME/);
  });

  test('unknown service: 404 unknown_service; before the first sync: 503 not_ready', async () => {
    const { world, explain } = setup();
    await assert.rejects(explain('nope'), (e: { code?: string; status?: number }) => e.code === 'unknown_service' && e.status === 404);
    world.synced = false;
    await assert.rejects(explain('nope'), (e: { code?: string; status?: number }) => e.code === 'not_ready' && e.status === 503);
  });

  test('a service in the table that Consul no longer lists is still explained', async () => {
    const { world, explain } = setup();
    world.table = setService(emptyTable, 'web', [inst('a', 3001)]);
    const r = await explain('web');
    assert.deepEqual(r.instances.map((i) => [i.id, i.inConsul, i.inTable]), [['a', false, true]]);
  });

  test('Consul unreachable: the entries discovery keeps, and the error', async () => {
    const { world, explain } = setup();
    world.table = setService(emptyTable, 'web', [inst('a', 3001)]);
    world.views.set('web', view({ entries: [entry('a', 3001)] }));
    world.answers.set('web', new ReadError({ kind: 'unreachable', message: 'connect ECONNREFUSED', retryable: true, failover: true }, 'http://127.0.0.1:8500'));
    const r = await explain('web');
    assert.equal(r.consul.source, 'gateway');
    assert.equal(r.consul.error, 'http://127.0.0.1:8500: connect ECONNREFUSED');
    assert.deepEqual(r.instances.map((i) => [i.id, i.routable, i.reasons[0]!.code]), [['a', true, 'passing']]);
    assert.match(r.summary, /Consul did not answer/);
  });

  test('concurrent asks for one service share one read', async () => {
    const { world, explain } = setup();
    world.answers.set('web', { body: [entry('a', 3001)], meta: meta() });
    await Promise.all([explain('web'), explain('web'), explain('WEB')]);
    assert.deepEqual(world.reads, ['web']);
    await explain('web');
    assert.deepEqual(world.reads, ['web', 'web'], 'a later ask reads again');
  });
});

describe('GET /_gateway/explain/<service> through the admin app', () => {
  const { world, explain } = setup();
  world.table = setService(emptyTable, 'web', [inst('a', 3001)]);
  world.answers.set('web', { body: [entry('a', 3001)], meta: meta() });
  let server: http.Server;
  let base = '';

  before(async () => {
    const app = createApp({
      table: () => world.table,
      synced: () => world.synced,
      syncedAt: () => null,
      consul: () => consulOk,
      outliers: new OutlierDetector({ consecutiveFailures: 3, baseEjectMs: 1000, maxEjectMs: 1000, maxEjectPercent: 50 }),
      inflight: () => 0,
      log: createLogger('test', 'silent'),
      explain,
    });
    server = http.createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('200 JSON, not cached', async () => {
    const res = await request(base, '/_gateway/explain/web');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /application\/json/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const body = res.json() as ExplainResponse;
    assert.deepEqual(Object.keys(body), ['service', 'checkedAt', 'routable', 'decision', 'excluded', 'summary', 'instances', 'gateway', 'balancer', 'consul']);
    assert.deepEqual(Object.keys(body.instances[0]!), ['id', 'address', 'port', 'node', 'routable', 'inConsul', 'inTable', 'reasons', 'checks', 'ejection']);
    assert.deepEqual(Object.keys(body.gateway), ['synced', 'followed', 'table', 'holdMs', 'hold', 'trust', 'agentLost', 'failure', 'ejected']);
  });

  test('a trailing slash is the same service', async () => {
    assert.equal((await request(base, '/_gateway/explain/web/')).status, 200);
  });

  test('unknown service: 404 in the standard error shape', async () => {
    const body = assertErrorBody(await request(base, '/_gateway/explain/nope'), 404, 'unknown_service', 'nope');
    assert.match(body.message, /no service named "nope"/);
  });

  for (const raw of ['a.b', 'a%2Fb', '-web', 'web%2D1', 'a'.repeat(64), '%2e%2e'])
    test(`bad name ${JSON.stringify(raw)}: 400 invalid_service_name`, async () => {
      assertErrorBody(await request(base, `/_gateway/explain/${raw}`), 400, 'invalid_service_name', null);
    });

  test('POST: 405', async () => {
    assert.equal((await request(base, '/_gateway/explain/web', { method: 'POST' })).status, 405);
  });
});
