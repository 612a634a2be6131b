import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from './rate-limit.js';

test('TokenBucket: a burst goes out at once, then one per 1/rate', () => {
  let t = 0;
  const b = new TokenBucket(3, 10, () => t);
  assert.deepEqual([b.take(), b.take(), b.take()], [0, 0, 0]);
  assert.equal(b.take(), 100);
  t += 100; // the caller waited
  assert.equal(b.take(), 100);
});

test('TokenBucket: quiet time refills up to the burst only', () => {
  let t = 0;
  const b = new TokenBucket(2, 10, () => t);
  b.take();
  b.take();
  t += 60_000;
  assert.deepEqual([b.take(), b.take(), b.take()], [0, 0, 100]);
});
