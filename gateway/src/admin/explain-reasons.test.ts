import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decideServiceAnswer, instanceKey, routableInstances, type HealthCheck, type HealthEntry, type Instance } from '@stack/shared';
import type { Ejection } from '../balancing/outlier.js';
import { checkView, explainInstance, explainService, truncateOutput, OUTPUT_MAX, type ExplainInput } from './explain-reasons.js';

const NOW = Date.parse('2024-05-01T12:00:00.000Z');

const serf = (Status = 'passing', Output = 'Agent alive and reachable'): HealthCheck => ({ CheckID: 'serfHealth', Name: 'Serf Health Status', Status, Output, ServiceID: '' });
const svcCheck = (id: string, Status = 'passing', Output = 'HTTP GET http://10.0.0.1/health: 200 OK'): HealthCheck => ({ CheckID: `service:${id}`, Name: `Service '${id}' check`, Status, Output, ServiceID: id });
const svcMaint = (id: string): HealthCheck => ({ CheckID: `_service_maintenance:${id}`, Name: 'Service Maintenance Mode', Status: 'critical', Output: '', Notes: 'deploying v2', ServiceID: id });
const nodeMaint = (): HealthCheck => ({ CheckID: '_node_maintenance', Name: 'Node Maintenance Mode', Status: 'critical', Output: '', Notes: 'kernel upgrade', ServiceID: '' });

const entry = (id: string, checks: HealthCheck[] = [serf(), svcCheck(id)], o: { node?: string; address?: string; port?: number } = {}): HealthEntry => ({
  Node: { Node: o.node ?? 'n1', Address: '10.0.0.1' },
  Service: { ID: id, Service: 'web', Address: o.address ?? '10.0.0.1', Port: o.port ?? 3000 },
  Checks: checks,
});
const inst = (id: string, o: { node?: string; port?: number } = {}): Instance => ({ id, service: 'web', address: '10.0.0.1', port: o.port ?? 3000, node: o.node ?? 'n1', tags: [], key: instanceKey(o.node ?? 'n1', id) });

const base = (over: Partial<ExplainInput>): ExplainInput => ({
  before: undefined,
  entries: [],
  distrust: null,
  holdMs: 3000,
  excluded: null,
  ejection: () => null,
  hold: null,
  now: NOW,
  ...over,
});

const ejectedA: Ejection = { since: NOW - 1000, until: NOW + 4000, failures: 3, kinds: { connect: 3 }, ejections: 1 };

interface Case {
  what: string;
  input: Partial<ExplainInput>;
  id: string;
  routable: boolean;
  inTable?: boolean;
  codes: string[];
  /** Text the first reason's detail must hold. */
  detail?: string;
}

