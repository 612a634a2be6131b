import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DivergenceTracker, percentileOf, seededRandom, type Observation } from './divergence.js';

// The checker's bookkeeping is pure: fed scripted observations here, the live
// stack in test/e2e/consistency.test.ts.
const s = (...ids: string[]) => new Set(ids);
const obs = (at: number, consul: Set<string> | null, gateway: Set<string> | null, excuse?: Observation['excuse']): Observation => ({ at, consul, gateway, excuse });

describe('DivergenceTracker', () => {
  test('equal sets all along: no divergence', () => {
    const t = new DivergenceTracker(2000);
    for (let at = 0; at < 2000; at += 200) t.observe(obs(at, s('a', 'b'), s('b', 'a')));
    const r = t.summary(2000);
    assert.equal(r.divergences, 0);
    assert.equal(r.compared, 10);
    assert.equal(r.worstMs, 0);
    assert.deepEqual(r.violations, []);
  });

  test('a divergence is timed from its first differing observation to the first equal one', () => {
    const t = new DivergenceTracker(2000);
    t.observe(obs(0, s('a'), s('a')));
    t.observe(obs(200, s('a', 'b'), s('a')));
    t.observe(obs(400, s('a', 'b'), s('a')));
    t.observe(obs(600, s('a', 'b'), s('a', 'b')));
    const r = t.summary(600);
    assert.equal(r.divergences, 1);
    assert.equal(r.worstMs, 400);
    assert.equal(r.worstUnexcusedMs, 400);
    assert.deepEqual(t.closed[0]!.missing, ['b']);
    assert.deepEqual(t.closed[0]!.extra, []);
    assert.equal(r.violations.length, 0);
  });

  test('a table that never catches up (the issue 21 miss) is a violation once the bound passes, open or closed', () => {
    const t = new DivergenceTracker(2000);
    t.observe(obs(0, s('a', 'b'), s('a', 'b')));
    for (let at = 200; at <= 40_000; at += 200) t.observe(obs(at, s('a', 'b', 'c'), s('a', 'b')));
    const open = t.summary(40_000);
    assert.equal(open.open, 1);
    assert.equal(open.violations.length, 1);
    assert.deepEqual(open.violations[0]!.missing, ['c']);
    assert.equal(open.worstUnexcusedMs, 39_800);
    // Closed late is still a violation.
    t.observe(obs(40_200, s('a', 'b', 'c'), s('a', 'b', 'c')));
    assert.equal(t.summary(40_200).violations.length, 1);
  });

  test('a declared hold stops the clock until its end; convergence must follow within the bound', () => {
    const t = new DivergenceTracker(2000);
    // Consul suddenly reports nothing; the gateway declares a hold until 3000.
    t.observe(obs(0, s(), s('a'), { kind: 'hold', until: 3000 }));
    t.observe(obs(1000, s(), s('a'), { kind: 'hold', until: 3000 }));
    t.observe(obs(3200, s(), s('a')));
    t.observe(obs(3400, s(), s()));
    const ok = t.summary(3400);
    assert.equal(ok.worstMs, 3400);
    assert.equal(ok.worstUnexcusedMs, 400);
    assert.equal(ok.excused, 1);
    assert.equal(ok.violations.length, 0);
    // The same hold, but the gateway keeps the instances long after it ended.
    const late = new DivergenceTracker(2000);
    late.observe(obs(0, s(), s('a'), { kind: 'hold', until: 3000 }));
    late.observe(obs(5200, s(), s('a')));
    assert.equal(late.summary(5200).violations.length, 1);
  });

  test('an unexcused divergence after an excused stretch in the same episode is bounded from the excuse\'s end', () => {
    const t = new DivergenceTracker(2000);
    t.observe(obs(0, s(), s('a'), { kind: 'agent-lost', until: 0 }));
    t.observe(obs(500, s(), s('a'), { kind: 'agent-lost', until: 500 }));
    t.observe(obs(700, s('b'), s('a')));
    t.observe(obs(2400, s('b'), s('a')));
    t.observe(obs(2600, s('b'), s('b')));
    const r = t.summary(2600);
    assert.equal(r.worstUnexcusedMs, 2100);
    assert.equal(r.violations.length, 1);
    assert.deepEqual(r.violations[0]!.kinds, { 'agent-lost': 2, none: 2 });
  });

  test('observations where one side did not answer stop the clock and are counted as unobserved time', () => {
    const t = new DivergenceTracker(2000);
    t.observe(obs(0, s('a', 'b'), s('a')));
    t.observe(obs(200, null, s('a')));
    t.observe(obs(5000, null, s('a')));
    t.observe(obs(5200, s('a', 'b'), s('a')));
    t.observe(obs(5400, s('a', 'b'), s('a', 'b')));
    const r = t.summary(5400);
    assert.equal(r.unobservedMs, 5000);
    assert.equal(r.compared, 3);
    assert.equal(r.worstMs, 5400);
    assert.equal(r.worstUnexcusedMs, 400);
    assert.equal(r.violations.length, 0);
  });

  test('p99 is the nearest rank', () => {
    assert.equal(percentileOf([], 99), 0);
    assert.equal(percentileOf([5], 99), 5);
    const xs = Array.from({ length: 200 }, (_, i) => i + 1);
    assert.equal(percentileOf(xs, 99), 198);
    assert.equal(percentileOf(xs, 50), 100);
  });
});

describe('seededRandom', () => {
  test('one seed, one sequence; another seed, another', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const c = seededRandom(43);
    const xa = Array.from({ length: 5 }, a);
    assert.deepEqual(xa, Array.from({ length: 5 }, b));
    assert.notDeepEqual(xa, Array.from({ length: 5 }, c));
    for (const x of xa) assert.ok(x >= 0 && x < 1);
  });
});
