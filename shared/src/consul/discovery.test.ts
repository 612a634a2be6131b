import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeConsul } from '../../../test/lib/fake-consul.js';
import { until } from '../../../test/lib/memory-log.js';
import { scriptedDiscovery, scriptedOptions } from '../../../test/lib/scripted-discovery.js';
import type { RouteTable } from '../table.js';
import type { Discovery, DiscoveryOptions } from './discovery.js';

// The wiring of Discovery against a scripted Consul (test/lib/fake-consul.ts):
// the paths only a faulty Consul takes, which a real one will not reproduce on
// demand. test/integration/discovery-*.test.ts cover the same against a real
// `consul agent -dev`.

const options = scriptedOptions;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ids = (t: RouteTable, service: string) => t.services.get(service)?.map((i) => i.id);

// Discovery's two blocking queries, as the scripted Consul records them.
const FEED = '/v1/health/state/any';
const CATALOG = '/v1/catalog/services';

/**
 * Discovery's blocking query on `path` asked again with an index of `index` or
 * later: it has handled every answer up to the one at `index` (Consul's
 * blocking protocol sends the last answer's index, and an answer is handled
 * before the query asks again). What must precede a step is awaited with this,
 * never with a sleep.
 */
const askedPast = (fake: FakeConsul, path: string, index: number) =>
  fake.requests.some((r) => r.path === path && Number(r.query.get('index') ?? -1) >= index);

/** The entry of instance `id` in what discovery last read (or patched) for `service`. */
const entry = (d: Discovery, service: string, id: string) =>
  d.serviceView(service)?.entries?.find((e) => e.Service?.ID === id);