const cases: Case[] = [
  { what: 'passing', input: { before: [inst('a')], entries: [entry('a')] }, id: 'a', routable: true, codes: ['passing'] },
  {
    what: 'critical check, with its output',
    input: { before: [inst('a')], entries: [entry('a'), entry('b', [serf(), svcCheck('b', 'critical', 'HTTP GET http://10.0.0.1/health: 500 Internal Server Error')])] },
    id: 'b', routable: false, inTable: false, codes: ['check_critical'], detail: '500 Internal Server Error',
  },
  {
    what: 'warning check: the rules exclude warning too',
    input: { before: [inst('a')], entries: [entry('a'), entry('b', [serf(), svcCheck('b', 'warning', 'slow disk')])] },
    id: 'b', routable: false, codes: ['check_warning'], detail: 'slow disk',
  },
  {
    what: 'node health failing (and another instance passes, so no agent-lost fallback)',
    input: { before: [inst('a')], entries: [entry('a'), entry('b', [serf('critical', 'Agent not live or unreachable'), svcCheck('b')], { node: 'n2' })] },
    id: 'b', routable: false, codes: ['node_unhealthy'], detail: 'unreachable',
  },
  {
    what: 'a failing node check other than serfHealth',
    input: { entries: [entry('a'), entry('b', [serf(), { CheckID: 'disk', Name: 'Disk', Status: 'critical', Output: 'disk full', ServiceID: '' }, svcCheck('b')], { node: 'n2' })] },
    id: 'b', routable: false, codes: ['node_unhealthy'], detail: 'disk full',
  },
  {
    what: 'service maintenance: the reason comes from Notes',
    input: { before: [inst('a')], entries: [entry('a'), entry('b', [serf(), svcCheck('b'), svcMaint('b')])] },
    id: 'b', routable: false, codes: ['service_maintenance'], detail: 'deploying v2',
  },
  {
    what: 'node maintenance',
    input: { before: [inst('a')], entries: [entry('a'), entry('b', [serf(), nodeMaint(), svcCheck('b')], { node: 'n2' })] },
    id: 'b', routable: false, codes: ['node_maintenance'], detail: 'kernel upgrade',
  },
  {
    what: 'several failing checks: each one is a reason',
    input: { entries: [entry('a'), entry('b', [serf(), svcCheck('b', 'critical', 'down'), svcMaint('b')])] },
    id: 'b', routable: false, codes: ['check_critical', 'service_maintenance'],
  },
  {
    what: 'excluded service: not routed, whatever its checks',
    input: { excluded: '"web" is listed in EXCLUDE_SERVICES', entries: [entry('a')] },
    id: 'a', routable: false, codes: ['service_excluded'], detail: 'EXCLUDE_SERVICES',
  },
  {
    what: 'excluded service: failing checks are still said',
    input: { excluded: 'excluded', entries: [entry('a', [serf(), svcCheck('a', 'critical', 'down')])] },
    id: 'a', routable: false, codes: ['service_excluded', 'check_critical'],
  },
  {
    what: 'ejected instance: routable, but not picked',
    input: { before: [inst('a'), inst('b')], entries: [entry('a'), entry('b')], ejection: (i) => (i.id === 'a' ? ejectedA : null) },
    id: 'a', routable: true, codes: ['passing', 'ejected'],
  },
  {
    what: 'kept because the answer is untrusted (stale server) though its check is critical',
    input: { before: [inst('a'), inst('b')], entries: [entry('a'), entry('b', [serf(), svcCheck('b', 'critical', 'down')])], distrust: 'the answering server knows no leader' },
    id: 'b', routable: true, inTable: true, codes: ['kept_untrusted', 'check_critical'], detail: 'knows no leader',
  },
  {
    what: 'kept because the answer is untrusted though Consul no longer lists it',
    input: { before: [inst('a'), inst('b')], entries: [entry('a')], distrust: 'index went back from 9 to 7' },
    id: 'b', routable: true, inTable: true, codes: ['kept_untrusted', 'not_in_consul'], detail: 'index went back',
  },
  {
    what: 'a new passing instance in an untrusted answer that removes another waits for the leader',
    input: { before: [inst('a'), inst('b')], entries: [entry('a'), entry('c')], distrust: 'stale' },
    id: 'c', routable: false, inTable: false, codes: ['awaiting_leader'],
  },
  {
    what: 'an untrusted answer that only adds is applied',
    input: { before: [inst('a')], entries: [entry('a'), entry('c')], distrust: 'stale' },
    id: 'c', routable: true, inTable: false, codes: ['passing', 'table_behind'],
  },
  {
    what: 'kept because its agent is unreachable and nothing passes',
    input: { before: [inst('a')], entries: [entry('a', [serf('critical', 'Agent not live or unreachable'), svcCheck('a')])] },
    id: 'a', routable: true, codes: ['kept_agent_unreachable', 'node_unhealthy'],
  },
  {
    what: 'held: a sudden empty answer',
    input: { before: [inst('a')], entries: [entry('a', [serf(), svcCheck('a', 'critical', 'connection refused')])], hold: { since: NOW - 500, until: NOW + 2500 } },
    id: 'a', routable: true, inTable: true, codes: ['held_empty', 'check_critical'], detail: '2024-05-01T12:00:02.500Z',
  },
  {
    what: 'held: every instance deregistered at once',
    input: { before: [inst('a')], entries: [] },
    id: 'a', routable: true, inTable: true, codes: ['held_empty', 'not_in_consul'], detail: 'up to 3000 ms',
  },
  {
    what: 'not held when holding is off: the empty answer is applied',
    input: { before: [inst('a')], entries: [entry('a', [serf(), svcCheck('a', 'critical', 'x')])], holdMs: 0 },
    id: 'a', routable: false, inTable: true, codes: ['check_critical', 'table_behind'],
  },
  {
    what: 'a trusted answer the table has not caught up with yet',
    input: { before: [inst('a'), inst('b')], entries: [entry('a'), entry('b', [serf(), svcCheck('b', 'critical', 'down')])] },
    id: 'b', routable: false, inTable: true, codes: ['check_critical', 'table_behind'],
  },
  {
    what: 'no usable port',
    input: { entries: [entry('a'), entry('b', undefined, { port: 0 })] },
    id: 'b', routable: false, codes: ['invalid_address'],
  },
];

