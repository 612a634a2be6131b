/**
 * The stack's Consul ACL policies: one per role, least privilege (README "Stack security").
 * Rules are HCL strings, the format Consul 1.4+ accepts unchanged through 1.22.
 */

export interface AclPolicySpec {
  Name: string;
  Description: string;
  Rules: string;
}

/** A role gets one token with one policy; `tokenOwner` is the uid that may read its token file. */
export interface RoleSpec {
  role: string;
  policy: AclPolicySpec;
  description: string;
}

export interface StackAclOptions {
  /** registrator may register services whose names start with this ("service-"). */
  servicePrefix: string;
  /** ...and these exact names (the gateway registers itself as "gateway"). */
  serviceNames: readonly string[];
}

/** Discovery reads: every service's instances and health, every node (node health is part of routability). */
const READ_SERVICES_AND_NODES = `service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
`;

const hclString = (s: string) => JSON.stringify(s);

export const tokenDescription = (role: string, what: string) => `consul-stack ${role}: ${what}`;
export const isRoleToken = (role: string, description: string | undefined) =>
  (description ?? '').startsWith(`consul-stack ${role}:`);

export function rolePolicies(o: StackAclOptions): RoleSpec[] {
  const registratorRules = [
    `service_prefix ${hclString(o.servicePrefix)} {\n  policy = "write"\n}\n`,
    ...o.serviceNames.map((n) => `service ${hclString(n)} {\n  policy = "write"\n}\n`),
  ].join('');
  return [
    {
      role: 'gateway',
      description: tokenDescription('gateway', 'reads services, nodes and health to route'),
      policy: { Name: 'consul-stack-gateway', Description: 'gateway: read services, nodes, health', Rules: READ_SERVICES_AND_NODES },
    },
    {
      role: 'web',
      description: tokenDescription('web', 'reads services, nodes and health for /call'),
      policy: { Name: 'consul-stack-web', Description: 'web-service /call: read services, nodes, health', Rules: READ_SERVICES_AND_NODES },
    },
    {
      role: 'prometheus',
      description: tokenDescription('prometheus', 'reads the catalog to find scrape targets'),
      policy: { Name: 'consul-stack-prometheus', Description: 'prometheus consul_sd: read services, nodes, health', Rules: READ_SERVICES_AND_NODES },
    },
    {
      role: 'registrator',
      description: tokenDescription('registrator', `registers ${o.servicePrefix}* and ${o.serviceNames.join(', ') || 'no other name'}`),
      policy: {
        Name: 'consul-stack-registrator',
        Description: `registrator: register/deregister services named ${o.servicePrefix}*${o.serviceNames.map((n) => `, ${n}`).join('')}`,
        Rules: registratorRules,
      },
    },
  ];
}

/** Policy names allow letters, digits, - and _ only. */
const policySafe = (node: string) => node.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 100);

/**
 * An agent's own token: write its node (node info, coordinates, its checks) and read services
 * (anti-entropy). One per agent, so a stolen agent token speaks for one node only.
 */
export function agentPolicy(node: string): RoleSpec {
  return {
    role: `agent-${node}`,
    description: tokenDescription(`agent-${node}`, `agent token of node ${node}`),
    policy: {
      Name: `consul-stack-agent-${policySafe(node)}`,
      Description: `agent ${node}: write its node, read services`,
      Rules: `node ${hclString(node)} {\n  policy = "write"\n}\nservice_prefix "" {\n  policy = "read"\n}\n`,
    },
  };
}
