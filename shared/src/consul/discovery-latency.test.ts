import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeConsul } from '../../../test/lib/fake-consul.js';
import { memoryLog, until } from '../../../test/lib/memory-log.js';
import { ConsulAgents, parseConsulAddrs } from './agents.js';
import { Discovery, type DiscoveryOptions } from './discovery.js';

// Discovery's 'applied' hook (service, ms): a change Consul showed for a
// service already routed, timed from its answer to the table holding it.
// Against the scripted Consul; test/integration/metrics.test.ts sees the same
// through the gateway's histogram against a real agent.

const options: DiscoveryOptions = {
  waitMs: 1000,
  backoffBaseMs: 10,
  backoffMaxMs: 50,
  excluded: new Set(['consul']),
  emptyConfirmMs: 0,
  staleAfterMs: 1000,
  probeIntervalMs: 0,
  reconcileIntervalMs: 0,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ids = (d: Discovery, service: string) => d.table.services.get(service)?.map((i) => i.id) ?? [];

describe("Discovery's applied hook", () => {
  let cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  async function setup() {
    const fake = await new FakeConsul().start();
    const pool = new ConsulAgents(parseConsulAddrs(fake.addr));
    const d = new Discovery(pool, options, memoryLog().log);
    const applied: Array<{ service: string; ms: number }> = [];
    d.on('applied', (service: string, ms: number) => applied.push({ service, ms }));
    cleanup.push(async () => {
      d.stop();
      pool.close();
      await fake.close();
    });
    return { fake, d, applied };
  }

  test('a check failing, passing again and a new passing instance are each timed once; the first sync is not', async () => {
    const { fake, d, applied } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'web-2', service: 'web' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    await sleep(100);
    assert.equal(applied.length, 0, 'reading services for the first time is start-up, not change latency');

    fake.setStatus('web-2', 'critical');
    await until('web-2 out', () => ids(d, 'web').length === 1);
    await until('timed', () => applied.length === 1);
    fake.setStatus('web-2', 'passing');
    await until('web-2 back', () => ids(d, 'web').length === 2);
    await until('timed', () => applied.length === 2);
    fake.register({ id: 'web-3', service: 'web' }); // passing at once: the catalog's move shows it
    await until('web-3 routed', () => ids(d, 'web').includes('web-3'));
    await until('timed', () => applied.length === 3);
    await sleep(100);
    assert.equal(applied.length, 3, 'one observation per change');
    for (const a of applied) {
      assert.equal(a.service, 'web');
      assert.ok(a.ms >= 0 && a.ms < 2_000, `${a.ms} ms`);
    }
  });

  test('each change is timed from its own catalog move, not from an earlier one that the agent\'s hint settled', async () => {
    const { fake, d, applied } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'api-1', service: 'api' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    fake.register({ id: 'web-2', service: 'web', status: null }); // named by the agent's hint: the scan finds nothing
    await until('timed', () => applied.length === 1);
    await sleep(1000);
    fake.register({ id: 'api-2', service: 'api', status: null, viaCatalog: true }); // found by the scan alone
    await until('timed', () => applied.length === 2);
    assert.equal(applied[1]!.service, 'api');
    assert.ok(applied[1]!.ms < 500, `api-2 timed at ${applied[1]!.ms} ms: from the move before it`);
  });

  test('a change read at once because its service changed last is timed too', async () => {
    const { fake, d, applied } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    fake.register({ id: 'web-2', service: 'web', status: null });
    await until('timed', () => applied.length === 1);
    await sleep(300);
    fake.register({ id: 'web-3', service: 'web', status: null, viaCatalog: true }); // web changed last: read at once
    await until('timed', () => applied.length === 2);
    assert.ok(applied[1]!.ms < 500, `${applied[1]!.ms} ms`);
  });

  test('a new service and a change that leaves the table as it was are not timed', async () => {
    const { fake, d, applied } = await setup();
    fake.register({ id: 'web-1', service: 'web' });
    d.watchCatalog();
    await until('synced', () => d.synced);
    fake.register({ id: 'api-1', service: 'api' });
    await until('api routed', () => ids(d, 'api').length === 1);
    // A check that stays non-passing (critical → warning): no routable change.
    fake.register({ id: 'web-2', service: 'web', status: 'critical' });
    await sleep(200);
    fake.setStatus('web-2', 'warning');
    await sleep(200);
    assert.deepEqual(ids(d, 'web'), ['web-1']);
    assert.equal(applied.length, 0);
    // The next real change is timed from its own answer, not from the ones before.
    const t0 = Date.now();
    fake.setStatus('web-2', 'passing');
    await until('web-2 routed', () => ids(d, 'web').length === 2);
    await until('timed', () => applied.length === 1);
    assert.ok(applied[0]!.ms <= Date.now() - t0, `${applied[0]!.ms} ms`);
  });
});
