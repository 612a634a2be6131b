import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSuspiciousEmpty } from './suspicion.js';

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
