import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Deadlines } from './deadlines.js';

/**
 * Real timers, short durations: what matters is order, that nothing fires
 * before its time, and what never fires. Times are measured, not assumed from
 * sleeps, so a loaded machine (the unit suites run in parallel) cannot fail it.
 */
function recorder() {
  const fired: Array<{ name: string; afterMs: number }> = [];
  /** An item to add right away: its time runs from its creation. */
  const item = (name: string) => {
    const setAt = performance.now();
    return { expire: () => fired.push({ name, afterMs: performance.now() - setAt }) };
  };
  const names = () => fired.map((f) => f.name);
  /** Until `name` has fired (2 s at most). */
  const until = async (name: string) => {
    for (const t0 = performance.now(); !names().includes(name) && performance.now() - t0 < 2_000; ) await sleep(5);
  };
  return { fired, item, names, until };
}

describe('Deadlines', () => {
  test('each deadline expires once, in the order set, no earlier than its duration', async () => {
    const list = new Deadlines(40);
    const r = recorder();
    list.add(r.item('a'));
    await sleep(10);
    list.add(r.item('b'));
    list.add(r.item('c'));
    await r.until('c');
    await sleep(20); // time for a second, wrong, expiry to show
    assert.deepEqual(r.names(), ['a', 'b', 'c']);
    for (const f of r.fired) assert.ok(f.afterMs >= 39, `${f.name} after ${f.afterMs} ms`);
    assert.equal(list.size, 0);
  });

  test('a cancelled deadline never expires; the others still do', async () => {
    const list = new Deadlines(20);
    const r = recorder();
    const a = list.add(r.item('a'));
    const b = list.add(r.item('b'));
    list.add(r.item('c'));
    b.cancel();
    b.cancel(); // twice is harmless
    a.cancel();
    assert.equal(list.size, 1);
    // a and b were due before c: once c fired, they would have too
    await r.until('c');
    assert.deepEqual(r.names(), ['c']);
  });

  test('the head cancelled with the timer armed for it: a later deadline still expires, on time', async () => {
    const list = new Deadlines(30);
    const r = recorder();
    list.add(r.item('first')).cancel();
    await sleep(20);
    // the timer armed for the cancelled head fires first and finds nothing due
    list.add(r.item('second'));
    await r.until('second');
    assert.deepEqual(r.names(), ['second']);
    assert.ok(r.fired[0]!.afterMs >= 29, `second after ${r.fired[0]!.afterMs} ms`);
  });

  test('deadlines set after the list emptied get a timer again', async () => {
    const list = new Deadlines(10);
    const r = recorder();
    list.add(r.item('one'));
    await r.until('one');
    assert.equal(list.size, 0);
    list.add(r.item('two'));
    await r.until('two');
    assert.deepEqual(r.names(), ['one', 'two']);
  });

  test('an expiry that cancels a later deadline (an abort that ends another attempt) is honoured', async () => {
    const list = new Deadlines(10);
    const r = recorder();
    let second: ReturnType<Deadlines['add']> | null = null;
    list.add({ expire: () => second?.cancel() });
    second = list.add(r.item('second'));
    list.add(r.item('third'));
    await r.until('third');
    assert.deepEqual(r.names(), ['third']);
  });

  test('clear() cancels everything: nothing fires, nothing holds the process', async () => {
    const list = new Deadlines(10);
    const r = recorder();
    list.add(r.item('a'));
    list.add(r.item('b'));
    list.clear();
    await sleep(30);
    assert.deepEqual(r.names(), []);
    assert.equal(list.size, 0);
  });
});