describe('Discovery against a scripted Consul', () => {
  let cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  async function setup(opts: Partial<DiscoveryOptions> = {}, agents = 1) {
    const s = await scriptedDiscovery(opts, agents);
    cleanup.push(s.close);
    return s;
  }

  test('follows the catalog: first sync, a check failing and passing, a registration, a deregistration', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'web-2', service: 'web' });
    fake.register({ id: 'api-1', service: 'api' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    assert.deepEqual(ids(d.table, 'web'), ['web-1', 'web-2']);
    assert.deepEqual(ids(d.table, 'api'), ['api-1']);
    assert.equal(d.table.services.has('consul'), false, 'excluded');
    fake.setStatus('web-2', 'critical');
    await until('web-2 out', () => ids(d.table, 'web')?.length === 1);
    fake.setStatus('web-2', 'passing');
    await until('web-2 back', () => ids(d.table, 'web')?.length === 2);
    fake.register({ id: 'web-3', service: 'web' }); // already passing: no non-passing check shows it
    await until('web-3 routed', () => ids(d.table, 'web')?.includes('web-3'));
    fake.deregister('web-1'); // while passing
    await until('web-1 gone', () => !ids(d.table, 'web')?.includes('web-1'));
    fake.deregister('api-1');
    await until('api gone from the table (404)', () => !d.table.services.has('api'));
    assert.deepEqual(d.state().reasons, []);
  });

  test('a deregistration right after another check passed again is not skipped', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'web-2', service: 'web' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    fake.register({ id: 'web-3', service: 'web', status: 'critical' });
    const failingAt = fake.index;
    await until('web-3 seen failing', () =>
      askedPast(fake, FEED, failingAt) && askedPast(fake, CATALOG, failingAt) && entry(d, 'web', 'web-3')?.Checks?.some((c) => c.Status === 'critical'));
    assert.equal(ids(d.table, 'web')?.includes('web-3'), false, 'not routed while failing');
    fake.setStatus('web-3', 'passing');
    const passedAt = fake.index;
    await until('web-3 routed', () => ids(d.table, 'web')?.includes('web-3'));
    // Every answer up to the pass handled: the deregistration below is a change of its own, not part of an earlier one.
    await until('the pass handled', () => askedPast(fake, FEED, passedAt));
    fake.deregister('web-2'); // while passing: no check that is not passing shows it
    await until('web-2 gone', () => !ids(d.table, 'web')?.includes('web-2'), 2000);
  });

  test('a node check failing takes every instance on that node out', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web', node: 'n1' });
    fake.register({ id: 'web-2', service: 'web', node: 'n2' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    fake.setNode('n2', 'critical');
    await until('web-2 out', () => ids(d.table, 'web')?.join() === 'web-1');
  });

  test('a known instance whose check fails or passes again is settled from the check feed alone, without reading the service', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web', node: 'n1' });
    fake.register({ id: 'web-2', service: 'web', node: 'n2' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    // Start-up settled: both blocking queries parked at the last write, so no read they cause is still to come.
    const startedAt = fake.index;
    await until('start-up settled', () => askedPast(fake, FEED, startedAt) && askedPast(fake, CATALOG, startedAt));
    const reads = () => fake.requests.filter((r) => r.path === '/v1/health/service/web').length;
    const before = reads();
    fake.setStatus('web-2', 'critical');
    await until('web-2 out', () => ids(d.table, 'web')?.join() === 'web-1');
    fake.setStatus('web-2', 'passing');
    await until('web-2 back', () => ids(d.table, 'web')?.length === 2);
    fake.setNode('n2', 'critical'); // a node check
    await until('web-2 out with its node', () => ids(d.table, 'web')?.join() === 'web-1');
    fake.setNode('n2', 'passing');
    await until('web-2 back with its node', () => ids(d.table, 'web')?.length === 2);
    assert.equal(reads(), before, 'no read of the service');
  });

  test('an instance deregistered while failing is never routed again on the way out', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'web-2', service: 'web' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    fake.setStatus('web-2', 'critical');
    await until('web-2 out', () => ids(d.table, 'web')?.join() === 'web-1');
    let routedAgain = false;
    d.on('change', (t: RouteTable) => (routedAgain ||= ids(t, 'web')?.includes('web-2') === true));
    fake.deregister('web-2'); // its check leaves the non-passing list: gone, not passing
    const goneAt = fake.index;
    // Past the point where it would have been routed again: the feed's answer that no longer
    // lists its check handled (a patch taking that for passing routes it right then), and a
    // read since the deregistration applied.
    await until('the deregistration handled', () =>
      askedPast(fake, FEED, goneAt) && askedPast(fake, CATALOG, goneAt) && d.serviceView('web')?.entries !== undefined && entry(d, 'web', 'web-2') === undefined);
    assert.equal(routedAgain, false);
    assert.deepEqual(ids(d.table, 'web'), ['web-1']);
  });

  test('an instance registered or deregistered without any check is found by the node scan; only its service is read again', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'api-1', service: 'api' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    const t0 = Date.now();
    const reads = (name: string) => fake.requests.filter((r) => r.at >= t0 && r.path === `/v1/health/service/${name}`).length;
    fake.register({ id: 'web-2', service: 'web', status: null });
    await until('web-2 routed', () => ids(d.table, 'web')?.includes('web-2'));
    fake.deregister('web-2');
    await until('web-2 dropped', () => ids(d.table, 'web')?.join() === 'web-1');
    assert.equal(reads('api'), 0, 'api did not change: not read');
  });

  test('a change without checks in the same catalog answer as a change with checks is not lost', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'api-1', service: 'api' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    // Back to back: the catalog's next answer, and the health state's, show both at once.
    fake.register({ id: 'web-2', service: 'web', status: null });
    fake.register({ id: 'api-2', service: 'api' });
    await until('both routed', () => ids(d.table, 'web')?.length === 2 && ids(d.table, 'api')?.length === 2, 2000);
  });

  test('a catalog that suddenly has no service is held, then believed', async () => {
    const { fake, d, mem } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    const t0 = Date.now();
    fake.deregister('web-1');
    await until('holding', () => d.state().reasons.includes('holding last table: consul suddenly returned no services'));
    assert.deepEqual(ids(d.table, 'web'), ['web-1'], 'still routed while held');
    await until('dropped', () => d.table.services.size === 0);
    assert.ok(Date.now() - t0 >= options.emptyConfirmMs);
    assert.ok(mem.has(/still has no services/));
    assert.deepEqual(d.state().reasons, []);
  });

  test('the catalog hold is cancelled when services come back', async () => {
    const { fake, d, mem } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    fake.deregister('web-1');
    await until('holding', () => d.state().reasons.length > 0);
    fake.register({ id: 'web-2', service: 'web' });
    await until('web-2 routed', () => ids(d.table, 'web')?.join() === 'web-2');
    assert.equal(d.state().reasons.some((r) => r.startsWith('holding last table')), false, 'the hold ended with the answer that lists services');
    // Past the hold's deadline: a timer started after the hold's, for as long, fires after it
    // however loaded the machine (Node runs timers in deadline order). A hold left running
    // would have applied the empty answer by then.
    await sleep(options.emptyConfirmMs);
    assert.deepEqual(ids(d.table, 'web'), ['web-2'], 'the held empty answer was never applied');
    assert.ok(mem.has(/transient/));
  });

  test('a service whose instances all fail is held for the hold, then believed; an instance passing again cancels it', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'api-1', service: 'api' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    fake.setStatus('web-1', 'critical');
    await until('held', () => d.state().reasons.some((r) => r.startsWith('holding the last instances of web')));
    assert.deepEqual(ids(d.table, 'web'), ['web-1']);
    const hold = d.serviceView('web')?.hold;
    assert.ok(hold, 'the hold is in the service view');
    fake.setStatus('web-1', 'passing');
    await until('hold cancelled', () => d.state().reasons.length === 0);
    assert.equal(d.serviceView('web')?.hold, null);
    // Past the hold's deadline (a timer started after the hold's, for as long, fires after it):
    // a hold left running would have emptied the service by then.
    await sleep(hold.until - hold.since);
    assert.deepEqual(ids(d.table, 'web'), ['web-1']);
    fake.setStatus('web-1', 'critical');
    await until('believed after the hold', () => ids(d.table, 'web')?.length === 0, 2000);
  });

  test('the hold follows the check interval when Consul reports it (1.11+)', async () => {
    const { fake, d } = await setup({ emptyConfirmMs: 50 });
    fake.register({ id: 'web-1', service: 'web', interval: '400ms' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    const t0 = Date.now();
    fake.setStatus('web-1', 'critical');
    await until('believed', () => ids(d.table, 'web')?.length === 0, 3000);
    assert.ok(Date.now() - t0 >= 400, `held ${Date.now() - t0} ms, less than the check's interval`);
  });

  test('a lagging server whose catalog misses a service cannot drop it; the leader is asked, and a real removal is applied at once', async () => {
    const { fake, d, mem } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    const older = fake.snapshot();
    fake.register({ id: 'api-1', service: 'api' });
    const apiAt = fake.index;
    d.watchCatalog();
    await until('synced with api', () => d.synced && d.table.services.has('api'));
    let apiDropped = false;
    d.on('change', (t: RouteTable) => (apiDropped ||= fake.stale.frozen !== undefined && !ids(t, 'api')?.length));
    fake.stale = { frozen: older }; // ?stale reads now come from a server behind
    fake.register({ id: 'web-2', service: 'web', status: null }); // wakes the blocking queries
    // The stale catalog answer is handled before the leader is asked: had it dropped api, it would have by now.
    await until('the leader asked', () => fake.requests.some((r) => r.path === '/v1/catalog/services' && !r.query.has('stale')));
    assert.equal(apiDropped, false, 'api never dropped on a lagging answer');
    // Then api's stale read confirmed by the leader, and web-2 (only the leader knows it) read from the leader.
    await until('api confirmed by the leader', () => {
      const v = d.serviceView('api');
      return v !== undefined && v.untrusted === null && v.index >= BigInt(apiAt);
    });
    await until('web-2 read from the leader', () => ids(d.table, 'web')?.includes('web-2'));
    assert.equal(apiDropped, false, 'api never dropped on a lagging answer');
    assert.ok(d.table.services.has('api'), 'api still routed');
    assert.ok(mem.has(/drops services but cannot be trusted yet/));
    fake.stale = {};
    fake.deregister('api-1'); // a real deregistration, from a server in touch with the leader
    await until('api gone at once', () => !d.table.services.has('api'), 1000);
  });

  test('an answer from a server out of touch with the leader cannot take instances away until the leader confirms', async () => {
    const { fake, d, mem } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'web-2', service: 'web' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    let takenAway = false;
    d.on('change', (t: RouteTable) => (takenAway ||= fake.noLeader && !ids(t, 'web')?.includes('web-2')));
    fake.stale = { lastContactMs: 5000 };
    fake.noLeader = true;
    fake.setStatus('web-2', 'critical');
    // The stale answer is handled before the leader is asked, and each failed leader read before it is retried:
    // three reads tried mean the answer and two failed confirmations were handled.
    const leaderReads = () => fake.requests.filter((r) => r.path === '/v1/health/service/web' && !r.query.has('stale')).length;
    await until('the leader read tried three times', () => leaderReads() >= 3);
    assert.equal(takenAway, false, 'not taken away on a stale answer');
    assert.deepEqual(ids(d.table, 'web'), ['web-1', 'web-2'], 'not taken away on a stale answer');
    assert.ok(mem.has(/cannot be trusted yet/));
    assert.ok(d.state().reasons.includes('answers are 5000 ms stale'));
    fake.noLeader = false; // a leader again: the retried confirmation goes through
    await until('web-2 out once the leader confirms', () => ids(d.table, 'web')?.join() === 'web-1');
  });

  test('a snapshot restore (index back for good) is believed once the leader says the same', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    const older = fake.snapshot();
    fake.register({ id: 'api-1', service: 'api' });
    d.watchCatalog();
    await until('synced', () => d.synced && d.table.services.has('api'));
    fake.restore(older);
    await until('api gone', () => !d.table.services.has('api'));
    // and changes after the restore, at lower indexes than before, still arrive
    fake.setStatus('web-1', 'critical');
    fake.register({ id: 'web-2', service: 'web' });
    await until('web-2 in, web-1 out', () => ids(d.table, 'web')?.join() === 'web-2');
  });

  test('403 on one service: synced anyway, named in state(), no failover', async () => {
    const { fakes, d, mem } = await setup({}, 2);
    const [fake, other] = fakes as [FakeConsul, FakeConsul];
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'secret-1', service: 'secret' });
    fake.fail('/v1/health/service/secret', { status: 403, text: 'Permission denied' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    assert.deepEqual(ids(d.table, 'web'), ['web-1']);
    const s = d.state();
    assert.equal(s.reachable, true);
    assert.deepEqual(s.reasons, ['consul does not answer for service secret: 403 Permission denied']);
    assert.equal(other.requests.length, 0, 'never failed over');
    assert.ok(mem.lines.some((l) => /refuses to read service secret: check the ACL token/.test(l.msg)));
    assert.ok(!mem.has(/unreachable/));
  });

  test('403 on the catalog: not synced, the reason says so, no failover', async () => {
    const { fakes, d } = await setup({}, 2);
    fakes[0]!.fail('/v1/catalog/services', { status: 403, text: 'ACL not found' });
    d.watchCatalog();
    await until('reason', () => d.state().reasons.some((r) => /catalog read: 403 ACL not found/.test(r)));
    assert.equal(d.synced, false);
    assert.equal(d.state().reachable, true);
    assert.equal(fakes[1]!.requests.length, 0);
    fakes[0]!.clearFailures();
    await until('synced once allowed', () => d.synced, 2000);
    assert.deepEqual(d.state().reasons, []);
  });

  test('a service that keeps failing with a 5xx stops holding the first sync up after a few attempts', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'flaky-1', service: 'flaky' });
    fake.fail('/v1/health/service/flaky', { status: 500, text: 'rpc error' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    assert.ok(d.state().reasons.some((r) => r.startsWith('consul does not answer for service flaky')));
    fake.clearFailures();
    await until('flaky read once retried', () => ids(d.table, 'flaky')?.join() === 'flaky-1', 2000);
  });

  test('a change listener that throws is logged as a bug, not as a Consul failure', async () => {
    const { fakes, d, mem } = await setup({}, 2);
    const [fake, other] = fakes as [FakeConsul, FakeConsul];
    fake.register({ id: 'web-1', service: 'web' });
    d.on('change', () => {
      throw new Error('listener bug');
    });
    d.watchCatalog();
    await until('synced', () => d.synced);
    fake.register({ id: 'web-2', service: 'web' });
    await until('still following', () => ids(d.table, 'web')?.length === 2);
    assert.ok(mem.lines.some((l) => /bug: a discovery 'change' listener threw/.test(l.msg) && l.level === 50));
    assert.equal(d.state().reachable, true);
    assert.equal(other.requests.length, 0);
  });

  test('Consul unreachable, then back: state() says so, the last table stays', async () => {
    const { fake, d, mem } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    fake.fail('/', 'reset');
    fake.setStatus('web-1', 'warning'); // wakes the blocking queries into the resets
    await until('unreachable', () => d.state().reasons.includes('consul unreachable'));
    assert.deepEqual(ids(d.table, 'web'), ['web-1']);
    fake.clearFailures();
    await until('reachable again', () => d.state().reachable, 2000);
    assert.ok(mem.has(/consul reachable again/));
  });

  test('watchService: resolves on the first answer; timing out while Consul is down leaks no listener', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.fail('/v1/health/service/web', 'reset');
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    cleanup.push(() => void process.off('warning', onWarning));
    for (let i = 0; i < 15; i++) await d.watchService('web', 5);
    assert.equal(d.table.services.has('web'), false);
    fake.clearFailures();
    await d.watchService('web', 2000);
    assert.deepEqual(ids(d.table, 'web'), ['web-1']);
    await new Promise(setImmediate); // process warnings are emitted on the next tick: all delivered by now
    assert.deepEqual(warnings.map((w) => w.name), []);
    assert.equal(d.synced, false, 'on-demand lookups alone never make the gateway synced');
  });

  test('watchService follows changes and holds, like the catalog', async () => {
    const { fake, d } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'web-2', service: 'web' });
    await d.watchService('Web', 2000);
    assert.deepEqual(ids(d.table, 'web'), ['web-1', 'web-2']);
    fake.setStatus('web-1', 'critical');
    await until('web-1 out', () => ids(d.table, 'web')?.join() === 'web-2');
    fake.deregister('web-2');
    await until('held', () => ids(d.table, 'web')?.join() === 'web-2');
    await until('believed', () => ids(d.table, 'web')?.length === 0);
  });
});
