import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { instanceKey, type Instance } from '@stack/shared';
import { ewmaCost, LoadTracker, p2c, type LbPolicy } from './balancer.js';
import { InstancePicker } from './instance-picker.js';
import { OutlierDetector } from './outlier.js';

const inst = (id: string, port: number, node = 'n1'): Instance => ({ id, service: 'svc', address: '10.0.0.1', port, node, tags: [], key: instanceKey(node, id) });
const A = inst('a', 1);
const B = inst('b', 2);
const C = inst('c', 3);
const ALL = [A, B, C];
const k = (i: Instance) => i.key;

/** A clock the test moves, and a random source that replays a list. */
function fakes(randoms: number[] = []) {
  const clock = { t: 100_000 };
  let i = 0;
  const random = () => (randoms.length ? randoms[i++ % randoms.length]! : 0.5);
  return { clock, now: () => clock.t, random };
}

describe('LoadTracker (peak EWMA, fake clock)', () => {
  const cases: Array<{ name: string; steps: Array<[advanceMs: number, sampleMs: number]>; readAfterMs: number; want: number; tol?: number }> = [
    { name: 'the first sample is the estimate', steps: [[0, 40]], readAfterMs: 0, want: 40 },
    { name: 'a higher sample replaces it at once (peak)', steps: [[0, 5], [10, 300]], readAfterMs: 0, want: 300 },
    // 5 → decayed over 10 ms: w = e^-0.001; a lower sample moves it by (1 - w).
    { name: 'a lower sample soon after moves it a little', steps: [[0, 300], [10, 5]], readAfterMs: 0, want: 300 * Math.exp(-0.001) * Math.exp(-0.001) + 5 * (1 - Math.exp(-0.001)), tol: 0.01 },
    // 300·e^-5 ≈ 2 ms by then: the sample is above the decayed estimate, so it is the new peak.
    { name: 'after a long gap the decayed estimate is below a sample, which replaces it', steps: [[0, 300], [50_000, 5]], readAfterMs: 0, want: 5 },
    { name: 'decays towards zero while nothing is learnt (tau 10 s)', steps: [[0, 300]], readAfterMs: 10_000, want: 300 / Math.E, tol: 0.01 },
  ];
  for (const c of cases)
    test(c.name, () => {
      const f = fakes();
      const t = new LoadTracker({ decayMs: 10_000, failurePenaltyMs: 1_000 }, f.now);
      for (const [adv, ms] of c.steps) {
        f.clock.t += adv;
        t.started('x');
        t.finished('x', ms, false);
      }
      f.clock.t += c.readAfterMs;
      const got = t.latency(t.peek('x')!)!;
      assert.ok(Math.abs(got - c.want) <= (c.tol ?? 1e-9), `${got} vs ${c.want}`);
    });

  test('a failure counts as at least the penalty, so an instance that fails fast does not look fast', () => {
    const f = fakes();
    const t = new LoadTracker({ decayMs: 10_000, failurePenaltyMs: 1_000 }, f.now);
    t.started('x');
    t.finished('x', 2, true);
    assert.equal(t.latency(t.peek('x')!), 1_000);
  });

  test('in flight counts up on start and down on finish, never below zero', () => {
    const t = new LoadTracker();
    t.started('x');
    t.started('x');
    assert.equal(t.peek('x')!.inflight, 2);
    t.finished('x', 1, false);
    t.finished('x', 1, false);
    t.finished('x', 1, false);
    assert.equal(t.peek('x')!.inflight, 0);
  });

  test("a new instance starts at its peers' average latency, not at zero", () => {
    const f = fakes();
    const t = new LoadTracker(undefined, f.now);
    for (const [key, ms] of [[k(A), 10], [k(B), 30]] as const) {
      t.started(key);
      t.finished(key, ms, false);
    }
    assert.equal(t.seed(k(C), ALL).ewmaMs, 20);
    // Once known, its own samples rule.
    f.clock.t += 1_000;
    t.started(k(C));
    t.finished(k(C), 4, false);
    assert.ok(t.seed(k(C), ALL).ewmaMs! < 20);
  });

  test('retain forgets instances that left', () => {
    const t = new LoadTracker();
    t.started('x');
    t.started('y');
    t.retain(new Set(['y']));
    assert.equal(t.peek('x'), undefined);
    assert.ok(t.peek('y'));
  });

  const costs: Array<[latencyMs: number | null, inflight: number, want: number]> = [
    [300, 2, 900],
    [80, 0, 80],
    [10, 2, 150], // under the 50 ms floor
    [null, 1, 100], // nothing known yet: the floor
  ];
  for (const [lat, inflight, want] of costs)
    test(`cost: latency ${lat} ms, ${inflight} in flight → ${want} (latency × (in flight + 1), as Linkerd's, latency at least 50 ms)`, () => {
      assert.equal(ewmaCost({ inflight, ewmaMs: lat, at: 0, picks: 0, failures: 0 }, lat), want);
    });
});

