import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeConsul } from '../../../test/lib/fake-consul.js';
import { memoryLog } from '../../../test/lib/memory-log.js';
import { agentChanges, AgentHint, agentRegistrations, HINT_MAX } from './agent-hint.js';
import { ConsulAgents, parseConsulAddrs } from './agents.js';

const reg = (id: string, Service: string, Port = 3000, extra: Record<string, unknown> = {}) => [id, { ID: id, Service, Address: '10.0.0.1', Port, Tags: ['a'], ...extra }] as const;
const regs = (...entries: Array<ReturnType<typeof reg>>) => agentRegistrations(Object.fromEntries(entries));

describe('agentChanges: which services differ between two answers of /v1/agent/services', () => {
  const base = regs(reg('web-1', 'Web'), reg('web-2', 'Web', 3001), reg('api-1', 'api'));
  const cases: Array<[string, ReturnType<typeof regs>, string[]]> = [
    ['the same answer', regs(reg('web-1', 'Web'), reg('web-2', 'Web', 3001), reg('api-1', 'api')), []],
    ['an id added', regs(reg('web-1', 'Web'), reg('web-2', 'Web', 3001), reg('api-1', 'api'), reg('api-2', 'api')), ['api']],
    ['an id gone', regs(reg('web-1', 'Web'), reg('api-1', 'api')), ['web']],
    ['another port', regs(reg('web-1', 'Web', 4000), reg('web-2', 'Web', 3001), reg('api-1', 'api')), ['web']],
    ['another address', regs(reg('web-1', 'Web', 3000, { Address: '10.0.0.9' }), reg('web-2', 'Web', 3001), reg('api-1', 'api')), ['web']],
    ['other tags', regs(reg('web-1', 'Web', 3000, { Tags: ['b'] }), reg('web-2', 'Web', 3001), reg('api-1', 'api')), ['web']],
    ['an id moved to another service: both', regs(reg('web-1', 'api'), reg('web-2', 'Web', 3001), reg('api-1', 'api')), ['api', 'web']],
    ['meta alone: nothing routing reads', regs(reg('web-1', 'Web', 3000, { Meta: { x: '1' } }), reg('web-2', 'Web', 3001), reg('api-1', 'api')), []],
    ['everything gone', new Map(), ['api', 'web']],
  ];
  for (const [name, after, want] of cases)
    test(name, () => assert.deepEqual([...agentChanges(base, after)!].sort(), want));

  test(`more than HINT_MAX (${HINT_MAX}) services (an agent restarted, a deploy): left to the node scan`, () => {
    const many = regs(...Array.from({ length: HINT_MAX + 1 }, (_, i) => reg(`s-${i}`, `s${i}`)));
    assert.equal(agentChanges(new Map(), many), undefined);
    const few = regs(...Array.from({ length: HINT_MAX }, (_, i) => reg(`s-${i}`, `s${i}`)));
    assert.equal(agentChanges(new Map(), few)?.size, HINT_MAX);
  });

  test('malformed entries are left out, never thrown on', () => {
    for (const body of [null, 'x', [], 42, { a: null }, { a: { ID: 1, Service: 'x' } }, { a: { ID: 'a', Service: '' } }])
      assert.equal(agentRegistrations(body).size, 0, JSON.stringify(body));
    assert.equal(agentRegistrations({ a: { ID: 'a', Service: 'S', Tags: 'not a list' } }).get('a')?.key, 's');
  });
});

describe('AgentHint against a scripted agent', () => {
  let fake: FakeConsul;
  let agents: ConsulAgents;
  before(async () => {
    fake = await new FakeConsul().start();
    agents = new ConsulAgents(parseConsulAddrs(fake.addr));
  });
  after(async () => {
    agents.close();
    await fake.close();
  });

  test('the first read is the baseline; later ones name what the agent registered, deregistered or moved; catalog API writes are not its to see', async () => {
    fake.register({ id: 'web-1', service: 'web' });
    fake.register({ id: 'api-1', service: 'api', status: null });
    const hint = new AgentHint(agents, memoryLog().log);
    assert.deepEqual([...(await hint.changed())], [], 'baseline');
    fake.register({ id: 'web-2', service: 'web', status: null });
    assert.deepEqual([...(await hint.changed())], ['web']);
    assert.deepEqual([...(await hint.changed())], [], 'nothing since');
    fake.deregister('api-1');
    fake.register({ id: 'web-1', service: 'web', port: 4000 });
    assert.deepEqual([...(await hint.changed())].sort(), ['api', 'web']);
    fake.register({ id: 'db-1', service: 'db', viaCatalog: true });
    fake.register({ id: 'db-2', service: 'db', node: 'node-2' });
    assert.deepEqual([...(await hint.changed())], [], 'not the agent’s own');
  });

  test('an agent that refuses the read is not asked again; one that fails or answers garbage is, and the change is still named', async () => {
    const { log, has } = memoryLog();
    const hint = new AgentHint(agents, log);
    await hint.changed();
    fake.fail('/v1/agent/services', 'reset', 1);
    fake.register({ id: 'cache-1', service: 'cache', status: null });
    assert.deepEqual([...(await hint.changed())], [], 'unreachable: nothing to compare');
    assert.deepEqual([...(await hint.changed())], ['cache'], 'compared with the answer before the failure');
    fake.fail('/v1/agent/services', { status: 200, text: '<html>a proxy in the way</html>' }, 1);
    fake.register({ id: 'queue-1', service: 'queue', status: null });
    assert.deepEqual([...(await hint.changed())], [], 'an answer that is not an object: nothing to compare');
    assert.deepEqual([...(await hint.changed())], ['queue'], 'compared with the last answer that was');
    fake.fail('/v1/agent/services', { status: 403, text: 'Permission denied' });
    await hint.changed();
    const asked = fake.requests.filter((r) => r.path === '/v1/agent/services').length;
    fake.register({ id: 'cache-2', service: 'cache', status: null });
    assert.deepEqual([...(await hint.changed())], []);
    assert.equal(fake.requests.filter((r) => r.path === '/v1/agent/services').length, asked, 'asked again after a 403');
    assert.ok(has(/refuses to list its services/), 'said why');
    fake.clearFailures();
  });
});
