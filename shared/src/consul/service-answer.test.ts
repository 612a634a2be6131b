import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideServiceAnswer, removesAny } from './service-answer.js';
import type { HealthEntry, Instance } from './instances.js';
import { instanceKey } from './instances.js';

const entry = (id: string, status = 'passing', port = 3000, serf = 'passing'): HealthEntry => ({
  Node: { Node: 'n1', Address: '10.0.0.1' },
  Service: { ID: id, Service: 'web', Address: '10.0.0.1', Port: port },
  Checks: [{ CheckID: 'serfHealth', Status: serf }, { CheckID: `service:${id}`, Status: status, ServiceID: id }],
});
const inst = (id: string, port = 3000): Instance => ({ id, service: 'web', address: '10.0.0.1', port, node: 'n1', tags: [], key: instanceKey('n1', id) });
const ids = (d: ReturnType<typeof decideServiceAnswer>) => (d.action === 'apply' ? d.instances.map((i) => i.id) : d.action);

const cases: Array<[what: string, before: Instance[] | undefined, entries: HealthEntry[], distrust: string | null, holdMs: number, expected: string | string[]]> = [
  ['first answer', undefined, [entry('a'), entry('b')], null, 3000, ['a', 'b']],
  ['first answer from a lagging server: nothing to take away', undefined, [entry('a')], 'stale', 3000, ['a']],
  ['one instance fails its check', [inst('a'), inst('b')], [entry('a'), entry('b', 'critical')], null, 3000, ['a']],
  ['one instance fails, stale answer: confirm first', [inst('a'), inst('b')], [entry('a'), entry('b', 'critical')], 'stale', 3000, 'confirm'],
  ['index went back and an instance is missing: confirm first', [inst('a'), inst('b')], [entry('a')], 'went back', 3000, 'confirm'],
  ['stale answer that only adds: applied', [inst('a')], [entry('a'), entry('b')], 'stale', 3000, ['a', 'b']],
  ['stale answer, same instances: applied (nothing removed)', [inst('a')], [entry('a')], 'no leader', 3000, ['a']],
  ['port changed (same id) counts as a removal', [inst('a', 3000)], [entry('a', 'passing', 3001)], 'stale', 3000, 'confirm'],
  ['all critical: held', [inst('a'), inst('b')], [entry('a', 'critical'), entry('b', 'critical')], null, 3000, 'hold'],
  ['all gone: held', [inst('a')], [], null, 3000, 'hold'],
  ['all gone, holding off: applied', [inst('a')], [], null, 0, []],
  ['all gone, stale: confirm before even holding', [inst('a')], [], 'stale', 3000, 'confirm'],
  ['known empty stays empty', [], [], null, 3000, []],
  ['agent lost (serfHealth critical only): route to them', [inst('a')], [entry('a', 'passing', 3000, 'critical')], null, 3000, ['a']],
];

for (const [what, before, entries, distrust, holdMs, expected] of cases) {
  test(`decideServiceAnswer: ${what}`, () => {
    assert.deepEqual(ids(decideServiceAnswer({ before, entries, distrust, holdMs })), expected);
  });
}

test('decideServiceAnswer: agentLost says the fallback was used', () => {
  const d = decideServiceAnswer({ before: [], entries: [entry('a', 'passing', 3000, 'critical')], distrust: null, holdMs: 0 });
  assert.equal(d.action === 'apply' && d.agentLost, true);
});

test('removesAny', () => {
  assert.equal(removesAny([], []), false);
  assert.equal(removesAny([inst('a')], [inst('a'), inst('b')]), false);
  assert.equal(removesAny([inst('a'), inst('b')], [inst('b')]), true);
});
