import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffChecks, mergeNotPassing, snapshotChecks, type CheckEntry } from './check-diff.js';

const svc = (node: string, id: string, service: string, Status: string, ModifyIndex: number): CheckEntry => ({
  Node: node, CheckID: `service:${id}`, ServiceID: id, ServiceName: service, Status, ModifyIndex,
});
const serf = (node: string, Status: string, ModifyIndex: number): CheckEntry => ({ Node: node, CheckID: 'serfHealth', ServiceID: '', ServiceName: '', Status, ModifyIndex });

const base = [serf('n1', 'passing', 5), svc('n1', 'web-1', 'Web', 'passing', 10), svc('n1', 'web-2', 'Web', 'passing', 11), svc('n2', 'api-1', 'api', 'passing', 12)];

const cases: Array<[what: string, next: CheckEntry[], services: Record<string, bigint>, nodes: string[]]> = [
  ['nothing changed (a blocking query timing out)', base, {}, []],
  ['same checks in another order', [...base].reverse(), {}, []],
  ['a check turned critical', [base[0]!, svc('n1', 'web-1', 'Web', 'critical', 20), base[2]!, base[3]!], { web: 20n }, []],
  ['only the ModifyIndex moved (output or definition changed)', [base[0]!, base[1]!, svc('n1', 'web-2', 'Web', 'passing', 21), base[3]!], { web: 21n }, []],
  ['a new instance with its check', [...base, svc('n2', 'api-2', 'api', 'passing', 22)], { api: 22n }, []],
  ['an instance deregistered: its check is gone', [base[0]!, base[1]!, base[3]!], { web: 0n }, []],
  ['two services changed', [base[0]!, svc('n1', 'web-1', 'Web', 'critical', 23), base[2]!, svc('n2', 'api-1', 'api', 'warning', 24)], { web: 23n, api: 24n }, []],
  ['a node check failed: every service on the node', [serf('n1', 'critical', 25), ...base.slice(1)], {}, ['n1']],
  ['a node deregistered: its checks are gone', [base[3]!], { web: 0n }, ['n1']],
  ['highest ModifyIndex of a service wins', [base[0]!, svc('n1', 'web-1', 'Web', 'critical', 26), svc('n1', 'web-2', 'Web', 'critical', 27), base[3]!], { web: 27n }, []],
];

for (const [what, next, services, nodes] of cases) {
  test(`diffChecks: ${what}`, () => {
    const d = diffChecks(snapshotChecks(base), snapshotChecks(next));
    assert.deepEqual(Object.fromEntries(d.services), services);
    assert.deepEqual([...d.nodes].sort(), nodes);
  });
}

test('diffChecks: from nothing, every service and node is new', () => {
  const d = diffChecks(new Map(), snapshotChecks(base));
  assert.deepEqual([...d.services.keys()].sort(), ['api', 'web']);
  assert.deepEqual([...d.nodes], ['n1']);
});

test('snapshotChecks: entries without node or id are ignored', () => {
  assert.equal(snapshotChecks([{ CheckID: 'x' }, { Node: 'n' }, null as unknown as CheckEntry]).size, 0);
});

const notPassingCases: Array<[what: string, listed: CheckEntry[], services: Record<string, bigint>, nodes: string[], statusAfter: Record<string, string>]> = [
  ['all passing, still all passing', [], {}, [], { 'n1\u0000service:web-1': 'passing' }],
  ['one fails', [svc('n1', 'web-1', 'Web', 'critical', 40)], { web: 40n }, [], { 'n1\u0000service:web-1': 'critical' }],
  ['node check fails', [serf('n1', 'critical', 41)], {}, ['n1'], { 'n1\u0000serfHealth': 'critical' }],
  ['a new instance starts critical (a registrator HTTP check)', [svc('n2', 'api-9', 'api', 'critical', 42)], { api: 42n }, [], { 'n2\u0000service:api-9': 'critical' }],
];
for (const [what, listed, services, nodes, statusAfter] of notPassingCases) {
  test(`mergeNotPassing: ${what}`, () => {
    const { next, changes } = mergeNotPassing(snapshotChecks(base), snapshotChecks(listed));
    assert.deepEqual(Object.fromEntries(changes.services), services);
    assert.deepEqual([...changes.nodes], nodes);
    for (const [key, status] of Object.entries(statusAfter)) assert.equal(next.get(key)?.status, status);
  });
}

