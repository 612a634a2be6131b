import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HealthEntry } from './instances.js';
import { diffInstances, diffNode, type NodeService } from './node-scan.js';

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
