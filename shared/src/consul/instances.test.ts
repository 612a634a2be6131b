import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { agentLostInstances, type CheckSchedule, decideServiceAnswer, distrust, durationMs, EmptyHold, type HealthEntry, holdMsFor, identityKey, instanceKey, type Instance, isSuspiciousEmpty, isValidServiceName, removesAny, routableInstances, routableServiceNames, sameInstances } from './instances.js';

describe('routable instances', () => {
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
});

describe('trust', () => {
  const base = { index: 100n, knownLeader: true, lastContactMs: 0, fresh: false };

  const cases: Array<[what: string, meta: Partial<typeof base>, seen: bigint, trusted: boolean, why?: RegExp]> = [
    ['a current answer from a server in touch with the leader', {}, 90n, true],
    ['the same index again (a blocking query timing out)', {}, 100n, true],
    ['first answer ever', { index: 5n }, 0n, true],
    ['last contact at the threshold', { lastContactMs: 5000 }, 90n, true],
    ['last contact above the threshold', { lastContactMs: 5001 }, 90n, false, /5001 ms ago/],
    ['no known leader', { knownLeader: false }, 90n, false, /no leader/],
    ['index went back (lagging server or restored snapshot)', { index: 80n }, 90n, false, /went back from 90 to 80/],
    ['index went back, but from the leader', { index: 80n, fresh: true }, 90n, true],
    ['no leader, but a fresh read (it would have failed otherwise)', { knownLeader: false, fresh: true }, 90n, true],
    ['very stale but fresh', { lastContactMs: 60_000, fresh: true }, 90n, true],
  ];

  for (const [what, meta, seen, trusted, why] of cases) {
    test(`distrust: ${what} → ${trusted ? 'trusted' : 'needs confirmation'}`, () => {
      const r = distrust({ ...base, ...meta }, seen, 5000);
      if (trusted) assert.equal(r, null);
      else assert.match(r ?? '', why!);
    });
  }
});

describe('service answers', () => {
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
});

describe('holding a sudden empty answer', () => {
  const cases: Array<[known: number, next: number, expected: boolean]> = [
    [0, 0, false], // never had any: empty is believable
    [0, 3, false],
    [1, 0, true],
    [12, 0, true],
    [12, 1, false],
    [12, 12, false],
    [3, 20, false],
  ];

  for (const [known, next, expected] of cases) {
    test(`isSuspiciousEmpty(${known}, ${next}) === ${expected}`, () => {
      assert.equal(isSuspiciousEmpty(known, next), expected);
    });
  }

  const durations: Array<[string | number | undefined, number]> = [
    ['10s', 10_000], ['1s', 1000], ['250ms', 250], ['1m30s', 90_000], ['1h', 3_600_000], ['1.5s', 1500],
    ['', 0], [undefined, 0], ['10', 0], ['abc', 0], ['5x', 0], [10_000_000_000, 10_000], [-1, 0],
  ];
  for (const [v, ms] of durations) {
    test(`durationMs(${JSON.stringify(v)}) === ${ms}`, () => assert.equal(durationMs(v), ms));
  }

  const svc = (Interval?: string, Timeout?: string): CheckSchedule => ({ ServiceID: 'web-1', Interval, Timeout });
  const holds: Array<[what: string, checks: CheckSchedule[], floor: number, expected: number]> = [
    ['Consul 1.8: no intervals reported → the floor', [{ ServiceID: 'web-1', Definition: {} }], 3000, 3000],
    ['registrator default 10 s check, 1 s timeout → 11 s', [svc('10s', '1s')], 3000, 11_000],
    ['1 s checks → the floor wins', [svc('1s', '1s')], 3000, 3000],
    ['longest check of the service wins', [svc('1s'), svc('30s', '5s'), svc('10s')], 3000, 35_000],
    ['interval only in Definition (catalog-registered)', [{ ServiceID: 'x', Definition: { Interval: '20s', Timeout: '2s' } }], 3000, 22_000],
    ['node checks do not count', [{ ServiceID: '', Interval: '5m' }], 3000, 3000],
    ['capped at 60 s', [svc('10m')], 3000, 60_000],
    ['a floor above the cap still wins', [svc('10m')], 90_000, 90_000],
    ['floor 0: holding is off', [svc('10s')], 0, 0],
  ];
  for (const [what, checks, floor, expected] of holds) {
    test(`holdMsFor: ${what}`, () => assert.equal(holdMsFor(checks, floor), expected));
  }

  describe('EmptyHold', () => {
    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

    test('applies the latest held value once the hold has lasted', async () => {
      const applied: number[] = [];
      const h = new EmptyHold<number>((v) => applied.push(v));
      assert.equal(h.hold(1, 20), true);
      assert.equal(h.hold(2, 20), false, 'a second answer does not restart the hold');
      assert.equal(h.holding, true);
      await wait(40);
      assert.deepEqual(applied, [2]);
      assert.equal(h.holding, false);
    });

    test('cancel drops the hold without applying it', async () => {
      const applied: number[] = [];
      const h = new EmptyHold<number>((v) => applied.push(v));
      assert.equal(h.cancel(), false);
      h.hold(1, 20);
      assert.equal(h.cancel(), true);
      await wait(40);
      assert.deepEqual(applied, []);
    });

    test('window: when the hold started and when it applies, only while holding', async () => {
      const h = new EmptyHold<number>(() => undefined);
      assert.equal(h.window, null);
      const t0 = Date.now();
      h.hold(1, 1_000);
      h.hold(2, 5_000); // does not restart the hold, so does not move its end
      const w = h.window!;
      assert.ok(w.since >= t0 && w.since <= Date.now());
      assert.equal(w.until - w.since, 1_000);
      h.cancel();
      assert.equal(h.window, null);
    });
  });
});

test('identityKey separates node, id, address and port', () => {
  const inst = (id: string, o: { node?: string; port?: number } = {}): Instance => ({ id, service: 'web', address: '10.0.0.1', port: o.port ?? 3000, node: o.node ?? 'n1', tags: [], key: instanceKey(o.node ?? 'n1', id) });
  assert.notEqual(identityKey(inst('a')), identityKey(inst('a', { port: 3001 })));
  assert.notEqual(identityKey(inst('a')), identityKey(inst('a', { node: 'n2' })));
});
