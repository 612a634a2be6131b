import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyTable, type Instance, instanceKey, type RouteTable, setService } from '@stack/shared';
import { BOUNDS_MS, LiveStats, quantile, Window, WINDOW_S } from './live-stats.js';
import type { AttemptReport } from './observer.js';

const inst = (id: string, port: number): Instance => ({ id, service: 'svc', address: '127.0.0.1', port, node: 'n1', tags: [], key: instanceKey('n1', id) });
const attempt = (i: Instance, over: Partial<AttemptReport> = {}): AttemptReport => ({ inst: i, outcome: 'ok', status: 200, ms: 5, retry: 'none', ejected: false, ...over });

describe('Window: rates over the last ten seconds', () => {
  test('rps divides by the span covered: nine whole seconds and this one so far', () => {
    const w = new Window();
    for (let i = 0; i < 19; i++) w.record(100_500, 1, false); // 19 events at t = 100.5 s
    assert.equal(w.stats(100_500).rps, 2); // 19 / 9.5 s
    assert.equal(w.stats(100_999).rps, round2(19 / 9.999));
  });

  const cases: Array<{ name: string; events: Array<[atMs: number, ms: number, error: boolean]>; now: number; expect: { rps: number; errorRate: number } }> = [
    { name: 'empty', events: [], now: 50_000, expect: { rps: 0, errorRate: 0 } },
    { name: 'spread over the window', events: [[91_000, 1, false], [95_000, 1, true], [99_000, 1, false], [100_000, 1, true]], now: 100_000, expect: { rps: 4 / 9, errorRate: 0.5 } },
    { name: 'ten seconds old: out', events: [[90_999, 1, true], [100_000, 1, false]], now: 100_000, expect: { rps: 1 / 9, errorRate: 0 } },
    { name: 'nine seconds back: in', events: [[91_000, 1, true]], now: 100_999, expect: { rps: round2(1 / 9.999), errorRate: 1 } },
    { name: 'all stale', events: [[10_000, 1, true]], now: 100_000, expect: { rps: 0, errorRate: 0 } },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const w = new Window();
      for (const [at, ms, err] of c.events) w.record(at, ms, err);
      const s = w.stats(c.now);
      assert.equal(s.rps, round2(c.expect.rps));
      assert.equal(s.errorRate, c.expect.errorRate);
      if (s.rps === 0) assert.deepEqual([s.p50Ms, s.p99Ms], [null, null]);
    });
  }

  test('a slot reused by a new second starts from zero; a late event for a recycled second is dropped', () => {
    const w = new Window();
    w.record(3_000, 1, true); // second 3, slot 3
    w.record(13_000, 1, false); // second 13, slot 3 again
    w.record(3_500, 1, true); // late, for second 3: dropped
    const s = w.stats(13_000);
    assert.equal(s.errorRate, 0);
    assert.equal(s.rps, round2(1 / 9));
  });
});

describe('quantiles from the fixed buckets', () => {
  const hist = (values: number[]) => {
    const w = new Window();
    for (const v of values) w.record(5_000, v, false);
    return w.stats(5_000);
  };
  const cases: Array<[string, number[], number | null, number | null]> = [
    ['all equal: never above the largest value', Array(100).fill(4), 4, 4],
    ['half fast, half slow', [...Array(50).fill(1), ...Array(50).fill(100)], 1, 99.5],
    ['one event', [12], 12, 12],
    // Within a bucket, values are assumed spread evenly: exact to the bucket's width.
    ['inside a bucket: linear', [...Array(99).fill(0.5), 40], 0.5, 1],
    // Past the last bound, the bucket ends at the largest value seen.
    ['slow tail past the last bound', [...Array(98).fill(2), 40_000, 60_000], 1.5, 45_000],
  ];
  for (const [name, values, p50, p99] of cases)
    test(name, () => {
      const s = hist(values);
      assert.equal(s.p50Ms, p50, 'p50');
      assert.equal(s.p99Ms, p99, 'p99');
    });

  test('interpolation by hand: 10 events in (10, 15] ms, p50 halfway', () => {
    const b = new Array(BOUNDS_MS.length + 1).fill(0);
    b[BOUNDS_MS.indexOf(15)] = 10;
    assert.equal(quantile(b, 10, 15, 0.5), 12.5);
    assert.equal(quantile(b, 10, 15, 0.99), 15);
    assert.equal(quantile(b, 0, 0, 0.5), null);
  });
});

