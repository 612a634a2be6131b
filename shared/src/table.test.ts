import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyTable, retainServices, setService, tableToJSON, type RouteTable } from './table.js';
import { instanceKey, type Instance } from './consul/instances.js';

const inst = (id: string, port = 8080, over: Partial<Instance> = {}): Instance => {
  const i = { id, service: 'service-web', address: '10.0.0.1', port, node: 'node-1', tags: [], ...over };
  return { ...i, key: over.key ?? instanceKey(i.node, i.id) };
};

const t0 = new Date('2024-01-01T00:00:00.000Z');
const t1 = new Date('2024-01-01T00:00:01.000Z');
const t2 = new Date('2024-01-01T00:00:02.000Z');

describe('emptyTable', () => {
  test('starts at version 0, never changed, no services', () => {
    assert.equal(emptyTable.version, 0);
    assert.equal(emptyTable.changedAt, null);
    assert.equal(emptyTable.services.size, 0);
  });
});

describe('setService', () => {
  test('adding a service bumps version and changedAt, and leaves the old table alone', () => {
    const t = setService(emptyTable, 'web', [inst('a')], t0);
    assert.notEqual(t, emptyTable);
    assert.equal(t.version, 1);
    assert.equal(t.changedAt, t0);
    assert.deepEqual([...t.services.keys()], ['web']);
    assert.equal(emptyTable.services.size, 0);
    assert.equal(emptyTable.version, 0);
  });

  test('adding a service with no instances is a change', () => {
    const t = setService(emptyTable, 'web', [], t0);
    assert.equal(t.version, 1);
    assert.deepEqual(t.services.get('web'), []);
  });

  const base = setService(emptyTable, 'web', [inst('a', 1), inst('b', 2)], t0);

  const unchanged: Array<[string, Instance[]]> = [
    ['the same instances', [inst('a', 1), inst('b', 2)]],
    ['equal copies', [{ ...inst('a', 1) }, { ...inst('b', 2) }]],
  ];
  for (const [name, list] of unchanged) {
    test(`returns the same object for ${name}`, () => {
      assert.equal(setService(base, 'web', list, t1), base);
      assert.equal(base.version, 1);
      assert.equal(base.changedAt, t0);
    });
  }

  const changed: Array<[string, Instance[]]> = [
    ['only tags differ (they carry routes)', [inst('a', 1, { tags: ['x'] }), inst('b', 2)]],
    ['an instance added', [inst('a', 1), inst('b', 2), inst('c', 3)]],
    ['an instance removed', [inst('a', 1)]],
    ['all instances removed', []],
    ['the same instances in another order', [inst('b', 2), inst('a', 1)]],
    ['a port changed', [inst('a', 1), inst('b', 9)]],
    ['an address changed', [inst('a', 1), inst('b', 2, { address: '10.9.9.9' })]],
    ['a node changed', [inst('a', 1), inst('b', 2, { node: 'node-2' })]],
    ['an id changed', [inst('a', 1), inst('z', 2)]],
  ];
  for (const [name, list] of changed) {
    test(`bumps version and changedAt for ${name}`, () => {
      const t = setService(base, 'web', list, t1);
      assert.notEqual(t, base);
      assert.equal(t.version, 2);
      assert.equal(t.changedAt, t1);
      assert.deepEqual(t.services.get('web'), list);
      // the previous snapshot is untouched
      assert.deepEqual(base.services.get('web'), [inst('a', 1), inst('b', 2)]);
      assert.equal(base.version, 1);
    });
  }

  test('other services are carried over', () => {
    const t = setService(base, 'api', [inst('x')], t1);
    assert.deepEqual([...t.services.keys()].sort(), ['api', 'web']);
    assert.equal(t.services.get('web'), base.services.get('web'));
  });

  test('defaults now to the current time', () => {
    const before = Date.now();
    const t = setService(emptyTable, 'web', []);
    assert.ok(t.changedAt instanceof Date);
    assert.ok(t.changedAt.getTime() >= before && t.changedAt.getTime() <= Date.now());
  });
});

describe('retainServices', () => {
  let table: RouteTable = emptyTable;
  table = setService(table, 'a', [inst('a1')], t0);
  table = setService(table, 'b', [], t0);
  table = setService(table, 'c', [inst('c1')], t0);

  const cases: Array<[string, string[], string[] | 'same']> = [
    ['keeping all returns the same table', ['a', 'b', 'c'], 'same'],
    ['keeping a superset returns the same table', ['a', 'b', 'c', 'd'], 'same'],
    ['drops one', ['a', 'c'], ['a', 'c']],
    ['drops several', ['b'], ['b']],
    ['drops all', [], []],
    ['unknown names in keep are ignored', ['c', 'zzz'], ['c']],
  ];
  for (const [name, keep, expected] of cases) {
    test(name, () => {
      const t = retainServices(table, new Set(keep), t2);
      if (expected === 'same') {
        assert.equal(t, table);
        return;
      }
      assert.notEqual(t, table);
      assert.equal(t.version, table.version + 1);
      assert.equal(t.changedAt, t2);
      assert.deepEqual([...t.services.keys()].sort(), expected);
      assert.equal(table.services.size, 3, 'old table untouched');
    });
  }

  test('on an empty table it is a no-op', () => {
    assert.equal(retainServices(emptyTable, new Set()), emptyTable);
  });
});

describe('tableToJSON', () => {
  test('empty table', () => {
    assert.deepEqual(tableToJSON(emptyTable), { version: 0, changedAt: null, services: {} });
  });

  test('services with their instances (id, address, port, node only)', () => {
    let t = setService(emptyTable, 'web', [inst('a', 1, { tags: ['secret'] }), inst('b', 2, { node: 'n2' })], t0);
    t = setService(t, 'api', [], t1);
    const json = tableToJSON(t);
    assert.deepEqual(json, {
      version: 2,
      changedAt: '2024-01-01T00:00:01.000Z',
      services: {
        web: [
          { id: 'a', address: '10.0.0.1', port: 1, node: 'node-1' },
          { id: 'b', address: '10.0.0.1', port: 2, node: 'n2' },
        ],
        api: [],
      },
    });
    // round-trips through JSON unchanged
    assert.deepEqual(JSON.parse(JSON.stringify(json)), json);
  });
});
