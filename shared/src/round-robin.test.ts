import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RoundRobin } from './round-robin.js';

const picks = <T>(rr: RoundRobin, key: string, items: readonly T[], n: number, skip?: (x: T) => boolean) =>
  Array.from({ length: n }, () => rr.pick(key, items, skip));

describe('RoundRobin', () => {
  test('empty list → undefined', () => {
    assert.equal(new RoundRobin().pick('k', []), undefined);
  });

  test('single item is always picked', () => {
    assert.deepEqual(picks(new RoundRobin(), 'k', ['a'], 3), ['a', 'a', 'a']);
  });

  test('rotates over the items, starting with the first', () => {
    assert.deepEqual(picks(new RoundRobin(), 'k', ['a', 'b', 'c'], 7), ['a', 'b', 'c', 'a', 'b', 'c', 'a']);
  });

  const skipCases: Array<[string, string[], (x: string) => boolean, Array<string | undefined>]> = [
    ['skips a rejected item', ['a', 'b', 'c'], (x) => x === 'b', ['a', 'c', 'a', 'c']],
    ['skips several', ['a', 'b', 'c', 'd'], (x) => x !== 'c', ['c', 'c', 'c']],
    ['all skipped → undefined', ['a', 'b'], () => true, [undefined, undefined]],
    ['skip none', ['a', 'b'], () => false, ['a', 'b', 'a']],
  ];
  for (const [name, items, skip, expected] of skipCases) {
    test(name, () => {
      assert.deepEqual(picks(new RoundRobin(), 'k', items, expected.length, skip), expected);
    });
  }

  test('all skipped does not move the counter', () => {
    const rr = new RoundRobin();
    assert.equal(rr.pick('k', ['a', 'b', 'c']), 'a');
    assert.equal(rr.pick('k', ['a', 'b', 'c'], () => true), undefined);
    assert.equal(rr.pick('k', ['a', 'b', 'c']), 'b');
  });

  test('the skip function sees only candidates until one is accepted', () => {
    const rr = new RoundRobin();
    const seen: string[] = [];
    rr.pick('k', ['a', 'b', 'c'], (x) => {
      seen.push(x);
      return x === 'a';
    });
    assert.deepEqual(seen, ['a', 'b']);
  });

  test('keeps one counter per key', () => {
    const rr = new RoundRobin();
    const items = ['a', 'b', 'c'];
    assert.equal(rr.pick('x', items), 'a');
    assert.equal(rr.pick('x', items), 'b');
    assert.equal(rr.pick('y', items), 'a');
    assert.equal(rr.pick('x', items), 'c');
    assert.equal(rr.pick('y', items), 'b');
  });

  test('forget resets a key only', () => {
    const rr = new RoundRobin();
    rr.pick('x', ['a', 'b']);
    rr.pick('y', ['a', 'b']);
    rr.forget('x');
    assert.equal(rr.pick('x', ['a', 'b']), 'a');
    assert.equal(rr.pick('y', ['a', 'b']), 'b');
  });

  test('a list changing size between calls stays in range', () => {
    const rr = new RoundRobin();
    const sizes = [5, 5, 5, 5, 2, 1, 3, 7, 7, 7, 7, 7, 7, 1, 4, 0, 4, 6];
    for (const n of sizes) {
      const items = Array.from({ length: n }, (_, i) => i);
      const got = rr.pick('k', items);
      if (n === 0) assert.equal(got, undefined);
      else assert.ok(got !== undefined && got >= 0 && got < n, `size ${n} picked ${got}`);
    }
  });

  test('a shrunk list is still rotated fairly', () => {
    const rr = new RoundRobin();
    picks(rr, 'k', ['a', 'b', 'c', 'd', 'e'], 4); // next index is 4
    const after = picks(rr, 'k', ['a', 'b'], 4);
    assert.equal(new Set(after).size, 2);
    assert.deepEqual(after.filter((x) => x === 'a').length, 2);
  });
});
