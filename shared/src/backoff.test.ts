import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from './backoff.js';

const fixed = (r: number) => () => r;

describe('backoffDelay', () => {
  // [attempt, base, max, random, expected]
  const cases: Array<[number, number, number, number, number]> = [
    // attempt 0: cap = base, range [base/2, base]
    [0, 200, 5000, 0, 100],
    [0, 200, 5000, 0.5, 150],
    [0, 200, 5000, 1, 200],
    // exponential growth of the cap
    [1, 200, 5000, 1, 400],
    [2, 200, 5000, 1, 800],
    [3, 200, 5000, 1, 1600],
    [4, 200, 5000, 1, 3200],
    [3, 200, 5000, 0.5, 850], // 100 + 0.5 * 1500
    // capped at max
    [5, 200, 5000, 1, 5000],
    [10, 200, 5000, 1, 5000],
    [10, 200, 5000, 0.5, 2550], // 100 + 0.5 * 4900
    [1000, 200, 5000, 1, 5000],
    [5000, 200, 5000, 1, 5000], // 2 ** 5000 is Infinity
    // floor: never below base/2
    [0, 200, 5000, 0, 100],
    [7, 200, 5000, 0, 100],
    [1000, 200, 5000, 0, 100],
    // max below base/2: the cap wins, no jitter
    [0, 200, 50, 0, 50],
    [0, 200, 50, 1, 50],
    [6, 200, 50, 0.5, 50],
    // negative attempts behave like 0
    [-3, 200, 5000, 1, 200],
    [-3, 200, 5000, 0, 100],
    // rounded to whole ms
    [0, 3, 100, 0, 2], // 1.5
  ];
  for (const [attempt, base, max, r, expected] of cases) {
    test(`attempt=${attempt} base=${base} max=${max} random=${r} → ${expected}`, () => {
      assert.equal(backoffDelay(attempt, base, max, fixed(r)), expected);
    });
  }

  test('never decreases with the attempt for a fixed random, and stays within [base/2, max]', () => {
    for (const r of [0, 0.25, 0.5, 0.75, 1]) {
      let prev = -Infinity;
      for (let attempt = 0; attempt < 40; attempt++) {
        const d = backoffDelay(attempt, 200, 5000, fixed(r));
        assert.ok(d >= prev, `attempt ${attempt} r=${r}: ${d} < ${prev}`);
        assert.ok(d >= 100 && d <= 5000, `attempt ${attempt} r=${r}: ${d}`);
        prev = d;
      }
    }
  });

  test('uses Math.random by default and stays in range', () => {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(3, 200, 5000);
      assert.ok(d >= 100 && d <= 1600, String(d));
      assert.ok(Number.isInteger(d));
    }
  });
});
