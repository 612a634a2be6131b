import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EmptyHold, isSuspiciousEmpty } from './suspicion.js';

const cases: Array<[known: number, next: number, expected: boolean]> = [
  [0, 0, false], // never had any: empty is believable
  [0, 3, false],
  [1, 0, true],
  [12, 0, true],
  [12, 1, false],
  [12, 12, false],
  [3, 20, false],
];

for (const [known, next, expected] of cases) {
  test(`isSuspiciousEmpty(${known}, ${next}) === ${expected}`, () => {
    assert.equal(isSuspiciousEmpty(known, next), expected);
  });
}

describe('EmptyHold', () => {
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test('applies the latest held value once the hold has lasted', async () => {
    const applied: number[] = [];
    const h = new EmptyHold<number>(20, (v) => applied.push(v));
    assert.equal(h.hold(1), true);
    assert.equal(h.hold(2), false, 'a second answer does not restart the hold');
    assert.equal(h.holding, true);
    await wait(40);
    assert.deepEqual(applied, [2]);
    assert.equal(h.holding, false);
  });

  test('cancel drops the hold without applying it', async () => {
    const applied: number[] = [];
    const h = new EmptyHold<number>(20, (v) => applied.push(v));
    assert.equal(h.cancel(), false);
    h.hold(1);
    assert.equal(h.cancel(), true);
    await wait(40);
    assert.deepEqual(applied, []);
  });
});
