import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FakeConsul } from '../../../test/lib/fake-consul.js';
import { until } from '../../../test/lib/memory-log.js';
import { scriptedDiscovery } from '../../../test/lib/scripted-discovery.js';
import type { RouteTable } from '../table.js';
import type { DiscoveryOptions } from './discovery.js';

// The miss of issue #21: a change seen by one query (the catalog or the check
// feed, answered by a server that has it) is followed by a read that another
// server answers before it has the change. Consul's ?stale reads may be
// answered by any server, and a client agent's blocking queries and plain reads
// need not reach the same one (a blocking query started before the agent moved
// to another server stays where it was). The table then sits one write behind,
// with nothing left to wake it up. Forced here with a scripted Consul whose
// ?stale reads of /v1/health/service/* come from a frozen copy of the catalog
// (a lagging server), while the catalog and the check feed see the live one.


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ids = (t: RouteTable, service: string) => t.services.get(service)?.map((i) => i.id);
const serviceReads = (fake: FakeConsul, name: string, since: number) =>
  fake.requests.filter((r) => r.at >= since && r.path === `/v1/health/service/${name}`);

/** Resolves once `name` was read since `since` and then not for `quietMs`: every read the change caused is done. */
async function readsSettled(fake: FakeConsul, name: string, since: number, quietMs = 400): Promise<void> {
  await until(`${name} read after the change, then quiet`, () => {
    const reads = serviceReads(fake, name, since);
    return reads.length > 0 && Date.now() - reads[reads.length - 1]!.at >= quietMs;
  }, 3000);
}

describe('Discovery when reads land on a server behind the change that caused them', () => {
  let cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  async function setup(opts: Partial<DiscoveryOptions> = {}) {
    const s = await scriptedDiscovery(opts);
    cleanup.push(s.close);
    return s;
  }

  /** Service reads answered ?stale come from the catalog as it is now, until `catchUp`. */
  function lagServiceReads(fake: FakeConsul) {
    fake.stale = { frozen: fake.snapshot(), paths: ['/v1/health/service/'] };
    return () => (fake.stale = {});
  }

  test('an instance registered without checks is routed once the lagging server catches up (failed before the fix)', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'api-1', service: 'api' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    const catchUp = lagServiceReads(fake);
    const t0 = Date.now();
    fake.register({ id: 'web-2', service: 'web', status: null });
    // Every read the change caused is answered (by the lagging server, or the leader).
    await readsSettled(fake, 'web', t0);
    catchUp(); // the lagging server has the change now; nothing else changes
    await until('web-2 routed', () => ids(d.table, 'web')?.includes('web-2') === true, 3000);
  });

  test('a passing instance deregistered is dropped once the lagging server catches up (failed before the fix)', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'web-2', service: 'web' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    const catchUp = lagServiceReads(fake);
    const t0 = Date.now();
    fake.deregister('web-2'); // passing: its check leaves the full health state, with no index of its own
    await readsSettled(fake, 'web', t0);
    catchUp();
    await until('web-2 dropped', () => ids(d.table, 'web')?.join() === 'web-1', 3000);
  });

  test('a new service registered without checks is routed once the lagging server catches up (failed before the fix)', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    const catchUp = lagServiceReads(fake);
    const t0 = Date.now();
    fake.register({ id: 'api-1', service: 'api', status: null });
    await readsSettled(fake, 'api', t0);
    catchUp();
    await until('api-1 routed', () => ids(d.table, 'api')?.join() === 'api-1', 3000);
  });

  test('a registration the check feed only ever saw passing, read from a server that still has it failing (the node scan alone left it behind)', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    const t0 = Date.now();
    // Registered failing, passing right after: the check feed's next answer shows only the second write.
    fake.register({ id: 'web-2', service: 'web', status: 'critical' });
    const failing = fake.snapshot();
    fake.setStatus('web-2', 'passing');
    fake.stale = { frozen: failing, paths: ['/v1/health/service/'] }; // service reads: a server between the two writes
    await readsSettled(fake, 'web', t0);
    fake.stale = {};
    await until('web-2 routed', () => ids(d.table, 'web')?.includes('web-2') === true, 3000);
  });

  test('a leader read answered after a newer failure was applied from the check feed does not route the failing instance again', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'web-2', service: 'web' });
    fake.register({ id: 'web-3', service: 'web', status: null, viaCatalog: true }); // the node scan's to find
    d.watchCatalog();
    await until('synced', () => d.synced);
    fake.slow('/v1/health/service/web', 400, 'fresh'); // the leader answers late, with the state it read on arrival
    const t0 = Date.now();
    fake.deregister('web-3'); // gone: its index is unknown, so web is read from the leader
    await until('the leader asked for web', () => fake.requests.some((r) => r.at >= t0 && r.path === '/v1/health/service/web' && !r.query.has('stale')), 2000);
    fake.setStatus('web-2', 'critical'); // applied from the check feed while the leader's answer is on its way
    await until('web-2 out', () => !ids(d.table, 'web')?.includes('web-2'), 2000);
    await sleep(800); // the late answer (web-2 still passing in it) has arrived
    fake.clearFailures();
    await sleep(300);
    assert.deepEqual(ids(d.table, 'web'), ['web-1'], 'a failing instance routed again from an older answer');
  });

  test('a change announced while a read of the same service is on its way is read again after it', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    fake.slow('/v1/health/service/web', 300); // every read of web answers late, with the state of its arrival
    const t0 = Date.now();
    fake.register({ id: 'web-2', service: 'web', status: null });
    await until('web read on its way', () => fake.requests.some((r) => r.at >= t0 && r.path === '/v1/health/service/web'), 2000);
    fake.register({ id: 'web-3', service: 'web', status: null }); // after that read arrived: only a second read shows it
    await until('web-2 and web-3 routed', () => ids(d.table, 'web')?.length === 3, 3000);
  });

  test('a check that passes again while the check feed was not watching it is read at its own index', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'web-2', service: 'web', status: 'critical' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    assert.deepEqual(ids(d.table, 'web'), ['web-1']);
    const catchUp = lagServiceReads(fake);
    const t0 = Date.now();
    fake.setStatus('web-2', 'passing');
    await until('web-2 routed (from the feed, or a read confirmed with the leader)', () => ids(d.table, 'web')?.length === 2, 3000);
    catchUp();
    assert.ok(Date.now() - t0 < 3000);
  });
});