test('mergeNotPassing: a failing check no longer listed turned passing (or went): its service changed', () => {
  const failing = [base[0]!, svc('n1', 'web-1', 'Web', 'critical', 40), base[2]!, base[3]!];
  const { next, changes } = mergeNotPassing(snapshotChecks(failing), new Map());
  assert.deepEqual(Object.fromEntries(changes.services), { web: 0n });
  assert.equal(next.get('n1\u0000service:web-1')?.status, 'passing');
  // The next full read sees an unknown ModifyIndex and reads web once more.
  const full = diffChecks(next, snapshotChecks([base[0]!, svc('n1', 'web-1', 'Web', 'passing', 55), base[2]!, base[3]!]));
  assert.deepEqual(Object.fromEntries(full.services), { web: 55n });
});

test('mergeNotPassing: a check still failing, unchanged: nothing to read', () => {
  const failing = [base[0]!, svc('n1', 'web-1', 'Web', 'critical', 40), base[2]!, base[3]!];
  const { changes } = mergeNotPassing(snapshotChecks(failing), snapshotChecks([svc('n1', 'web-1', 'Web', 'critical', 40)]));
  assert.equal(changes.services.size, 0);
  assert.equal(changes.nodes.size, 0);
});

test('diffChecks: a removal makes its service unsure, whatever else changed with a known index', () => {
  // web-1 deregistered while web-2's check changed at 31: a read at 31 or later
  // may predate the removal, so web must be read regardless.
  const d = diffChecks(snapshotChecks(base), snapshotChecks([base[0]!, svc('n1', 'web-2', 'Web', 'passing', 31), base[3]!]));
  assert.deepEqual(Object.fromEntries(d.services), { web: 31n });
  assert.deepEqual([...d.unsure], ['web']);
});

test('diffChecks: changes with known indexes only: not unsure', () => {
  const d = diffChecks(snapshotChecks(base), snapshotChecks([base[0]!, svc('n1', 'web-1', 'Web', 'critical', 20), base[2]!, base[3]!]));
  assert.equal(d.unsure.size, 0);
});

test('mergeNotPassing: a check seen passing again makes its service unsure', () => {
  const failing = [base[0]!, svc('n1', 'web-1', 'Web', 'critical', 40), base[2]!, base[3]!];
  const { changes } = mergeNotPassing(snapshotChecks(failing), new Map());
  assert.deepEqual([...changes.unsure], ['web']);
});

test('mergeNotPassing: a check named in the answer and passing again changes at its own index, not unsure', () => {
  const failing = [base[0]!, svc('n1', 'web-1', 'Web', 'critical', 40), base[2]!, base[3]!];
  const named = snapshotChecks([svc('n1', 'web-1', 'Web', 'passing', 57)]);
  const { next, changes } = mergeNotPassing(snapshotChecks(failing), new Map(), named);
  assert.deepEqual([...changes.services], [['web', 57n]]);
  assert.equal(changes.unsure.size, 0);
  assert.equal(next.get('n1\u0000service:web-1')?.modify, 57);
});

test('mergeNotPassing: a node check passing again, named or not: its index, or unknown', () => {
  const down = [serf('n1', 'critical', 40), ...base.slice(1)];
  const named = mergeNotPassing(snapshotChecks(down), new Map(), snapshotChecks([serf('n1', 'passing', 58)]));
  assert.deepEqual([...named.changes.nodeIndex], [['n1', 58n]]);
  const unnamed = mergeNotPassing(snapshotChecks(down), new Map());
  assert.deepEqual([...unnamed.changes.nodeIndex], [['n1', 0n]]);
});

test('diffChecks: nodeIndex keeps the highest index of a node\'s changes, and unknown (0n) wins', () => {
  const two = [serf('n1', 'passing', 5), { ...serf('n1', 'x', 1), CheckID: 'maint' }, ...base.slice(1)];
  const d = diffChecks(snapshotChecks(two), snapshotChecks([serf('n1', 'critical', 31), ...base.slice(1)]));
  assert.deepEqual([...d.nodeIndex], [['n1', 0n]], 'maint removed: unknown');
  const e = diffChecks(snapshotChecks(base), snapshotChecks([serf('n1', 'critical', 31), ...base.slice(1)]));
  assert.deepEqual([...e.nodeIndex], [['n1', 31n]]);
});
