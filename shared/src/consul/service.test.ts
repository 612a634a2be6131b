import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../logger.js';
import type { QueryMeta } from './agents.js';
import type { HealthCheck, HealthEntry, Instance } from './instances.js';
import { TrackedService } from './service.js';

const serf = (Status = 'passing', Output = 'Agent alive and reachable'): HealthCheck => ({ CheckID: 'serfHealth', Name: 'Serf Health Status', Status, Output, ServiceID: '' });
const svcCheck = (id: string, Status = 'passing', Output = 'HTTP GET http://10.0.0.1/health: 200 OK'): HealthCheck => ({ CheckID: `service:${id}`, Name: `Service '${id}' check`, Status, Output, ServiceID: id });
const entry = (id: string, checks: HealthCheck[] = [serf(), svcCheck(id)]): HealthEntry => ({
  Node: { Node: 'n1', Address: '10.0.0.1' },
  Service: { ID: id, Service: 'web', Address: '10.0.0.1', Port: 3000 },
  Checks: checks,
});

describe('TrackedService.view: the gateway state explain reads', () => {
  const meta = (over: Partial<QueryMeta> = {}): QueryMeta => ({ agent: 'a', index: 10n, knownLeader: true, lastContactMs: 0, fresh: false, at: 0, ...over });

  function tracked() {
    let table: Instance[] | undefined;
    let confirms = 0;
    const t = new TrackedService('web', { staleAfterMs: 5000, holdFloorMs: 3000 }, {
      current: () => table,
      apply: (i) => void (table = i),
      confirm: () => void confirms++,
    }, createLogger('test', 'silent'));
    return { t, confirms: () => confirms, table: () => table };
  }

  test('an untrusted answer that would remove: why and since when, until a trusted one applies', () => {
    const { t, confirms } = tracked();
    const first = [entry('a'), entry('b')];
    t.answer(first, meta());
    assert.equal(t.view().untrusted, null);
    assert.equal(t.view().index, 10n);
    assert.equal(t.view().entries, first);
    t.answer([entry('a'), entry('b', [serf(), svcCheck('b', 'critical')])], meta({ index: 11n, knownLeader: false }));
    assert.equal(confirms(), 1);
    const u = t.view().untrusted;
    assert.equal(u?.why, 'the answering server knows no leader');
    assert.equal(t.view().entries, first, 'the entries behind the table stay those applied');
    t.answer([entry('a')], meta({ index: 9n }));
    assert.equal(t.view().untrusted?.why, 'index went back from 10 to 9');
    assert.equal(t.view().untrusted?.since, u.since, 'still waiting since the first');
    t.answer([entry('a')], meta({ index: 12n, fresh: true }));
    assert.equal(t.view().untrusted, null);
    t.stop();
  });

  test('a held empty answer: its window', () => {
    const { t, table } = tracked();
    t.answer([entry('a')], meta());
    const before = Date.now();
    t.answer([entry('a', [serf(), svcCheck('a', 'critical')])], meta({ index: 11n }));
    const v = t.view();
    assert.ok(v.hold && v.hold.since >= before);
    assert.equal(v.hold.until - v.hold.since, v.holdMs);
    assert.deepEqual(table()?.map((i) => i.id), ['a'], 'still routed while held');
    t.stop();
    assert.equal(t.view().hold, null);
  });

  test('the agent-lost fallback is said', () => {
    const { t } = tracked();
    t.answer([entry('a', [serf('critical'), svcCheck('a')])], meta());
    assert.equal(t.view().agentLost, true);
    t.stop();
  });
});