describe('Reconciliation: a table that drifted from Consul is found and repaired', () => {
  let cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  test('a server that stays behind for good: the periodic read from the leader corrects the table, logs and counts it', async () => {
    const { fake, d, mem, close } = await scriptedDiscovery({ waitMs: 300, reconcileIntervalMs: 300 });
    cleanup.push(close);
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'api-1', service: 'api' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    // A few sweeps with nothing wrong: no correction counted.
    await until('two sweeps', () => d.state().reconcile.sweeps >= 2, 3000);
    assert.equal(d.state().reconcile.corrections, 0);
    assert.deepEqual(d.state().reasons, []);
    // Every ?stale read now comes from a server that never catches up: only the leader knows web-2.
    fake.stale = { frozen: fake.snapshot() };
    const frozenAt = Date.now();
    // The blocking queries in flight were sent before: wait until both are asked again, of the lagging server.
    const askedAgain = (path: string) => fake.requests.some((r) => r.at > frozenAt && r.path === path && r.query.has('index'));
    await until('blocking queries re-sent', () => askedAgain('/v1/catalog/services') && askedAgain('/v1/health/state/any'), 3000);
    fake.register({ id: 'web-2', service: 'web' });
    await until('web-2 routed by the reconciliation (one pass, then its grace)', () => ids(d.table, 'web')?.includes('web-2') === true, 6000);
    const s = d.state();
    assert.equal(s.reconcile.corrections, 1);
    assert.equal(s.reconcile.lastCorrection?.service, 'web');
    assert.ok(s.reasons.some((r) => /the table differed from consul for web/.test(r)), s.reasons.join('; '));
    assert.ok(mem.lines.some((l) => l.level === 40 && /differed from consul/.test(l.msg)));
    // Nothing more to correct.
    const sweeps = s.reconcile.sweeps;
    await until('another sweep', () => d.state().reconcile.sweeps >= sweeps + 2, 3000);
    assert.equal(d.state().reconcile.corrections, 1);
  });

});

