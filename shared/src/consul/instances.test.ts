import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  agentLostInstances,
  instanceKey,
  isValidServiceName,
  routableInstances,
  routableServiceNames,
  sameInstances,
  type HealthEntry,
  type Instance,
} from './instances.js';

describe('isValidServiceName', () => {
  const valid = ['service-web', 'a', 'A', '0', 'web2', 'Service-Web', 'a-b-c', 'a--b', 'x'.repeat(63), `a${'-'.repeat(61)}b`];
  for (const name of valid) {
    test(`valid: ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)}`, () => {
      assert.equal(isValidServiceName(name), true);
    });
  }

  const invalid = [
    '',
    'x'.repeat(64),
    '-web',
    'web-',
    '-',
    'a.b',
    '.',
    '..',
    'a/b',
    '/',
    'svc%2Fother',
    '%2e%2e',
    'user@host',
    'host:80',
    'a_b',
    '_gateway',
    'wéb',
    'сервис',
    'web\u200b',
    ' web',
    'web ',
    'web\n',
    'a\\b',
    'a?b',
    'a#b',
    '\u212A', // Kelvin sign: must not case-fold to k
    '\u017Fvc', // long s: must not case-fold to s
    'web\u0130', // dotted capital I
  ];
  for (const name of invalid) {
    test(`invalid: ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)}`, () => {
      assert.equal(isValidServiceName(name), false);
    });
  }
});

const passing = (id = 'service:x') => ({ CheckID: id, Status: 'passing' });
const serf = (Status = 'passing') => ({ CheckID: 'serfHealth', Status });

function entry(over: {
  id?: string | undefined;
  name?: string | undefined;
  address?: string | undefined;
  port?: number | undefined;
  node?: string | undefined;
  nodeAddress?: string | undefined;
  tags?: string[] | null | undefined;
  checks?: HealthEntry['Checks'];
} = {}): HealthEntry {
  const has = (k: string) => Object.prototype.hasOwnProperty.call(over, k);
  return {
    Node: { Node: has('node') ? over.node : 'node-1', Address: has('nodeAddress') ? over.nodeAddress : '10.0.0.1' },
    Service: {
      ID: has('id') ? over.id : 'web-1',
      Service: has('name') ? over.name : 'service-web',
      Address: has('address') ? over.address : '10.0.1.1',
      Port: has('port') ? over.port : 8080,
      Tags: has('tags') ? over.tags : ['v1'],
    },
    Checks: has('checks') ? over.checks : [serf(), passing('service:web-1')],
  };
}

const inst = (over: Partial<Instance> = {}): Instance => {
  const i = { id: 'web-1', service: 'service-web', address: '10.0.1.1', port: 8080, node: 'node-1', tags: ['v1'], ...over };
  return { ...i, key: over.key ?? instanceKey(i.node, i.id) };
};

describe('instance key', () => {
  test('node/id: the same service id on two nodes is two instances', () => {
    const two = routableInstances([entry(), entry({ node: 'node-2' })]);
    assert.deepEqual(two.map((i) => i.key), ['node-1/web-1', 'node-2/web-1']);
    assert.equal(instanceKey('node-1', 'web-1'), 'node-1/web-1');
  });
});

describe('routableInstances', () => {
  const cases: Array<[string, HealthEntry[], Instance[]]> = [
    ['no entries', [], []],
    ['one fully passing entry', [entry()], [inst()]],
    ['node serfHealth critical excludes', [entry({ checks: [serf('critical'), passing()] })], []],
    ['node serfHealth warning excludes', [entry({ checks: [serf('warning'), passing()] })], []],
    ['service check warning excludes', [entry({ checks: [serf(), { CheckID: 'service:web-1', Status: 'warning' }] })], []],
    ['service check critical excludes', [entry({ checks: [serf(), { CheckID: 'service:web-1', Status: 'critical' }] })], []],
    [
      'service maintenance excludes',
      [entry({ checks: [serf(), passing(), { CheckID: '_service_maintenance:web-1', Status: 'critical' }] })],
      [],
    ],
    ['node maintenance excludes', [entry({ checks: [{ CheckID: '_node_maintenance', Status: 'critical' }, serf(), passing()] })], []],
    ['a check with no status excludes', [entry({ checks: [serf(), { CheckID: 'x' }] })], []],
    ['an unknown status excludes', [entry({ checks: [serf(), { CheckID: 'x', Status: 'Passing ' }] })], []],
    ['null Checks is handled (no failing check)', [entry({ checks: null })], [inst()]],
    ['empty Service.Address falls back to Node.Address', [entry({ address: '' })], [inst({ address: '10.0.0.1' })]],
    ['missing Service.Address falls back to Node.Address', [entry({ address: undefined })], [inst({ address: '10.0.0.1' })]],
    ['no address at all excludes', [entry({ address: '', nodeAddress: '' })], []],
    ['no address and no Node excludes', [{ ...entry({ address: '' }), Node: undefined }], []],
    ['missing port excludes', [entry({ port: undefined })], []],
    ['port 0 excludes', [entry({ port: 0 })], []],
    ['port 65536 excludes', [entry({ port: 65536 })], []],
    ['fractional port excludes', [entry({ port: 80.5 })], []],
    ['port 65535 is kept', [entry({ port: 65535 })], [inst({ port: 65535 })]],
    ['missing ID excludes', [entry({ id: undefined })], []],
    ['empty ID excludes', [entry({ id: '' })], []],
    ['missing service name excludes', [entry({ name: undefined })], []],
    ['missing Service excludes', [{ Node: { Node: 'n', Address: '10.0.0.9' }, Checks: [] }], []],
    ['null Tags become []', [entry({ tags: null })], [inst({ tags: [] })]],
    ['missing Tags become []', [entry({ tags: undefined })], [inst({ tags: [] })]],
    ['missing Node name becomes ""', [entry({ node: undefined })], [inst({ node: '' })]],
    [
      'duplicates by node+id are removed (first kept)',
      [entry({ address: '10.0.1.1' }), entry({ address: '10.9.9.9' })],
      [inst({ address: '10.0.1.1' })],
    ],
    [
      'same id on different nodes are both kept, ordered by node',
      [entry({ node: 'node-b' }), entry({ node: 'node-a' })],
      [inst({ node: 'node-a' }), inst({ node: 'node-b' })],
    ],
    [
      'sorted by id whatever the input order',
      [entry({ id: 'web-3', port: 3 }), entry({ id: 'web-1', port: 1 }), entry({ id: 'web-2', port: 2 })],
      [inst({ id: 'web-1', port: 1 }), inst({ id: 'web-2', port: 2 }), inst({ id: 'web-3', port: 3 })],
    ],
    [
      'failing entries are left out, passing ones kept',
      [
        entry({ id: 'web-2', checks: [serf('critical')] }),
        entry({ id: 'web-1' }),
        entry({ id: 'web-3', checks: [serf(), { Status: 'warning' }] }),
      ],
      [inst({ id: 'web-1' })],
    ],
  ];
  for (const [name, entries, expected] of cases) {
    test(name, () => {
      assert.deepEqual(routableInstances(entries), expected);
    });
  }

  test('does not mutate its input', () => {
    const input = [entry({ id: 'b' }), entry({ id: 'a' })];
    const copy = structuredClone(input);
    routableInstances(input);
    assert.deepEqual(input, copy);
  });
});

