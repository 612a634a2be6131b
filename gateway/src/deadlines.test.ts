import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Deadlines } from './deadlines.js';

/** Real timers, short durations: what matters is order, lateness and what never fires. */
function recorder() {
  const t0 = performance.now();
  const fired: Array<{ name: string; ms: number }> = [];
  const item = (name: string) => ({ expire: () => fired.push({ name, ms: performance.now() - t0 }) });
  return { fired, item, names: () => fired.map((f) => f.name) };
}

describe('Deadlines', () => {
  test('each deadline expires once, in the order set, no earlier than its duration', async () => {
    const list = new Deadlines(40);
    const r = recorder();
    list.add(r.item('a'));
    await sleep(10);
    list.add(r.item('b'));
    list.add(r.item('c'));
    await sleep(15);
    assert.deepEqual(r.names(), [], 'nothing before 40 ms');
    await sleep(60);
    assert.deepEqual(r.names(), ['a', 'b', 'c']);
    assert.ok(r.fired[0]!.ms >= 39, `a at ${r.fired[0]!.ms} ms`);
    assert.ok(r.fired[1]!.ms >= 49, `b at ${r.fired[1]!.ms} ms (set 10 ms after a)`);
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
    await sleep(50);
    assert.deepEqual(r.names(), ['c']);
  });

  test('the head cancelled with the timer armed for it: a later deadline still expires on time', async () => {
    const list = new Deadlines(30);
    const r = recorder();
    list.add(r.item('first')).cancel();
    await sleep(20);
    list.add(r.item('second'));
    await sleep(20);
    assert.deepEqual(r.names(), [], 'the timer armed for the cancelled head fired and found nothing due');
    await sleep(40);
    assert.deepEqual(r.names(), ['second']);
    assert.ok(r.fired[0]!.ms >= 49, `second at ${r.fired[0]!.ms} ms`);
  });

  test('deadlines set after the list emptied get a timer again', async () => {
    const list = new Deadlines(10);
    const r = recorder();
    list.add(r.item('one'));
    await sleep(30);
    list.add(r.item('two'));
    await sleep(30);
    assert.deepEqual(r.names(), ['one', 'two']);
  });

  test('an expiry that cancels a later deadline (an abort that ends another attempt) is honoured', async () => {
    const list = new Deadlines(10);
    const r = recorder();
    let second: ReturnType<Deadlines['add']> | null = null;
    list.add({ expire: () => second?.cancel() });
    second = list.add(r.item('second'));
    list.add(r.item('third'));
    await sleep(40);
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
