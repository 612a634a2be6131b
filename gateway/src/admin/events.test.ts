import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { consulOk } from '../testing/harness.js';
import { type ConsulState, emptyTable, type Instance, instanceKey, type RouteTable, setService } from '@stack/shared';
import { diffConsul, diffEjections, diffTables, EventFeed, Ring, type EjectionSample, type GatewayEvent, type NewEvent } from './events.js';
import { OutlierDetector } from '../balancing/outlier.js';

const inst = (id: string, port: number, node = 'n1', address = '10.0.0.1'): Instance => ({ id, service: 'web', address, port, node, tags: [], key: instanceKey(node, id) });
const A = inst('a', 81);
const B = inst('b', 82);
const C = inst('c', 83);

function table(entries: Record<string, Instance[]>, base: RouteTable = emptyTable): RouteTable {
  let t = base;
  for (const [name, list] of Object.entries(entries)) t = setService(t, name, list);
  return t;
}

const brief = (events: readonly NewEvent[]) => events.map((e) => [e.type, e.service ?? null, e.instance ?? null]);

describe('Ring', () => {
  test('keeps the last `capacity` items, oldest first', () => {
    const r = new Ring<number>(3);
    assert.deepEqual(r.toArray(), []);
    for (let i = 1; i <= 2; i++) r.push(i);
    assert.deepEqual(r.toArray(), [1, 2]);
    for (let i = 3; i <= 10; i++) r.push(i);
    assert.deepEqual(r.toArray(), [8, 9, 10]);
    assert.equal(r.size, 3);
  });

  test('rejects a capacity below 1', () => {
    assert.throws(() => new Ring(0));
  });
});

describe('diffTables', () => {
  const t1 = table({ web: [A, B] });
  const cases: Array<[string, RouteTable, RouteTable, Array<[string, string | null, string | null]>]> = [
    ['first table: service and instances added', emptyTable, t1, [['service-added', 'web', null], ['instance-added', 'web', 'a'], ['instance-added', 'web', 'b']]],
    ['an instance joins', t1, table({ web: [A, B, C] }, t1), [['instance-added', 'web', 'c']]],
    ['an instance leaves', t1, table({ web: [A] }, t1), [['instance-removed', 'web', 'b']]],
    ['one in, one out', t1, table({ web: [A, C] }, t1), [['instance-added', 'web', 'c'], ['instance-removed', 'web', 'b']]],
    ['an instance moves port', t1, table({ web: [A, { ...B, port: 99 }] }, t1), [['instance-changed', 'web', 'b']]],
    ['same id on another node is another instance', t1, table({ web: [A, B, inst('b', 82, 'n2')] }, t1), [['instance-added', 'web', 'b']]],
    ['last instance gone, service stays', t1, table({ web: [] }, t1), [['instance-removed', 'web', 'a'], ['instance-removed', 'web', 'b']]],
    ['a second service', t1, table({ api: [C] }, t1), [['service-added', 'api', null], ['instance-added', 'api', 'c']]],
    ['service leaves the catalog', t1, { version: t1.version + 1, changedAt: new Date(), services: new Map() }, [['instance-removed', 'web', 'a'], ['instance-removed', 'web', 'b'], ['service-removed', 'web', null]]],
    ['nothing changed', t1, t1, []],
  ];
  for (const [name, prev, next, want] of cases) {
    test(name, () => {
      const events = diffTables(prev, next);
      assert.deepEqual(brief(events), want);
      for (const e of events) assert.equal(e.version, next.version);
    });
  }

  test('details say where the instance is', () => {
    const [, added] = diffTables(emptyTable, table({ web: [A] }));
    assert.equal(added!.detail, 'passing at 10.0.0.1:81 on n1');
  });
});

const consul: ConsulState = consulOk;
const unreachable: ConsulState = { ...consul, reachable: false, degraded: true, reasons: ['consul unreachable'] };
const noLeader: ConsulState = { ...consul, knownLeader: false, degraded: true, reasons: ['consul has no known leader'] };
const stale = (ms: number): ConsulState => ({ ...consul, lastContactMs: ms, degraded: true, reasons: [`answers are ${ms} ms stale`] });
const beforeFirstAnswer: ConsulState = { ...consul, agent: null, lastContact: null, knownLeader: false };

