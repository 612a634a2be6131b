import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkKey, feedFilter, patchEntries, type FeedCheck, type FeedView } from './feed-patch.js';
import { routableInstances, type HealthEntry } from './instances.js';

const entry = (id: string, status = 'passing', node = 'n1', serf = 'passing'): HealthEntry => ({
  Node: { Node: node, Address: '10.0.0.1' },
  Service: { ID: id, Service: 'Web', Address: '10.0.0.1', Port: 3000 },
  Checks: [{ CheckID: 'serfHealth', Status: serf }, { CheckID: `service:${id}`, Status: status, ServiceID: id, Interval: '10s' }],
});
const svc = (id: string, status: string, modify: number, node = 'n1', service = 'web'): FeedCheck => ({
  node, checkId: `service:${id}`, serviceId: id, service, status, modify,
});
const nodeCheck = (node: string, checkId: string, status: string, modify: number): FeedCheck => ({
  node, checkId, serviceId: '', service: '', status, modify,
});
const view = (...checks: FeedCheck[]): FeedView => ({ checks: new Map(checks.map((c) => [checkKey(c.node, c.checkId), c])) });
const routed = (entries: HealthEntry[]) => routableInstances(entries).map((i) => i.id);

const both = [entry('a'), entry('b')];
const bFailing = [entry('a'), entry('b', 'critical')];

type Expected = { routed: string[]; changed: boolean; asOf: bigint; unknownInstance: boolean } | 'read';
const cases: Array<[what: string, entries: HealthEntry[], view: FeedView, expected: Expected]> = [
  ['nothing listed, all passing: unchanged', both, view(), { routed: ['a', 'b'], changed: false, asOf: 0n, unknownInstance: false }],
  ['a check turns critical', both, view(svc('b', 'critical', 40)), { routed: ['a'], changed: true, asOf: 40n, unknownInstance: false }],
  ['warning is not passing either', both, view(svc('a', 'warning', 41)), { routed: ['b'], changed: true, asOf: 41n, unknownInstance: false }],
  ['a failing check listed passing (named in the filter): routed again', bFailing, view(svc('b', 'passing', 42)), { routed: ['a', 'b'], changed: true, asOf: 42n, unknownInstance: false }],
  ['a failing check no longer listed at all: passing or gone, read', bFailing, view(), 'read'],
  ['still failing, same status: unchanged', bFailing, view(svc('b', 'critical', 30)), { routed: ['a'], changed: false, asOf: 0n, unknownInstance: false }],
  ['node check failing takes the node out', [entry('a'), entry('b', 'passing', 'n2')], view(nodeCheck('n2', 'serfHealth', 'critical', 43)), { routed: ['a'], changed: true, asOf: 43n, unknownInstance: false }],
  ['node maintenance (a new critical node check) takes the node out', both, view(nodeCheck('n1', '_node_maintenance', 'critical', 44)), { routed: [], changed: true, asOf: 44n, unknownInstance: false }],
  ['service maintenance (a new critical check of one instance)', both, view({ ...svc('a', 'critical', 45), checkId: '_service_maintenance:a' }), { routed: ['b'], changed: true, asOf: 45n, unknownInstance: false }],
  ['maintenance turned off: its check is gone, read', [entry('a'), { ...entry('b'), Checks: [...entry('b').Checks!, { CheckID: '_service_maintenance:b', Status: 'critical' }] }], view(), 'read'],
  ['a new instance registered failing: routing unchanged, read to learn it', both, view(svc('c', 'critical', 46)), { routed: ['a', 'b'], changed: false, asOf: 0n, unknownInstance: true }],
  ['another service\'s checks: unchanged', both, view(svc('x', 'critical', 47, 'n1', 'api')), { routed: ['a', 'b'], changed: false, asOf: 0n, unknownInstance: false }],
  ['another node\'s checks: unchanged', both, view(nodeCheck('n9', 'serfHealth', 'critical', 48)), { routed: ['a', 'b'], changed: false, asOf: 0n, unknownInstance: false }],
  ['highest ModifyIndex among the changes', both, view(svc('a', 'critical', 49), svc('b', 'critical', 50)), { routed: [], changed: true, asOf: 50n, unknownInstance: false }],
  ['same instance id on another node is another instance', both, view(svc('a', 'critical', 51, 'n2')), { routed: ['a', 'b'], changed: false, asOf: 0n, unknownInstance: true }],
];

for (const [what, entries, v, expected] of cases) {
  test(`patchEntries: ${what}`, () => {
    const p = patchEntries(entries, 'web', v);
    if (expected === 'read') return assert.equal(p, null);
    assert.ok(p);
    assert.deepEqual({ routed: routed(p.entries), changed: p.changed, asOf: p.asOf, unknownInstance: p.unknownInstance }, expected);
  });
}

test('patchEntries: keeps what it does not change (addresses, intervals) and leaves its input alone', () => {
  const before = both.map((e) => structuredClone(e));
  const p = patchEntries(both, 'web', view(svc('b', 'critical', 40)));
  assert.deepEqual(both, before);
  assert.equal(p?.entries[1]!.Checks![1]!.Interval, '10s');
  assert.equal(p?.entries[1].Service?.Address, '10.0.0.1');
});

test('patchEntries: the agent-lost rule still applies to a patched answer (instances.ts decides)', () => {
  const p = patchEntries(both, 'web', view(nodeCheck('n1', 'serfHealth', 'critical', 60)));
  assert.ok(p);
  assert.deepEqual(routed(p.entries), []);
  assert.equal(p.entries.every((e) => e.Checks!.some((c) => c.CheckID === 'serfHealth' && c.Status === 'critical')), true);
});

const filterCases: Array<[what: string, watch: Array<{ node: string; checkId: string }>, max: number, expected: string]> = [
  ['nothing to watch', [], 64, 'Status != "passing"'],
  ['one check', [{ node: 'n1', checkId: 'service:a' }], 64, 'Status != "passing" or (Node == "n1" and CheckID == "service:a")'],
  ['a name with a quote is left out', [{ node: 'n"1', checkId: 'x' }, { node: 'n1', checkId: 'y' }], 64, 'Status != "passing" or (Node == "n1" and CheckID == "y")'],
  ['a backslash too', [{ node: 'n1', checkId: 'a\\b' }], 64, 'Status != "passing"'],
  ['at most max', [{ node: 'n', checkId: 'a' }, { node: 'n', checkId: 'b' }, { node: 'n', checkId: 'c' }], 2, 'Status != "passing" or (Node == "n" and CheckID == "a") or (Node == "n" and CheckID == "b")'],
];
for (const [what, watch, max, expected] of filterCases) {
  test(`feedFilter: ${what}`, () => assert.equal(feedFilter(watch, max), expected));
}
