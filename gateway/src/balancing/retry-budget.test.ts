import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RetryBudget, type RetryBudgetOptions } from './retry-budget.js';

function setup(o: RetryBudgetOptions, start = 1_000_000) {
  const clock = { t: start };
  return { b: new RetryBudget(o, () => clock.t), clock };
}

const requests = (b: RetryBudget, n: number) => {
  for (let i = 0; i < n; i++) b.recordRequest();
};
/** How many of `n` retries the budget grants. */
const granted = (b: RetryBudget, n: number) => Array.from({ length: n }, () => b.tryRetry()).filter(Boolean).length;

describe('RetryBudget', () => {
  describe('floor: minPerSecond * windowS retries are always allowed', () => {
    const cases: Array<[RetryBudgetOptions, number]> = [
      [{ percent: 20, minPerSecond: 2, windowS: 5 }, 10],
      [{ percent: 0, minPerSecond: 1, windowS: 10 }, 10],
      [{ percent: 100, minPerSecond: 3, windowS: 1 }, 3],
      [{ percent: 50, minPerSecond: 0, windowS: 10 }, 0],
    ];
    for (const [o, floor] of cases) {
      test(`${JSON.stringify(o)} → ${floor} with no traffic`, () => {
        const { b } = setup(o);
        assert.equal(granted(b, floor + 5), floor);
      });
    }
  });

  describe('percent share of the requests in the window', () => {
    const cases: Array<[RetryBudgetOptions, number, number]> = [
      [{ percent: 20, minPerSecond: 0, windowS: 10 }, 100, 20],
      [{ percent: 50, minPerSecond: 0, windowS: 10 }, 10, 5],
      [{ percent: 20, minPerSecond: 0, windowS: 10 }, 7, 2], // 1.4 → 2 (allowed while retries < 1.4)
      [{ percent: 100, minPerSecond: 0, windowS: 10 }, 3, 3],
      [{ percent: 0, minPerSecond: 0, windowS: 10 }, 100, 0],
      // the larger of floor and share wins
      [{ percent: 10, minPerSecond: 1, windowS: 10 }, 50, 10], // share 5 < floor 10
      [{ percent: 10, minPerSecond: 1, windowS: 10 }, 500, 50], // share 50 > floor 10
    ];
    for (const [o, reqs, allowed] of cases) {
      test(`${JSON.stringify(o)}, ${reqs} requests → ${allowed}`, () => {
        const { b } = setup(o);
        requests(b, reqs);
        assert.equal(granted(b, allowed + 10), allowed);
      });
    }
  });

  test('requests recorded later refill the budget', () => {
    const { b } = setup({ percent: 50, minPerSecond: 0, windowS: 10 });
    requests(b, 2);
    assert.equal(granted(b, 5), 1);
    requests(b, 2);
    assert.equal(granted(b, 5), 1);
  });

  test('the window slides: buckets expire after windowS seconds', () => {
    const { b, clock } = setup({ percent: 50, minPerSecond: 0, windowS: 3 }, 0);
    requests(b, 10); // second 0
    assert.equal(granted(b, 10), 5);
    clock.t = 1_000; // second 1: still inside the window
    assert.equal(granted(b, 1), 0);
    requests(b, 4); // second 1: +4 requests → share 7, 5 used
    assert.equal(granted(b, 10), 2);
    clock.t = 2_999; // second 2: all of it still counts
    assert.equal(granted(b, 1), 0);
    clock.t = 3_000; // second 3: second 0 (10 requests, 5 retries) left the window
    // 4 requests → share 2; second 1's 2 retries remain → none left
    assert.equal(granted(b, 1), 0);
    requests(b, 4); // share (4+4)/2 = 4, used 2
    assert.equal(granted(b, 10), 2);
    clock.t = 4_000; // second 1 left: 4 requests, 2 retries (from second 3)
    assert.equal(granted(b, 1), 0);
    requests(b, 2); // share 3, used 2
    assert.equal(granted(b, 10), 1);
  });

  test('retries expire with their bucket, freeing the floor', () => {
    const { b, clock } = setup({ percent: 0, minPerSecond: 1, windowS: 2 }, 10_000);
    assert.equal(granted(b, 5), 2);
    clock.t += 1_000;
    assert.equal(granted(b, 5), 0);
    clock.t += 1_000; // the first second's retries left the window
    assert.equal(granted(b, 5), 2);
  });

  test('a long gap resets everything', () => {
    const { b, clock } = setup({ percent: 50, minPerSecond: 0, windowS: 5 });
    requests(b, 100);
    assert.equal(granted(b, 100), 50);
    clock.t += 60 * 60 * 1000;
    assert.equal(granted(b, 1), 0, 'old requests no longer count');
    requests(b, 4);
    assert.equal(granted(b, 10), 2, 'old retries no longer count');
  });

  test('a gap of exactly windowS seconds resets everything', () => {
    const { b, clock } = setup({ percent: 0, minPerSecond: 1, windowS: 3 }, 0);
    assert.equal(granted(b, 5), 3);
    clock.t = 3_000;
    assert.equal(granted(b, 5), 3);
  });

  test('within one second the count is stable', () => {
    const { b, clock } = setup({ percent: 0, minPerSecond: 2, windowS: 1 }, 5_000);
    assert.equal(granted(b, 1), 1);
    clock.t = 5_999;
    assert.equal(granted(b, 5), 1);
    clock.t = 6_000;
    assert.equal(granted(b, 5), 2);
  });

  test('a request counts in the second of the time it is recorded with (the exchange passes its start)', () => {
    const { b, clock } = setup({ percent: 50, minPerSecond: 0, windowS: 2 }, 10_000);
    for (let i = 0; i < 4; i++) b.recordRequest(9_500); // the second before now: still in the 2 s window
    assert.equal(granted(b, 5), 2);
    clock.t = 10_000;
    for (let i = 0; i < 4; i++) b.recordRequest(10_999);
    assert.equal(granted(b, 5), 2, '4 more requests in the current second: 8 in the window, 50 % of them, 2 already taken');
  });

  test('the default clock is monotonic (performance.now), so a wall-clock step cannot empty the window', () => {
    const b = new RetryBudget({ percent: 100, minPerSecond: 0, windowS: 60 });
    for (let i = 0; i < 3; i++) b.recordRequest();
    const realNow = Date.now;
    Date.now = () => realNow() + 3_600_000; // the wall clock jumps an hour ahead
    try {
      assert.equal(granted(b, 5), 3);
    } finally {
      Date.now = realNow;
    }
  });
});