describe('diffConsul', () => {
  const cases: Array<[string, ConsulState | null, ConsulState, string[]]> = [
    ['first sample, healthy: nothing', null, consul, []],
    ['first sample, degraded: degraded', null, unreachable, ['consul-degraded']],
    ['healthy → unreachable', consul, unreachable, ['consul-degraded']],
    ['unreachable → healthy', unreachable, consul, ['consul-recovered']],
    ['still unreachable: nothing', unreachable, unreachable, []],
    ['leader lost', consul, noLeader, ['consul-degraded', 'consul-leader-lost']],
    ['leader back', noLeader, consul, ['consul-recovered', 'consul-leader-known']],
    ['first answer brings a leader: not "again"', beforeFirstAnswer, consul, []],
    ['other reasons while degraded', unreachable, noLeader, ['consul-degraded', 'consul-leader-lost']],
    ['stale figures move: one event, not one per sample', stale(3000), stale(4200), []],
  ];
  for (const [name, prev, next, want] of cases) {
    test(name, () => assert.deepEqual(diffConsul(prev, next).map((e) => e.type), want));
  }

  test('a degraded event carries the reasons', () => {
    assert.equal(diffConsul(consul, { ...unreachable, reasons: ['consul unreachable', 'holding x'] })[0]!.detail, 'consul unreachable; holding x');
  });
});

describe('diffEjections', () => {
  const NOW = 1_000_000;
  const ej = (instance: string, until: number): EjectionSample => ({ service: 'web', instance, until });
  const m = (...list: Array<[string, EjectionSample]>) => new Map(list);
  const all = () => true;
  const cases: Array<[string, Map<string, EjectionSample>, Map<string, EjectionSample>, (k: string) => boolean, string[]]> = [
    ['newly ejected', m(), m(['web|a', ej('a', NOW + 5000)]), all, ['instance-ejected']],
    ['still ejected: nothing', m(['web|a', ej('a', NOW + 5000)]), m(['web|a', ej('a', NOW + 5000)]), all, []],
    ['readmitted', m(['web|a', ej('a', NOW)]), m(), all, ['instance-readmitted']],
    ['ejected again between samples (later deadline)', m(['web|a', ej('a', NOW + 10)]), m(['web|a', ej('a', NOW + 10_000)]), all, ['instance-ejected']],
    ['left the table while ejected: its removal says it', m(['web|a', ej('a', NOW + 10)]), m(), () => false, []],
  ];
  for (const [name, seen, current, inTable, want] of cases) {
    test(name, () => assert.deepEqual(diffEjections(seen, current, inTable, NOW).map((e) => e.type), want));
  }

  test('the ejection detail gives how long and until when', () => {
    const [e] = diffEjections(m(), m(['web|a', ej('a', NOW + 5000)]), all, NOW);
    assert.equal(e!.detail, `passive health: ejected for 5 s, until ${new Date(NOW + 5000).toISOString()}`);
    assert.equal(e!.instance, 'a');
  });
});

/** A feed over a table, Consul state and outlier detector the test moves by hand. */
function rig(capacity = 200) {
  const clock = { now: Date.parse('2024-05-01T12:00:00.000Z') };
  const src = { table: emptyTable, consul };
  const outliers = new OutlierDetector({ consecutiveFailures: 1, baseEjectMs: 5_000, maxEjectMs: 5_000, maxEjectPercent: 100 }, () => clock.now);
  const feed = new EventFeed({
    table: () => src.table,
    state: () => src.consul,
    ejectedUntil: (k) => outliers.ejectedUntil(k),
    capacity,
    now: () => clock.now,
  });
  const seen: GatewayEvent[] = [];
  feed.subscribe((e) => seen.push(e));
  const change = (t: RouteTable) => {
    src.table = t;
    feed.tableChanged(t);
  };
  return { clock, src, outliers, feed, seen, change };
}