describe('routableServiceNames', () => {
  const excluded = new Set(['consul', 'gateway']);
  const cases: Array<[string, Record<string, unknown>, ReadonlySet<string>, string[]]> = [
    ['empty catalog', {}, excluded, []],
    ['sorted', { 'service-web': [], api: [], billing: ['x'] }, excluded, ['api', 'billing', 'service-web']],
    ['exclusions apply', { consul: [], gateway: [], web: [] }, excluded, ['web']],
    ['exclusions are case-insensitive', { Consul: [], GATEWAY: [], Web: [] }, excluded, ['Web']],
    [
      'invalid names are dropped',
      { 'a.b': [], 'a/b': [], 'a_b': [], '-x': [], '': [], ['x'.repeat(64)]: [], 'ok-1': [] },
      excluded,
      ['ok-1'],
    ],
    ['nothing excluded', { consul: [], b: [], a: [] }, new Set<string>(), ['a', 'b', 'consul']],
  ];
  for (const [name, catalog, ex, expected] of cases) {
    test(name, () => {
      assert.deepEqual(routableServiceNames(catalog, ex), expected);
    });
  }
});

describe('sameInstances', () => {
  const a = inst({ id: 'a', port: 1 });
  const b = inst({ id: 'b', port: 2 });
  const cases: Array<[string, Instance[], Instance[], boolean]> = [
    ['both empty', [], [], true],
    ['same list', [a, b], [a, b], true],
    ['equal copies', [a, b], [{ ...a }, { ...b }], true],
    ['different length', [a], [a, b], false],
    ['same items, other order', [a, b], [b, a], false],
    ['different id', [a], [{ ...a, id: 'z' }], false],
    ['different node', [a], [{ ...a, node: 'z' }], false],
    ['different address', [a], [{ ...a, address: '9.9.9.9' }], false],
    ['different port', [a], [{ ...a, port: 9 }], false],
    // Tags carry declared routes (gateway/src/routes): a tag change must reach the table.
    ['different tags', [a], [{ ...a, tags: ['other'] }], false],
    ['equal tags, other arrays', [{ ...a, tags: ['x', 'y'] }], [{ ...a, tags: ['x', 'y'] }], true],
  ];
  for (const [name, x, y, expected] of cases) {
    test(name, () => {
      assert.equal(sameInstances(x, y), expected);
      assert.equal(sameInstances(y, x), expected);
    });
  }
});

describe('agentLostInstances', () => {
  const cases: Array<[string, HealthEntry[], string[]]> = [
    ['agent down, own check passed: kept', [entry({ checks: [serf('critical'), passing('service:web-1')] })], ['web-1']],
    ['agent down, own check critical: dropped', [entry({ checks: [serf('critical'), { CheckID: 'service:web-1', Status: 'critical' }] })], []],
    ['agent fine, own check critical: dropped', [entry({ checks: [serf(), { CheckID: 'service:web-1', Status: 'critical' }] })], []],
    ['agent fine and passing: not an agent-lost instance', [entry()], []],
    ['node in maintenance with agent down: dropped', [entry({ checks: [serf('critical'), { CheckID: '_node_maintenance', Status: 'critical' }, passing()] })], []],
    [
      'several on a lost agent: all kept, sorted',
      [
        entry({ id: 'web-2', checks: [serf('critical'), passing()] }),
        entry({ id: 'web-1', checks: [serf('critical'), passing()] }),
      ],
      ['web-1', 'web-2'],
    ],
    ['no checks at all: nothing to say the agent is lost', [entry({ checks: [] })], []],
  ];
  for (const [name, entries, ids] of cases) {
    test(name, () => assert.deepEqual(agentLostInstances(entries).map((i) => i.id), ids));
  }
});
