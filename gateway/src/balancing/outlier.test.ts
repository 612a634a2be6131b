import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OutlierDetector, type OutlierOptions } from './outlier.js';

const opts: OutlierOptions = { consecutiveFailures: 3, baseEjectMs: 1_000, maxEjectMs: 5_000, maxEjectPercent: 50 };

function setup(over: Partial<OutlierOptions> = {}) {
  const clock = { t: 1_000_000 };
  const d = new OutlierDetector({ ...opts, ...over }, () => clock.t);
  return { d, clock };
}

const POOL = ['a', 'b', 'c', 'd'];

/** Fails `key` n times; returns what each failure returned. */
const fail = (d: OutlierDetector, key: string, n: number, pool: readonly string[] = POOL) =>
  Array.from({ length: n }, () => d.failure(key, pool));

describe('OutlierDetector', () => {
  test('unknown hosts are not ejected', () => {
    const { d } = setup();
    assert.equal(d.isEjected('a'), false);
    assert.equal(d.ejectedUntil('a'), null);
  });

  test('ejects after N consecutive failures, for the base time', () => {
    const { d, clock } = setup();
    assert.deepEqual(fail(d, 'a', 3), [null, null, 1_000]);
    assert.equal(d.isEjected('a'), true);
    assert.equal(d.ejectedUntil('a'), clock.t + 1_000);
    assert.equal(d.isEjected('b'), false);
  });

  test('a threshold of 1 ejects on the first failure', () => {
    const { d } = setup({ consecutiveFailures: 1 });
    assert.equal(d.failure('a', POOL), 1_000);
  });

  test('a success resets the count', () => {
    const { d } = setup();
    fail(d, 'a', 2);
    d.success('a');
    assert.deepEqual(fail(d, 'a', 2), [null, null]);
    assert.equal(d.isEjected('a'), false);
    assert.equal(d.failure('a', POOL), 1_000);
  });

  test('success on an unknown host is harmless', () => {
    const { d } = setup();
    d.success('zzz');
    assert.equal(d.isEjected('zzz'), false);
  });

  test('failures while ejected do not extend the ejection', () => {
    const { d, clock } = setup();
    fail(d, 'a', 3);
    const until = d.ejectedUntil('a');
    clock.t += 500;
    assert.deepEqual(fail(d, 'a', 5), [null, null, null, null, null]);
    assert.equal(d.ejectedUntil('a'), until);
  });

  test('readmitted once the ejection expires', () => {
    const { d, clock } = setup();
    fail(d, 'a', 3);
    clock.t += 999;
    assert.equal(d.isEjected('a'), true);
    clock.t += 1;
    assert.equal(d.isEjected('a'), false);
    assert.equal(d.ejectedUntil('a'), null);
  });

  test('repeat ejections double, up to the max', () => {
    const { d, clock } = setup();
    const times: Array<number | null> = [];
    for (let i = 0; i < 6; i++) {
      const r = fail(d, 'a', 3);
      assert.deepEqual(r.slice(0, 2), [null, null], `round ${i}`);
      times.push(r[2]!);
      clock.t = d.ejectedUntil('a')!; // just expired
      assert.equal(d.isEjected('a'), false);
    }
    assert.deepEqual(times, [1_000, 2_000, 4_000, 5_000, 5_000, 5_000]);
  });

  test('a success right after readmission keeps the doubling', () => {
    const { d, clock } = setup();
    fail(d, 'a', 3);
    clock.t += 1_000;
    d.success('a');
    assert.deepEqual(fail(d, 'a', 3), [null, null, 2_000]);
  });

  test('a host healthy for more than twice the max starts over at the base time', () => {
    const { d, clock } = setup();
    fail(d, 'a', 3);
    clock.t += 1_000;
    fail(d, 'a', 3); // 2000
    clock.t += 2 * opts.maxEjectMs + 1;
    d.success('a');
    assert.deepEqual(fail(d, 'a', 3), [null, null, 1_000]);
  });

  describe('max eject percent', () => {
    test('a pool of 1 is never ejected (50%)', () => {
      const { d } = setup();
      assert.deepEqual(fail(d, 'a', 10, ['a']), Array(10).fill(null));
      assert.equal(d.isEjected('a'), false);
    });

    test('a pool of 2 at 50% ejects at most one', () => {
      const { d } = setup();
      const pool = ['a', 'b'];
      assert.equal(fail(d, 'a', 3, pool)[2], 1_000);
      assert.deepEqual(fail(d, 'b', 6, pool), Array(6).fill(null));
      assert.equal(d.isEjected('a'), true);
      assert.equal(d.isEjected('b'), false);
    });

    test('once the ejected one is readmitted, the other may be ejected', () => {
      const { d, clock } = setup();
      const pool = ['a', 'b'];
      fail(d, 'a', 3, pool);
      fail(d, 'b', 2, pool);
      clock.t += 1_000;
      // b has kept counting: its next failure ejects it
      assert.equal(d.failure('b', pool), 1_000);
      assert.equal(d.isEjected('b'), true);
      assert.equal(d.isEjected('a'), false);
    });

    test('a pool of 4 at 50% ejects at most two', () => {
      const { d } = setup();
      assert.equal(fail(d, 'a', 3)[2], 1_000);
      assert.equal(fail(d, 'b', 3)[2], 1_000);
      assert.deepEqual(fail(d, 'c', 3), [null, null, null]);
      assert.deepEqual(
        POOL.map((k) => d.isEjected(k)),
        [true, true, false, false],
      );
    });

    test('0% never ejects; 100% may eject a pool of 1', () => {
      assert.deepEqual(fail(setup({ maxEjectPercent: 0 }).d, 'a', 5), Array(5).fill(null));
      assert.equal(fail(setup({ maxEjectPercent: 100 }).d, 'a', 3, ['a'])[2], 1_000);
    });

    test('hosts ejected in another pool do not count', () => {
      const { d } = setup();
      fail(d, 'x', 3, ['x', 'y']);
      assert.equal(d.isEjected('x'), true);
      assert.equal(fail(d, 'a', 3, ['a', 'b'])[2], 1_000);
    });
  });

  test('retain forgets hosts that left', () => {
    const { d } = setup();
    fail(d, 'a', 3);
    fail(d, 'b', 2);
    d.retain(new Set(['b', 'c']));
    assert.equal(d.isEjected('a'), false);
    assert.equal(d.ejectedUntil('a'), null);
    // b's count survived
    assert.equal(d.failure('b', POOL), 1_000);
    // a starts from scratch: three failures and the base time again
    assert.deepEqual(fail(d, 'a', 3), [null, null, 1_000]);
  });

  test('retain with every key keeps state', () => {
    const { d } = setup();
    fail(d, 'a', 3);
    d.retain(new Set(POOL));
    assert.equal(d.isEjected('a'), true);
  });

  test('ejectedUntil is the absolute expiry time in ms', () => {
    const { d, clock } = setup();
    clock.t = 50_000;
    fail(d, 'a', 3);
    assert.equal(d.ejectedUntil('a'), 51_000);
    clock.t = 50_999;
    assert.equal(d.ejectedUntil('a'), 51_000);
    clock.t = 51_000;
    assert.equal(d.ejectedUntil('a'), null);
  });

  test('ejection: when, until when, and the run of failures (by kind) that caused it', () => {
    const { d, clock } = setup();
    assert.equal(d.ejection('a'), null);
    d.failure('a', POOL, 'reset');
    d.success('a'); // ends the run: its kinds are not the ejection's
    d.failure('a', POOL, 'connect');
    d.failure('a', POOL, 'connect');
    assert.equal(d.ejection('a'), null, 'not ejected yet');
    d.failure('a', POOL, 'timeout');
    assert.deepEqual(d.ejection('a'), { since: clock.t, until: clock.t + 1_000, failures: 3, kinds: { connect: 2, timeout: 1 }, ejections: 1 });
    clock.t += 1_000;
    assert.equal(d.ejection('a'), null, 'over once the time is up');
  });

  test('ejection: a second ejection reports its own run, not the first one', () => {
    const { d, clock } = setup();
    fail(d, 'a', 3);
    clock.t += 1_000;
    for (let i = 0; i < 3; i++) d.failure('a', POOL, 'reset');
    assert.deepEqual(d.ejection('a'), { since: clock.t, until: clock.t + 2_000, failures: 3, kinds: { reset: 3 }, ejections: 2 });
  });
});