describe('explainService: one instance', () => {
  for (const c of cases) {
    test(c.what, () => {
      const got = explainInstance(base(c.input), c.id);
      assert.ok(got, `instance ${c.id} is listed`);
      assert.deepEqual(got.reasons.map((r) => r.code), c.codes);
      assert.equal(got.routable, c.routable);
      if (c.inTable !== undefined) assert.equal(got.inTable, c.inTable);
      if (c.detail) assert.match(got.reasons[0]!.detail, new RegExp(c.detail.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    });
  }
});

describe('explainService: agrees with routing', () => {
  // Whatever the case, what explain calls routable is exactly what the gateway's decision routes.
  for (const c of cases) {
    test(c.what, () => {
      const input = base(c.input);
      const got = explainService(input);
      const routed = got.instances.filter((i) => i.routable).map((i) => `${i.node}/${i.id}`).sort();
      if (input.excluded !== null) {
        assert.equal(got.decision, 'excluded');
        assert.deepEqual(routed, []);
        return;
      }
      const d = decideServiceAnswer(input);
      const expected = (d.action === 'apply' ? d.instances : input.before ?? []).map((i) => `${i.node}/${i.id}`).sort();
      assert.equal(got.decision, d.action);
      assert.deepEqual(routed, expected);
      assert.equal(got.routable, expected.length);
      // Every instance is listed once: Consul's and the table's.
      const listed = new Set([...input.entries.map((e) => `${e.Node!.Node}/${e.Service!.ID}`), ...(input.before ?? []).map((i) => `${i.node}/${i.id}`)]);
      assert.equal(got.instances.length, listed.size);
    });
  }

  test('routableInstances is the passing entries explain calls passing', () => {
    const entries = [entry('a'), entry('b', [serf(), svcCheck('b', 'warning')]), entry('c', [serf('critical'), svcCheck('c')], { node: 'n2' }), entry('d'), entry('d'), entry('e', undefined, { port: 70_000 })];
    const passing = explainService(base({ entries })).instances.filter((i) => i.reasons[0]!.code === 'passing');
    assert.deepEqual(passing.map((i) => i.id), routableInstances(entries).map((i) => i.id));
    assert.deepEqual(passing.map((i) => i.id), ['a', 'd']);
  });
});

describe('explainService: what each instance carries', () => {
  test('checks (node checks included), address, table and ejection', () => {
    const got = explainService(base({ before: [inst('a')], entries: [entry('a')], ejection: () => ejectedA }));
    assert.deepEqual(got.instances, [
      {
        id: 'a',
        address: '10.0.0.1',
        port: 3000,
        node: 'n1',
        routable: true,
        inConsul: true,
        inTable: true,
        reasons: got.instances[0]!.reasons,
        checks: [
          { id: 'serfHealth', name: 'Serf Health Status', status: 'passing', output: 'Agent alive and reachable', scope: 'node' },
          { id: 'service:a', name: "Service 'a' check", status: 'passing', output: 'HTTP GET http://10.0.0.1/health: 200 OK', scope: 'service' },
        ],
        ejection: { since: '2024-05-01T11:59:59.000Z', until: '2024-05-01T12:00:04.000Z', remainingMs: 4000, failures: 3, kinds: { connect: 3 }, ejections: 1 },
      },
    ]);
    assert.match(got.instances[0]!.reasons[1]!.detail, /3 consecutive failures \(connect ×3\).*4000 ms left/);
  });

  test('a check reason carries the check', () => {
    const got = explainInstance(base({ entries: [entry('a', [serf(), svcCheck('a', 'critical', 'boom')])] }), 'a')!;
    assert.deepEqual(got.reasons[0]!.check, { id: 'service:a', name: "Service 'a' check", status: 'critical', output: 'boom', scope: 'service' });
  });

  test('an instance only in the table has no checks', () => {
    const got = explainInstance(base({ before: [inst('gone')], entries: [], distrust: 'stale' }), 'gone')!;
    assert.equal(got.inConsul, false);
    assert.deepEqual(got.checks, []);
  });

  test('the same id on two nodes is two instances', () => {
    const got = explainService(base({ entries: [entry('a'), entry('a', [serf('critical'), svcCheck('a')], { node: 'n2' })] }));
    assert.deepEqual(got.instances.map((i) => [i.node, i.routable]), [['n1', true], ['n2', false]]);
    assert.equal(explainInstance(base({ entries: [entry('a'), entry('a', undefined, { node: 'n2' })] }), 'a', 'n2')?.node, 'n2');
  });

  test('a duplicate entry is not routed twice, and a failing twin does not hide a passing one', () => {
    const got = explainService(base({ before: [inst('a')], entries: [entry('a', [serf(), svcCheck('a', 'critical')]), entry('a')] }));
    assert.deepEqual(got.instances.map((i) => [i.routable, i.reasons.map((r) => r.code)]), [[true, ['passing']], [false, ['check_critical']]]);
    const dup = explainService(base({ before: [inst('a')], entries: [entry('a'), entry('a')] }));
    assert.deepEqual(dup.instances.map((i) => i.reasons[0]!.code), ['passing', 'duplicate']);
    assert.equal(dup.routable, 1);
  });
});

describe('check outputs', () => {
  test('long outputs are truncated, with how much was cut', () => {
    const long = 'x'.repeat(OUTPUT_MAX + 123);
    const t = truncateOutput(long);
    assert.ok(t.startsWith('x'.repeat(OUTPUT_MAX)));
    assert.match(t, /… \(123 more characters\)$/);
    assert.equal(truncateOutput('short'), 'short');
    assert.equal(checkView({ CheckID: 'c', Status: 'critical', Output: long, ServiceID: 's' }).output, t);
  });

  test('a maintenance check without Output shows its Notes; another check does not', () => {
    assert.equal(checkView(svcMaint('a')).output, 'deploying v2');
    assert.equal(checkView({ CheckID: 'service:a', Status: 'critical', Output: '', Notes: 'a human note', ServiceID: 'a' }).output, '');
  });

  test('missing fields read as empty', () => {
    assert.deepEqual(checkView({}), { id: '', name: '', status: '', output: '', scope: 'node' });
  });
});