describe('LiveStats', () => {
  function fixture() {
    const state: { table: RouteTable; now: number } = { table: setService(emptyTable, 'svc', [inst('a', 1), inst('b', 2)]), now: 20_000 };
    const live = new LiveStats(() => state.table, () => state.now);
    return { state, live };
  }

  test('services count requests (5xx answers are errors), instances count attempts (failures and 5xx are errors)', () => {
    const { live } = fixture();
    live.request('svc', 200, 10, null);
    live.request('svc', 502, 30, null);
    live.request('svc', 499, 5, null); // the client left: not an error
    live.request('svc', 503, 0.1, 'overloaded');
    live.attempt('svc', attempt(inst('a', 1), { ms: 8 }));
    live.attempt('svc', attempt(inst('a', 1), { outcome: 'connect_failure', status: 0, ms: 1 }));
    live.attempt('svc', attempt(inst('b', 2), { status: 503, ms: 2 }));
    live.attempt('svc', attempt(inst('b', 2), { status: 200, ms: 2 }));
    const json = live.toJSON(new Date('2024-05-01T12:00:00.000Z'));
    assert.equal(json.windowSeconds, WINDOW_S);
    assert.equal(json.at, '2024-05-01T12:00:00.000Z');
    assert.deepEqual(Object.keys(json.services), ['svc']);
    const svc = json.services.svc!;
    assert.equal(svc.rps, round2(4 / 9));
    assert.equal(svc.errorRate, 0.5);
    assert.deepEqual(Object.keys(svc.instances).sort(), ['n1/a', 'n1/b']);
    assert.equal(svc.instances['n1/a']!.errorRate, 0.5);
    assert.equal(svc.instances['n1/b']!.errorRate, 0.5);
    assert.equal(svc.instances['n1/a']!.p99Ms, 8);
  });

  test('names not in the table are not kept; instances and services that leave it drop out', () => {
    const { live, state } = fixture();
    live.request('nope', 404, 1, 'unknown_service');
    live.request(null, 400, 1, 'invalid_service_name');
    live.attempt('svc', attempt(inst('x', 9)));
    live.attempt('svc', attempt(inst('b', 2)));
    assert.deepEqual(Object.keys(live.toJSON().services), ['svc']);
    assert.deepEqual(Object.keys(live.toJSON().services.svc!.instances).sort(), ['n1/a', 'n1/b']);
    state.table = setService(state.table, 'svc', [inst('a', 1)]);
    state.table = setService(state.table, 'api', [inst('c', 3)]);
    const json = live.toJSON();
    assert.deepEqual(Object.keys(json.services).sort(), ['api', 'svc']);
    assert.deepEqual(Object.keys(json.services.svc!.instances), ['n1/a']);
    assert.deepEqual(json.services.api!.instances['n1/c'], { rps: 0, errorRate: 0, p50Ms: null, p99Ms: null });
    state.table = { ...state.table, version: state.table.version + 1, services: new Map([['api', [inst('c', 3)]]]) };
    assert.deepEqual(Object.keys(live.toJSON().services), ['api']);
  });

  test('an instance that stays keeps its figures across table changes', () => {
    const { live, state } = fixture();
    live.attempt('svc', attempt(inst('a', 1)));
    state.table = setService(state.table, 'svc', [inst('a', 1), inst('c', 3)]);
    assert.equal(live.toJSON().services.svc!.instances['n1/a']!.rps, round2(1 / 9));
  });

  test('the window slides: figures fade out after ten seconds', () => {
    const { live, state } = fixture();
    live.request('svc', 200, 3, null);
    state.now += 9_000;
    assert.equal(live.toJSON().services.svc!.rps, round2(1 / 9));
    state.now += 1_000;
    assert.deepEqual(live.toJSON().services.svc, { rps: 0, errorRate: 0, p50Ms: null, p99Ms: null, instances: live.toJSON().services.svc!.instances });
  });
});

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