describe('EventFeed', () => {
  test('table changes become numbered events, delivered to subscribers', () => {
    const { feed, seen, change, src } = rig();
    change(table({ web: [A] }));
    change(table({ web: [A, B] }, src.table));
    assert.deepEqual(seen.map((e) => [e.id, e.type, e.instance ?? null]), [[1, 'service-added', null], [2, 'instance-added', 'a'], [3, 'instance-added', 'b']]);
    assert.deepEqual(feed.recent(), seen);
    assert.equal(seen[0]!.at, '2024-05-01T12:00:00.000Z');
  });

  test('the ring is bounded; after(id) replays what came after, or all when unknown', () => {
    const { feed } = rig(5);
    for (let i = 0; i < 12; i++) feed.record({ type: 'synced', detail: String(i) });
    assert.deepEqual(feed.recent().map((e) => e.id), [8, 9, 10, 11, 12]);
    assert.deepEqual(feed.after(10).map((e) => e.id), [11, 12]);
    assert.deepEqual(feed.after(12), []);
    assert.deepEqual(feed.after(2).map((e) => e.id), [8, 9, 10, 11, 12], 'older than the ring: everything kept');
    assert.deepEqual(feed.after(-1).map((e) => e.id), [8, 9, 10, 11, 12]);
    assert.deepEqual(feed.after(99).map((e) => e.id), [8, 9, 10, 11, 12], 'from the future (another process): everything kept');
  });

  test('joinedAt: first seen, kept while it stays, forgotten when it leaves', () => {
    const { clock, feed, change, src } = rig();
    change(table({ web: [A] }));
    const t0 = new Date(clock.now).toISOString();
    clock.now += 10_000;
    change(table({ web: [A, B] }, src.table));
    assert.equal(feed.joinedAt('web', A), t0);
    assert.equal(feed.joinedAt('web', B), new Date(clock.now).toISOString());
    clock.now += 10_000;
    change(table({ web: [B] }, src.table));
    assert.equal(feed.joinedAt('web', A), null);
    clock.now += 10_000;
    change(table({ web: [A, B] }, src.table));
    assert.equal(feed.joinedAt('web', A), new Date(clock.now).toISOString(), 'a return is a new join');
    assert.equal(feed.joinedAt('nope', A), null);
  });

  test('the sampler sees ejections and readmissions in the outlier detector', () => {
    const { clock, feed, outliers, change, seen } = rig();
    change(table({ web: [A, B] }));
    seen.length = 0;
    feed.sample();
    assert.deepEqual(seen, []);
    outliers.failure(A.key, [A, B].map((i) => i.key));
    feed.sample();
    feed.sample();
    assert.deepEqual(brief(seen), [['instance-ejected', 'web', 'a']]);
    clock.now += 5_001;
    feed.sample();
    assert.deepEqual(brief(seen), [['instance-ejected', 'web', 'a'], ['instance-readmitted', 'web', 'a']]);
  });

  test('an ejected instance that leaves the table is not "readmitted"', () => {
    const { feed, outliers, change, seen, src } = rig();
    change(table({ web: [A, B] }));
    outliers.failure(A.key, [A, B].map((i) => i.key));
    feed.sample();
    src.table = table({ web: [B] }, src.table);
    outliers.retain(new Set([B.key]));
    seen.length = 0;
    feed.sample();
    assert.deepEqual(brief(seen), [['instance-removed', 'web', 'a']]);
  });

  test('the sampler sees Consul degrade and recover', () => {
    const { feed, src, seen } = rig();
    feed.sample();
    src.consul = unreachable;
    feed.sample();
    feed.sample();
    src.consul = consul;
    feed.sample();
    assert.deepEqual(seen.map((e) => e.type), ['consul-degraded', 'consul-recovered']);
  });

  test('start() samples on an unref\'d timer; stop() ends it', async () => {
    const { feed, src, seen } = rig();
    feed.start(10);
    src.consul = unreachable;
    await new Promise((r) => setTimeout(r, 60));
    feed.stop();
    assert.deepEqual(seen.map((e) => e.type), ['consul-degraded']);
    src.consul = consul;
    const before = feed.recent().length;
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(feed.recent().length, before, 'no sample after stop()');
  });

  test('a throwing subscriber does not stop the others', () => {
    const { feed } = rig();
    const got: number[] = [];
    feed.subscribe(() => {
      throw new Error('dead stream');
    });
    feed.subscribe((e) => got.push(e.id));
    feed.record({ type: 'synced', detail: 'x' });
    assert.deepEqual(got, [1]);
  });
});
