import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { durationMs, EmptyHold, holdMsFor, isSuspiciousEmpty, type CheckSchedule } from './empty-hold.js';

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

const durations: Array<[string | number | undefined, number]> = [
  ['10s', 10_000], ['1s', 1000], ['250ms', 250], ['1m30s', 90_000], ['1h', 3_600_000], ['1.5s', 1500],
  ['', 0], [undefined, 0], ['10', 0], ['abc', 0], ['5x', 0], [10_000_000_000, 10_000], [-1, 0],
];
for (const [v, ms] of durations) {
  test(`durationMs(${JSON.stringify(v)}) === ${ms}`, () => assert.equal(durationMs(v), ms));
}

const svc = (Interval?: string, Timeout?: string): CheckSchedule => ({ ServiceID: 'web-1', Interval, Timeout });
const holds: Array<[what: string, checks: CheckSchedule[], floor: number, expected: number]> = [
  ['Consul 1.8: no intervals reported → the floor', [{ ServiceID: 'web-1', Definition: {} }], 3000, 3000],
  ['registrator default 10 s check, 1 s timeout → 11 s', [svc('10s', '1s')], 3000, 11_000],
  ['1 s checks → the floor wins', [svc('1s', '1s')], 3000, 3000],
  ['longest check of the service wins', [svc('1s'), svc('30s', '5s'), svc('10s')], 3000, 35_000],
  ['interval only in Definition (catalog-registered)', [{ ServiceID: 'x', Definition: { Interval: '20s', Timeout: '2s' } }], 3000, 22_000],
  ['node checks do not count', [{ ServiceID: '', Interval: '5m' }], 3000, 3000],
  ['capped at 60 s', [svc('10m')], 3000, 60_000],
  ['a floor above the cap still wins', [svc('10m')], 90_000, 90_000],
  ['floor 0: holding is off', [svc('10s')], 0, 0],
];
for (const [what, checks, floor, expected] of holds) {
  test(`holdMsFor: ${what}`, () => assert.equal(holdMsFor(checks, floor), expected));
}

describe('EmptyHold', () => {
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test('applies the latest held value once the hold has lasted', async () => {
    const applied: number[] = [];
    const h = new EmptyHold<number>((v) => applied.push(v));
    assert.equal(h.hold(1, 20), true);
    assert.equal(h.hold(2, 20), false, 'a second answer does not restart the hold');
    assert.equal(h.holding, true);
    await wait(40);
    assert.deepEqual(applied, [2]);
    assert.equal(h.holding, false);
  });

  test('cancel drops the hold without applying it', async () => {
    const applied: number[] = [];
    const h = new EmptyHold<number>((v) => applied.push(v));
    assert.equal(h.cancel(), false);
    h.hold(1, 20);
    assert.equal(h.cancel(), true);
    await wait(40);
    assert.deepEqual(applied, []);
  });

  test('window: when the hold started and when it applies, only while holding', async () => {
    const h = new EmptyHold<number>(() => undefined);
    assert.equal(h.window, null);
    const t0 = Date.now();
    h.hold(1, 1_000);
    h.hold(2, 5_000); // does not restart the hold, so does not move its end
    const w = h.window!;
    assert.ok(w.since >= t0 && w.since <= Date.now());
    assert.equal(w.until - w.since, 1_000);
    h.cancel();
    assert.equal(h.window, null);
  });
});