describe('p2c', () => {
  const cost = (x: { c: number }) => x.c;
  const items = [{ id: 'a', c: 5 }, { id: 'b', c: 1 }, { id: 'c', c: 9 }];
  const cases: Array<{ name: string; randoms: number[]; skip?: string[]; want: string | undefined }> = [
    // First draw floor(r*3), second floor(r*2) shifted past the first.
    { name: 'b vs a: b is cheaper', randoms: [0.5, 0], want: 'b' },
    { name: 'c vs a: a is cheaper', randoms: [0.9, 0], want: 'a' },
    { name: 'never the same one twice: a vs b when the second draw lands on a', randoms: [0, 0], want: 'b' },
    { name: 'with b skipped: a vs c', randoms: [0, 0], skip: ['b'], want: 'a' },
    { name: 'one left: that one', randoms: [0.9, 0.9], skip: ['a', 'b'], want: 'c' },
    { name: 'all skipped: none', randoms: [0.5], skip: ['a', 'b', 'c'], want: undefined },
  ];
  for (const c of cases)
    test(c.name, () => {
      const f = fakes(c.randoms);
      const got = p2c(items, cost, c.skip ? (x) => c.skip!.includes(x.id) : undefined, f.random);
      assert.equal(got?.id, c.want);
    });

  test('ties go to the first drawn; equal costs spread over every instance', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(p2c(items, () => 1, undefined, Math.random)!.id);
    assert.deepEqual([...seen].sort(), ['a', 'b', 'c']);
  });
});

describe('InstancePicker: the rules hold under every policy', () => {
  const POLICIES: LbPolicy[] = ['peak_ewma', 'least_request', 'round_robin'];
  function setup(policy: LbPolicy) {
    const f = fakes();
    const outliers = new OutlierDetector({ consecutiveFailures: 1, baseEjectMs: 10_000, maxEjectMs: 10_000, maxEjectPercent: 100 }, f.now);
    const eject = (...xs: Instance[]) => {
      for (const x of xs) assert.ok(outliers.failure(k(x), ALL.map(k)));
    };
    return { picker: new InstancePicker(outliers, policy, new LoadTracker(undefined, f.now), Math.random), eject, f };
  }
  const cases: Array<[string, Instance[], Instance[], string[] | undefined]> = [
    // [name, tried, ejected, possible picks]
    ['skips tried instances', [A], [], ['b', 'c']],
    ['skips ejected instances', [], [B, C], ['a']],
    ['skips both tried and ejected', [A], [B], ['c']],
    ['all untried ejected → still an untried one', [A], [B, C], ['b', 'c']],
    ['every instance ejected, none tried → one of them', [], [A, B, C], ['a', 'b', 'c']],
    ['all tried → undefined', [A, B, C], [], undefined],
  ];
  for (const policy of POLICIES)
    for (const [name, tried, ejected, want] of cases)
      test(`${policy}: ${name}`, () => {
        const { picker, eject } = setup(policy);
        eject(...ejected);
        for (let i = 0; i < 30; i++) {
          const got = picker.pick('svc', ALL, tried.map(k))?.id;
          if (want === undefined) assert.equal(got, undefined);
          else assert.ok(want.includes(got!), `${got} not in ${want}`);
        }
      });

  for (const policy of POLICIES)
    test(`${policy}: a retry prefers a node the request has not failed on`, () => {
      const { picker } = setup(policy);
      const X = inst('x', 10, 'n1');
      const Y = inst('y', 11, 'n1');
      const Z = inst('z', 12, 'n2');
      for (let i = 0; i < 20; i++) assert.equal(picker.pick('svc', [X, Y, Z], [k(X)], ['n1'])?.id, 'z');
    });
});

