import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsulAgent } from '../lib/consul.js';
import { startGateway, startWeb, type ServiceProcess } from '../lib/procs.js';
import { freePort, waitFor } from '../lib/ports.js';
import { routedIds } from '../lib/gateway.js';
import type { InstanceExplain, Reason } from '../../gateway/src/admin/explain-reasons.js';

// The endpoint's JSON: explain-reasons.ts's types (dates and bigints already strings in them) plus the gateway's own parts.

interface Explain {
  service: string;
  routable: boolean;
  decision: string;
  excluded: Reason | null;
  summary: string;
  instances: InstanceExplain[];
  gateway: { synced: boolean; followed: boolean; table: Array<{ id: string }> | null; hold: { since: string; until: string } | null; ejected: number };
  consul: { source: string; agent: string | null; index: string | null; distrust: string | null; error: string | null };
}

const SERVICE = 'explained';

describe('GET /_gateway/explain/<service> against a real Consul', () => {
  let consul: ConsulAgent;
  let gw: ServiceProcess;
  let web: ServiceProcess;
  const id = (name: string) => `explain:${name}`;

  /** An instance with a TTL check (check id service:<id>) that the test sets passing, warning or critical. */
  async function register(name: string, port: number, service = SERVICE): Promise<string> {
    await consul.api('PUT', '/v1/agent/service/register', {
      ID: id(name),
      Name: service,
      Address: '127.0.0.1',
      Port: port,
      Check: { TTL: '10m' },
    });
    return id(name);
  }
  const ttl = (instance: string, state: 'pass' | 'warn' | 'fail', note: string) =>
    consul.api('PUT', `/v1/agent/check/${state}/${encodeURIComponent(`service:${instance}`)}?note=${encodeURIComponent(note)}`);

  async function explain(service = SERVICE): Promise<{ status: number; body: any }> {
    const res = await fetch(`${gw.url}/_gateway/explain/${service}`);
    return { status: res.status, body: await res.json() };
  }
  const instance = (e: Explain, name: string) => {
    const i = e.instances.find((x) => x.id === id(name));
    assert.ok(i, `${id(name)} is listed: ${JSON.stringify(e.instances.map((x) => x.id))}`);
    return i;
  };

  before(async () => {
    consul = await new ConsulAgent({ mode: 'dev' }).start();
    web = await startWeb();
    const closed = await freePort(); // nothing listens there: connections are refused
    await register('web', web.port);
    await ttl(id('web'), 'pass', 'serving');
    await register('dead', closed);
    await ttl(id('dead'), 'pass', 'the check says fine, the port is closed');
    await register('sick', 1);
    // A TTL check starts critical, and Consul's agent syncs an output-only change to the
    // catalog only every check_update_interval (5 min): pass first, so failing is a status change.
    await ttl(id('sick'), 'pass', 'serving');
    await ttl(id('sick'), 'fail', 'database unreachable: connection refused');
    await register('warned', 2);
    await ttl(id('warned'), 'warn', 'disk 91% full');
    await register('maint', 3);
    await ttl(id('maint'), 'pass', 'serving');
    await consul.maintenance(id('maint'), true);
    await register('other', 4, 'hidden');
    await ttl(id('other'), 'pass', 'serving');
    gw = await startGateway(consul.httpAddr, {
      EXCLUDE_SERVICES: 'hidden',
      EJECT_AFTER_FAILURES: '2',
      // Round robin keeps sending the dead instance every other request, so the ejection test
      // below is exact (peak EWMA would avoid it after its first failure, see docs/tail-tolerance.md).
      LB_POLICY: 'round_robin',
      EJECT_BASE_MS: '60000',
      EJECT_MAX_MS: '60000',
      // A sudden "none passing" is held for a minute: the node maintenance test reads the hold.
      CONSUL_EMPTY_CONFIRM_MS: '60000',
    });
    await waitFor('web and dead routed', async () => (await routedIds(gw, SERVICE)).join() === [id('dead'), id('web')].join(), 10_000);
  });

  after(async () => {
    await gw?.stop().catch(() => gw.kill());
    web?.kill();
    await consul?.stop();
  });

  test('a critical check: not routable, with the check and its output', async () => {
    const { status, body } = await explain();
    assert.equal(status, 200);
    const e = body as Explain;
    assert.equal(e.service, SERVICE);
    assert.equal(e.consul.source, 'consul');
    assert.equal(e.decision, 'apply');
    const sick = instance(e, 'sick');
    assert.equal(sick.routable, false);
    assert.equal(sick.inTable, false);
    assert.deepEqual(sick.reasons.map((r) => r.code), ['check_critical']);
    assert.equal(sick.reasons[0]!.check?.id, `service:${id('sick')}`);
    assert.equal(sick.reasons[0]!.check?.output, 'database unreachable: connection refused');
    assert.match(sick.reasons[0]!.detail, /database unreachable: connection refused/);
    // Node checks are listed too.
    assert.deepEqual(sick.checks.map((c) => [c.id, c.scope, c.status]), [['serfHealth', 'node', 'passing'], [`service:${id('sick')}`, 'service', 'critical']]);

    const warned = instance(e, 'warned');
    assert.deepEqual(warned.reasons.map((r) => r.code), ['check_warning']);
    assert.match(warned.reasons[0]!.detail, /disk 91% full/);

    const ok = instance(e, 'web');
    assert.equal(ok.routable, true);
    assert.equal(ok.inTable, true);
    assert.deepEqual(ok.reasons.map((r) => r.code), ['passing']);
    assert.equal(ok.port, web.port);
  });

  test('the check turning critical while routed is explained with its new output', async () => {
    await ttl(id('web'), 'fail', 'out of memory');
    try {
      const e = await waitFor('web explained as critical', async () => {
        const r = (await explain()).body as Explain;
        const w = instance(r, 'web');
        return !w.routable && !w.inTable ? r : null;
      }, 5_000);
      assert.deepEqual(instance(e, 'web').reasons.map((r) => r.code), ['check_critical']);
      assert.equal(instance(e, 'web').reasons[0]!.check?.output, 'out of memory');
    } finally {
      await ttl(id('web'), 'pass', 'serving');
      await waitFor('web routed again', async () => (await routedIds(gw, SERVICE)).includes(id('web')), 5_000);
    }
  });

  test('an instance in maintenance mode', async () => {
    const e = (await explain()).body as Explain;
    const m = instance(e, 'maint');
    assert.equal(m.routable, false);
    assert.deepEqual(m.reasons.map((r) => r.code), ['service_maintenance']);
    assert.equal(m.reasons[0]!.check?.id, `_service_maintenance:${id('maint')}`);
    assert.match(m.reasons[0]!.detail, /maintenance mode: test/); // the reason given to Consul
  });

  test('an instance on a closed port: ejected after its connection failures, still routable but not picked', async () => {
    // Round robin sends every other request to the dead instance; each is retried on web and answered.
    for (let i = 0; i < 8; i++) {
      const res = await fetch(`${gw.url}/${SERVICE}/`);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    const e = (await explain()).body as Explain;
    const dead = instance(e, 'dead');
    assert.equal(dead.routable, true);
    assert.deepEqual(dead.reasons.map((r) => r.code), ['passing', 'ejected']);
    assert.ok(dead.ejection, 'ejection details');
    assert.equal(dead.ejection.failures, 2);
    assert.deepEqual(dead.ejection.kinds, { connect: 2 });
    assert.ok(Date.parse(dead.ejection.until) > Date.now() + 30_000, `ejected until ${dead.ejection.until}`);
    assert.match(dead.reasons[1]!.detail, /2 consecutive failures \(connect ×2\)/);
    assert.equal(e.gateway.ejected, 1);
    assert.equal(instance(e, 'web').ejection, null);
  });

  test('an excluded service: 200, says it is excluded and why', async () => {
    const { status, body } = await explain('hidden');
    assert.equal(status, 200);
    const e = body as Explain;
    assert.equal(e.decision, 'excluded');
    assert.equal(e.routable, false);
    assert.equal(e.excluded?.code, 'service_excluded');
    assert.match(e.excluded.detail, /EXCLUDE_SERVICES/);
    assert.deepEqual(e.instances.map((i) => [i.id, i.routable, i.reasons[0]!.code]), [[id('other'), false, 'service_excluded']]);
    assert.equal(e.gateway.followed, false);
    assert.equal(e.gateway.table, null);
    // The gateway's own service and Consul's are excluded too.
    assert.match(((await explain('gateway')).body as Explain).excluded!.detail, /GATEWAY_SERVICE_NAME/);
    assert.equal(((await explain('consul')).body as Explain).decision, 'excluded');
  });

  test('unknown service: 404 unknown_service; bad name: 400', async () => {
    const { status, body } = await explain('no-such-service');
    assert.equal(status, 404);
    assert.equal(body.error, 'unknown_service');
    assert.equal(body.service, 'no-such-service');
    assert.equal(typeof body.requestId, 'string');
    const bad = await explain('a.b');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'invalid_service_name');
  });

  // Last: node maintenance takes every instance of the node out.
  test('node maintenance, and the sudden empty answer the gateway holds', async () => {
    await consul.api('PUT', '/v1/agent/maintenance?enable=true&reason=kernel%20upgrade');
    try {
      const e = await waitFor('the empty answer held', async () => {
        const r = (await explain()).body as Explain;
        return r.decision === 'hold' && r.gateway.hold ? r : null;
      }, 5_000);
      const w = instance(e, 'web');
      assert.equal(w.routable, true, 'still routed while the empty answer is held');
      assert.deepEqual(w.reasons.map((r) => r.code), ['held_empty', 'node_maintenance']);
      assert.match(w.reasons[1]!.detail, /kernel upgrade/);
      assert.equal(instance(e, 'sick').routable, false);
      assert.ok(instance(e, 'sick').reasons.some((r) => r.code === 'node_maintenance'));
      assert.ok(Date.parse(e.gateway.hold!.until) - Date.parse(e.gateway.hold!.since) >= 60_000);
      assert.deepEqual((await routedIds(gw, SERVICE)).sort(), [id('dead'), id('web')]);
    } finally {
      await consul.api('PUT', '/v1/agent/maintenance?enable=false');
    }
  });
});