describe("The node scan: a sweep behind the change, the services that changed last, the agent's hint", () => {
  let cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  // The node scan's check that its ?stale answers are not behind the change it looks for.
  const nodeReads = (fake: FakeConsul, since: number, fresh: boolean) =>
    fake.requests.filter((r) => r.at >= since && r.path.startsWith('/v1/catalog/node') && r.query.has('stale') !== fresh);

  test("on Consul 1.8's indexes (the node list's stays at the nodes table's) the node scan's ?stale answers are trusted: no sweep again from the leader (failed before the fix)", async () => {
    const { fake, d, close } = await scriptedDiscovery();
    cleanup.push(close);
    fake.indexes = '1.8';
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'api-1', service: 'api' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    const t0 = Date.now();
    fake.register({ id: 'api-2', service: 'api', status: null, viaCatalog: true }); // found by the node scan only
    await until('api-2 routed', () => ids(d.table, 'api')?.includes('api-2') === true, 3000);
    // Scans run one after another: once a later change to another service is routed by the next
    // scan, the first one (and any sweep again from the leader it decided on) is over.
    fake.register({ id: 'web-2', service: 'web', status: null, viaCatalog: true });
    await until('web-2 routed', () => ids(d.table, 'web')?.includes('web-2') === true, 3000);
    assert.ok(nodeReads(fake, t0, false).length >= 2, 'the node list and the node read, ?stale');
    assert.deepEqual(nodeReads(fake, t0, true).map((r) => r.path), [], 'swept again from the leader');
  });

  for (const indexes of ['1.16', '1.8'] as const)
    test(`node reads from a server behind the change are swept again from the leader, which finds it (${indexes}'s indexes)`, async () => {
      const { fake, d, close } = await scriptedDiscovery();
      cleanup.push(close);
      fake.indexes = indexes;
      fake.register({ id: 'web-1', service: 'web' });
      fake.register({ id: 'api-1', service: 'api' });
      d.watchCatalog();
      await until('synced', () => d.synced);
      fake.stale = { frozen: fake.snapshot(), paths: ['/v1/catalog/node'] }; // the node list and the node reads lag
      const t0 = Date.now();
      fake.register({ id: 'api-2', service: 'api', status: null, viaCatalog: true }); // not the agent's: no hint
      await until('api-2 routed', () => ids(d.table, 'api')?.includes('api-2') === true, 3000);
      assert.ok(nodeReads(fake, t0, true).length >= 1, 'no sweep from the leader');
    });

  test('a change to a service whose instances changed last is read at once, without waiting for the node scan', async () => {
    const { fake, d, close } = await scriptedDiscovery();
    cleanup.push(close);
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'api-1', service: 'api' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    fake.register({ id: 'web-2', service: 'web', status: null }); // found by the scan: web changed last
    await until('web-2 routed', () => ids(d.table, 'web')?.includes('web-2') === true, 3000);
    fake.slow('/v1/catalog/node/', 1500, 'any'); // every node read now takes 1.5 s
    const t0 = Date.now();
    fake.register({ id: 'web-3', service: 'web', status: null, viaCatalog: true }); // not the agent's: no hint
    await until('web-3 routed', () => ids(d.table, 'web')?.includes('web-3') === true, 3000);
    const ms = Date.now() - t0;
    assert.ok(ms < 1000, `web-3 routed after ${ms} ms: it waited for the node read`);
  });

  // Slows every node read to 1.5 s once synced: only the agent's hint can route a change sooner.
  async function slowNodes() {
    const { fake, d, close } = await scriptedDiscovery();
    cleanup.push(close);
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'api-1', service: 'api' });
    fake.register({ id: 'db-1', service: 'db', status: null });
    fake.register({ id: 'db-2', service: 'db', status: null });
    d.watchCatalog();
    await until('synced', () => d.synced);
    fake.slow('/v1/catalog/node/', 1500, 'any');
    return { fake, d };
  }

  test("a change the agent holds (added, removed or moved, without checks) is read at once, without waiting for the node scan (fails without the hint)", async () => {
    const { fake, d } = await slowNodes();
    const routed = async (what: string, change: () => void, done: () => boolean) => {
      const t0 = Date.now();
      change();
      await until(what, done, 3000);
      const ms = Date.now() - t0;
      assert.ok(ms < 1000, `${what} after ${ms} ms: it waited for the node read`);
      await new Promise((r) => setTimeout(r, 1700)); // the scan it started is over: the next change is cold again
    };
    await routed('api-2 routed', () => fake.register({ id: 'api-2', service: 'api', status: null }), () => ids(d.table, 'api')?.includes('api-2') === true);
    await routed('db-2 gone', () => fake.deregister('db-2'), () => ids(d.table, 'db')?.includes('db-2') === false);
    await routed('web-1 moved', () => fake.register({ id: 'web-1', service: 'web', port: 4000 }), () => d.table.services.get('web')?.find((i) => i.id === 'web-1')?.port === 4000);
  });

  test('a change the agent holds, made while a sweep reads slow nodes, is read at once, not after that sweep (failed before the fix)', async () => {
    const { fake, d } = await slowNodes();
    const before = Date.now();
    fake.register({ id: 'web-2', service: 'web', status: null, viaCatalog: true }); // a sweep now reads slow nodes for 1.5 s
    await until('the sweep under way', () => fake.requests.some((r) => r.at >= before && r.path.startsWith('/v1/catalog/node/')), 2000);
    const t0 = Date.now();
    fake.register({ id: 'api-2', service: 'api', status: null });
    await until('api-2 routed', () => ids(d.table, 'api')?.includes('api-2') === true, 4000);
    const ms = Date.now() - t0;
    assert.ok(ms < 1000, `api-2 routed after ${ms} ms: it waited for the sweep under way`);
    await until('web-2 routed by the sweep', () => ids(d.table, 'web')?.includes('web-2') === true, 4000);
  });

  test("the reads the agent's hint asks for are answered before the sweep reads a node, and a slow one holds it up 100 ms at most (SUSPECTED_WAIT_MS)", async () => {
    const { fake, d, close } = await scriptedDiscovery();
    cleanup.push(close);
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'api-1', service: 'api' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    await new Promise((r) => setTimeout(r, 200)); // the start-up scans are over
    const firstAfter = (since: number, prefix: string) => fake.requests.find((r) => r.at >= since && r.path.startsWith(prefix))?.at;
    for (const [id, slowMs, minGap, maxGap] of [['api-2', 60, 50, 1000], ['api-3', 2000, 80, 600]] as const) {
      fake.clearFailures();
      fake.slow('/v1/health/service/api', slowMs, 'stale');
      const t0 = Date.now();
      fake.register({ id, service: 'api', status: null });
      await until(`the sweep after ${id}`, () => firstAfter(t0, '/v1/catalog/node/') !== undefined, 3000);
      const read = firstAfter(t0, '/v1/health/service/api')!;
      const gap = firstAfter(t0, '/v1/catalog/node/')! - read;
      assert.ok(gap >= minGap && gap <= maxGap, `${id}: the sweep's first node read came ${gap} ms after the hinted read (${slowMs} ms to answer), want ${minGap}-${maxGap}`);
      await until(`${id} routed`, () => ids(d.table, 'api')?.includes(id) === true, 4000);
      await new Promise((r) => setTimeout(r, 300)); // its scan is over
    }
  });

  test('what the agent does not hold (a catalog API write on its node) is still found by the node scan', async () => {
    const { fake, d } = await slowNodes();
    fake.register({ id: 'api-2', service: 'api', status: null, viaCatalog: true });
    await until('api-2 routed by the scan', () => ids(d.table, 'api')?.includes('api-2') === true, 4000);
  });

  test('an agent that refuses to list its services leaves the node scan to find every change', async () => {
    const { fake, d, close } = await scriptedDiscovery();
    cleanup.push(close);
    fake.fail('/v1/agent/services', { status: 403, text: 'Permission denied' });
    fake.register({ id: 'web-1', service: 'web' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    for (const id of ['web-2', 'web-3']) {
      fake.register({ id, service: 'web', status: null });
      await until(`${id} routed`, () => ids(d.table, 'web')?.includes(id) === true, 3000);
    }
    assert.equal(fake.requests.filter((r) => r.path === '/v1/agent/services').length, 1, 'asked once');
  });
});