describe('InstancePicker: who gets the traffic (fake clock, simulated answers)', () => {
  /**
   * Sends `n` requests one after another through the picker; each instance
   * answers after its latency (ms) on the fake clock, with `gapMs` between
   * requests. Returns the share each got.
   */
  function simulate(policy: LbPolicy, latency: Record<string, number>, n: number, gapMs: number, seedMs?: Record<string, number>) {
    const f = fakes();
    const outliers = new OutlierDetector({ consecutiveFailures: 3, baseEjectMs: 10_000, maxEjectMs: 10_000, maxEjectPercent: 50 }, f.now);
    const load = new LoadTracker(undefined, f.now);
    let seed = 7;
    const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    const picker = new InstancePicker(outliers, policy, load, random);
    for (const [id, ms] of Object.entries(seedMs ?? {})) {
      load.started(k(ALL.find((i) => i.id === id)!));
      load.finished(k(ALL.find((i) => i.id === id)!), ms, false);
    }
    // In flight: [instance key, ends at].
    let pending: Array<[string, number]> = [];
    const got: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let r = 0; r < n; r++) {
      f.clock.t += gapMs;
      for (const [key] of pending.filter(([, at]) => at <= f.clock.t).sort((x, y) => x[1] - y[1])) picker.finished(key, latency[ALL.find((i) => k(i) === key)!.id]!, false);
      pending = pending.filter(([, at]) => at > f.clock.t);
      const i = picker.pick('svc', ALL, [])!;
      got[i.id]!++;
      picker.started(k(i));
      pending.push([k(i), f.clock.t + latency[i.id]!]);
    }
    return Object.fromEntries(Object.entries(got).map(([id, c]) => [id, c / n]));
  }

  // 50 req/s (20 ms apart) for 60 s; c answers in 300 ms, a and b in 4.
  const slowC = { a: 4, b: 4, c: 300 };
  const table: Array<{ policy: LbPolicy; latency: Record<string, number>; check: (share: Record<string, number>) => void; why: string }> = [
    { policy: 'round_robin', latency: slowC, check: (s) => assert.ok(Math.abs(s.c! - 1 / 3) < 0.01), why: 'round robin: a third to the slow one' },
    { policy: 'least_request', latency: slowC, check: (s) => assert.ok(s.c! > 0.02 && s.c! < 0.2), why: 'least request: the slow one still gets a request whenever it has none in flight' },
    { policy: 'peak_ewma', latency: slowC, check: (s) => assert.ok(s.c! < 0.01), why: 'peak EWMA: the slow one gets only probes' },
    { policy: 'peak_ewma', latency: { a: 4, b: 4, c: 4 }, check: (s) => Object.values(s).forEach((x) => assert.ok(Math.abs(x - 1 / 3) < 0.08)), why: 'peak EWMA, all alike: even shares' },
  ];
  for (const c of table)
    test(`${c.policy}: ${c.why}`, () => {
      const share = simulate(c.policy, c.latency, 3_000, 20);
      c.check(share);
    });

  test('peak EWMA: a new instance among known ones is not flooded (neutral start)', () => {
    // a and b known at 4 ms; c new: with a zero score it would take nearly every request at first.
    const share = simulate('peak_ewma', { a: 4, b: 4, c: 4 }, 30, 20, { a: 4, b: 4 });
    assert.ok(share.c! < 0.6, `new instance got ${share.c}`);
  });

  test('peak EWMA: a slow instance is probed again once its estimate decays, and regains its share when fast', () => {
    const f = fakes();
    const outliers = new OutlierDetector({ consecutiveFailures: 3, baseEjectMs: 10_000, maxEjectMs: 10_000, maxEjectPercent: 50 }, f.now);
    const load = new LoadTracker(undefined, f.now);
    const picker = new InstancePicker(outliers, 'peak_ewma', load, Math.random);
    for (const [i, ms] of [[A, 4], [B, 4], [C, 300]] as const) {
      load.started(k(i));
      load.finished(k(i), ms, false);
    }
    f.clock.t += 60_000; // 300·e^-6 ≈ 0.7 ms: below the others' decayed cost
    load.started(k(A));
    load.finished(k(A), 4, false);
    load.started(k(B));
    load.finished(k(B), 4, false);
    const picks = new Set(Array.from({ length: 20 }, () => picker.pick('svc', ALL, [])!.id));
    assert.ok(picks.has('c'), [...picks].join());
  });
});
