import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance } from '@stack/shared';
import { OutlierDetector } from './outlier.js';
import { InstancePicker } from './instance-picker.js';

const inst = (id: string, port: number): Instance => ({
  id,
  service: 'svc',
  address: '10.0.0.1',
  port,
  node: 'n1',
  tags: [],
  key: `n1/${id}`,
});
const A = inst('a', 1);
const B = inst('b', 2);
const C = inst('c', 3);
const ALL = [A, B, C];

function setup() {
  const clock = { t: 1_000 };
  const outliers = new OutlierDetector(
    { consecutiveFailures: 1, baseEjectMs: 10_000, maxEjectMs: 10_000, maxEjectPercent: 100 },
    () => clock.t,
  );
  const eject = (...xs: Instance[]) => {
    for (const x of xs) assert.ok(outliers.failure(x.key, ALL.map((i) => i.key)), `ejected ${x.id}`);
  };
  return { picker: new InstancePicker(outliers), outliers, eject, clock };
}

const keys = (...xs: Instance[]) => xs.map((i) => i.key);
const ids = (xs: Array<Instance | undefined>) => xs.map((x) => x?.id);

describe('InstancePicker', () => {
  test('round robin over the instances', () => {
    const { picker } = setup();
    assert.deepEqual(ids([1, 2, 3, 4].map(() => picker.pick('svc', ALL, []))), ['a', 'b', 'c', 'a']);
  });

  test('no instances → undefined', () => {
    assert.equal(setup().picker.pick('svc', [], []), undefined);
  });

  const cases: Array<[string, Instance[], Instance[], string[] | undefined]> = [
    // [name, tried, ejected, possible picks]
    ['skips tried instances', [A], [], ['b', 'c']],
    ['skips ejected instances', [], [B, C], ['a']],
    ['skips both tried and ejected', [A], [B], ['c']],
    ['all untried ejected → still an untried one', [A], [B, C], ['b', 'c']],
    ['every instance ejected, none tried → one of them', [], [A, B, C], ['a', 'b', 'c']],
    ['all tried → undefined', [A, B, C], [], undefined],
    ['all tried, some ejected → undefined', [A, B, C], [B], undefined],
  ];
  for (const [name, tried, ejected, possible] of cases) {
    test(name, () => {
      const { picker, eject } = setup();
      eject(...ejected);
      for (let i = 0; i < 6; i++) {
        const got = picker.pick('svc', ALL, keys(...tried));
        if (possible === undefined) assert.equal(got, undefined);
        else assert.ok(got && possible.includes(got.id), `pick ${i}: ${got?.id} not in ${possible}`);
      }
    });
  }

  test('a request retrying walks every instance once, then runs out', () => {
    const { picker } = setup();
    const tried: string[] = [];
    const seen: Array<string | undefined> = [];
    for (let i = 0; i < 4; i++) {
      const got = picker.pick('svc', ALL, tried);
      seen.push(got?.id);
      if (got) tried.push(got.key);
    }
    assert.deepEqual(seen.slice(0, 3).sort(), ['a', 'b', 'c']);
    assert.equal(seen[3], undefined);
  });

  test('ejected instances come back once readmitted', () => {
    const { picker, eject, clock } = setup();
    eject(B);
    const during = ids([1, 2, 3, 4].map(() => picker.pick('svc', ALL, [])));
    assert.ok(!during.includes('b'));
    clock.t += 10_000;
    const after = ids([1, 2, 3].map(() => picker.pick('svc', ALL, [])));
    assert.deepEqual([...after].sort(), ['a', 'b', 'c']);
  });

  test('round robin state is per service', () => {
    const { picker } = setup();
    assert.equal(picker.pick('x', ALL, [])?.id, 'a');
    assert.equal(picker.pick('x', ALL, [])?.id, 'b');
    assert.equal(picker.pick('y', ALL, [])?.id, 'a');
  });
});

describe('InstancePicker: a retry looks on another Consul node first', () => {
  const on = (id: string, port: number, node: string): Instance => ({ ...inst(id, port), node });
  // n1: a1 a2 a3, n2: b1, n3: c1 — in round-robin order
  const A1 = on('a1', 1, 'n1');
  const A2 = on('a2', 2, 'n1');
  const A3 = on('a3', 3, 'n1');
  const B1 = on('b1', 4, 'n2');
  const C1 = on('c1', 5, 'n3');
  const NODES = [A1, A2, A3, B1, C1];
  const nodes = (...xs: Instance[]) => [...new Set(xs.map((x) => x.node))];
  const cases: Array<[string, Instance[], Instance[], string[] | undefined]> = [
    // [name, tried (all failed), ejected, possible picks]
    ['a failure on n1 → an instance on n2 or n3', [A1], [], ['b1', 'c1']],
    ['failures on n1 and n2 → n3', [A1, B1], [], ['c1']],
    ['every node failed → any untried instance', [A1, B1, C1], [], ['a2', 'a3']],
    ['the other nodes\' instances ejected → an untried one on the failed node, not an ejected one', [A1], [B1, C1], ['a2', 'a3']],
    ['everything else ejected or tried → an ejected untried one rather than nothing', [A1, A2, A3], [B1, C1], ['b1', 'c1']],
  ];
  for (const [name, tried, ejected, possible] of cases) {
    test(name, () => {
      const clock = { t: 1_000 };
      const outliers = new OutlierDetector({ consecutiveFailures: 1, baseEjectMs: 10_000, maxEjectMs: 10_000, maxEjectPercent: 100 }, () => clock.t);
      for (const x of ejected) assert.ok(outliers.failure(x.key, NODES.map((i) => i.key)));
      const picker = new InstancePicker(outliers);
      for (let i = 0; i < 6; i++) {
        const got = picker.pick('svc', NODES, keys(...tried), nodes(...tried));
        assert.ok(got && possible?.includes(got.id), `pick ${i}: ${got?.id} not in ${possible}`);
      }
    });
  }

  test('no failure yet: plain round robin, nodes play no part', () => {
    const picker = new InstancePicker(new OutlierDetector({ consecutiveFailures: 3, baseEjectMs: 1, maxEjectMs: 1, maxEjectPercent: 50 }));
    assert.deepEqual(ids(NODES.map(() => picker.pick('svc', NODES, []))), ['a1', 'a2', 'a3', 'b1', 'c1']);
  });
});
