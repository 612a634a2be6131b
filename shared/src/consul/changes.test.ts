import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CheckEntry, checkKey, diffChecks, diffInstances, diffNode, type FeedCheck, feedFilter, type FeedView, mergeNotPassing, type NodeService, patchEntries, snapshotChecks } from './changes.js';
import { type HealthEntry, routableInstances } from './instances.js';

describe('check changes', () => {
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
});

describe('feed patches', () => {
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
});

describe('node scan comparison', () => {
  const entry = (node: string, id: string, modify: number): HealthEntry => ({ Node: { Node: node }, Service: { ID: id, Service: 'Web', ModifyIndex: modify } });
  const inCatalog = (node: string, id: string, modify: number, service = 'web'): NodeService => ({ node, id, service, modify });

  const known: Array<[string, readonly HealthEntry[] | undefined]> = [['web', [entry('n1', 'web-1', 10), entry('n2', 'web-2', 11)]]];
  const same = [inCatalog('n1', 'web-1', 10), inCatalog('n2', 'web-2', 11)];

  const cases: Array<[what: string, entries: Array<[string, readonly HealthEntry[] | undefined]>, found: NodeService[], scanned: string[], want: Record<string, bigint>]> = [
    ['nothing changed', known, same, ['n1', 'n2'], {}],
    ['a new instance: read at its index', known, [...same, inCatalog('n1', 'web-3', 20)], ['n1', 'n2'], { web: 20n }],
    ['an instance re-registered (address, tags): read at its index', known, [inCatalog('n1', 'web-1', 21), same[1]!], ['n1', 'n2'], { web: 21n }],
    ['an instance gone: index unknown, from the leader', known, [same[0]!], ['n1', 'n2'], { web: 0n }],
    ['gone and new together: unknown wins', known, [same[0]!, inCatalog('n1', 'web-3', 22)], ['n1', 'n2'], { web: 0n }],
    ['a node that could not be read takes nothing away', known, [same[0]!], ['n1'], {}],
    ['a catalog answer behind the table (lower ModifyIndex) is not a change', known, [inCatalog('n1', 'web-1', 9), same[1]!], ['n1', 'n2'], {}],
    ['a service not read yet is left to its first read', [['web', undefined]], same, ['n1', 'n2'], {}],
    ['names compare case-insensitively (the key is lower-case)', known, [inCatalog('n1', 'web-1', 10, 'web'), inCatalog('n2', 'web-2', 11, 'web')], ['n1', 'n2'], {}],
    ['a service no longer in the catalog at all: every instance gone', known, [], ['n1', 'n2'], { web: 0n }],
    ['two new instances: the highest index', known, [...same, inCatalog('n1', 'web-3', 20), inCatalog('n2', 'web-4', 25)], ['n1', 'n2'], { web: 25n }],
  ];

  for (const [what, entries, found, scanned, want] of cases) {
    test(`diffInstances: ${what}`, () => {
      assert.deepEqual(Object.fromEntries(diffInstances(entries, found, new Set(scanned))), want);
    });
  }

  test('diffNode: a node gone from the node list takes its instances with it (read from the leader)', () => {
    const out = new Map<string, bigint>();
    diffNode(known, 'n2', [], out);
    assert.deepEqual(Object.fromEntries(out), { web: 0n });
  });

  test('diffNode: a node read on its own reports only its own changes', () => {
    const out = new Map<string, bigint>();
    diffNode(known, 'n1', [inCatalog('n1', 'web-1', 10), inCatalog('n1', 'web-3', 30)], out);
    assert.deepEqual(Object.fromEntries(out), { web: 30n });
    const none = new Map<string, bigint>();
    diffNode(known, 'n2', [inCatalog('n2', 'web-2', 11)], none);
    assert.equal(none.size, 0);
  });

  test('diffNode: an unknown node with an instance of a followed service is a change; of a service not followed, none', () => {
    const out = new Map<string, bigint>();
    diffNode(known, 'n9', [inCatalog('n9', 'web-9', 40), inCatalog('n9', 'db-1', 41, 'db')], out);
    assert.deepEqual(Object.fromEntries(out), { web: 40n });
  });
});
