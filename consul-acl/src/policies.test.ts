import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentPolicy, isRoleToken, rolePolicies, tokenDescription } from './policies.js';

// The policies consul-acl-init writes into Consul: what each role may do is security-relevant, so
// the rules are pinned here character for character (test/integration/consul-acl.test.ts checks
// what a real Consul then allows and denies with them).
const READ = 'service_prefix "" {\n  policy = "read"\n}\nnode_prefix "" {\n  policy = "read"\n}\n';

test('rolePolicies: gateway, web and prometheus read services and nodes; one policy and token each', () => {
  const specs = rolePolicies({ servicePrefix: 'service-', serviceNames: ['gateway'] });
  assert.deepEqual(specs.map((s) => s.role), ['gateway', 'web', 'prometheus', 'registrator']);
  for (const [role, name] of [['gateway', 'consul-stack-gateway'], ['web', 'consul-stack-web'], ['prometheus', 'consul-stack-prometheus']] as const) {
    const s = specs.find((x) => x.role === role)!;
    assert.equal(s.policy.Name, name);
    assert.equal(s.policy.Rules, READ, role);
    assert.ok(isRoleToken(role, s.description), s.description);
  }
});

const registrator: Array<[what: string, prefix: string, names: string[], rules: string, description: string]> = [
  [
    'the compose defaults',
    'service-',
    ['gateway'],
    'service_prefix "service-" {\n  policy = "write"\n}\nservice "gateway" {\n  policy = "write"\n}\n',
    'registrator: register/deregister services named service-*, gateway',
  ],
  ['no exact names', 'app-', [], 'service_prefix "app-" {\n  policy = "write"\n}\n', 'registrator: register/deregister services named app-*'],
  [
    'two exact names',
    'service-',
    ['gateway', 'admin'],
    'service_prefix "service-" {\n  policy = "write"\n}\nservice "gateway" {\n  policy = "write"\n}\nservice "admin" {\n  policy = "write"\n}\n',
    'registrator: register/deregister services named service-*, gateway, admin',
  ],
  // an empty prefix is a write on every service: allowed, the operator asked for it
  ['an empty prefix', '', [], 'service_prefix "" {\n  policy = "write"\n}\n', 'registrator: register/deregister services named *'],
  // names are HCL strings: a quote cannot end the rule early
  ['a name with a quote', 'service-', ['a"b'], 'service_prefix "service-" {\n  policy = "write"\n}\nservice "a\\"b" {\n  policy = "write"\n}\n', 'registrator: register/deregister services named service-*, a"b'],
];

for (const [what, prefix, names, rules, description] of registrator) {
  test(`rolePolicies: registrator writes only its names (${what})`, () => {
    const s = rolePolicies({ servicePrefix: prefix, serviceNames: names }).find((x) => x.role === 'registrator')!;
    assert.equal(s.policy.Name, 'consul-stack-registrator');
    assert.equal(s.policy.Rules, rules);
    assert.equal(s.policy.Description, description);
    assert.equal(s.description, tokenDescription('registrator', `registers ${prefix}* and ${names.join(', ') || 'no other name'}`));
  });
}

const agents: Array<[node: string, policyName: string]> = [
  ['consul-server-1', 'consul-stack-agent-consul-server-1'],
  ['node_2', 'consul-stack-agent-node_2'],
  // policy names allow letters, digits, - and _ only; the rule keeps the real node name
  ['host.example com', 'consul-stack-agent-host-example-com'],
  ['n'.repeat(150), `consul-stack-agent-${'n'.repeat(100)}`],
];

for (const [node, policyName] of agents) {
  test(`agentPolicy(${JSON.stringify(node.length > 20 ? `${node.slice(0, 8)}…(${node.length})` : node)}): writes its own node only`, () => {
    const s = agentPolicy(node);
    assert.equal(s.role, `agent-${node}`);
    assert.equal(s.policy.Name, policyName);
    assert.equal(s.policy.Rules, `node ${JSON.stringify(node)} {\n  policy = "write"\n}\nservice_prefix "" {\n  policy = "read"\n}\n`);
    assert.equal(s.description, `consul-stack agent-${node}: agent token of node ${node}`);
    assert.ok(isRoleToken(s.role, s.description));
  });
}

const roleTokens: Array<[role: string, description: string | undefined, mine: boolean]> = [
  ['gateway', 'consul-stack gateway: reads services, nodes and health to route', true],
  ['gateway', 'consul-stack web: reads services, nodes and health for /call', false],
  // a prefix of another role's name is not that role
  ['agent-a', 'consul-stack agent-ab: agent token of node ab', false],
  ['gateway', 'Bootstrap Token (Global Management)', false],
  ['gateway', '', false],
  ['gateway', undefined, false],
];

for (const [role, description, mine] of roleTokens) {
  test(`isRoleToken(${role}, ${JSON.stringify(description)}) → ${mine}`, () => {
    assert.equal(isRoleToken(role, description), mine);
  });
}
