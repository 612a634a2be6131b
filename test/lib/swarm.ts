import { repoRoot, run, type Exec } from './compose.js';

/** One Docker-in-Docker node of the test swarm (scripts/swarm/up.sh). */
export interface SwarmNode {
  /** Container name on the host, and the node's hostname in the swarm. */
  name: string;
  /** Its address on the host's bridge network swarm-test-net. */
  ip: string;
  /** Its Docker API, a Unix socket on the host. */
  sock: string;
}

/** One running task of a swarm service. */
export interface Task {
  id: string;
  node: string;
  containerId: string;
  /** Its address on the stack's overlay mesh ('' when not on it). */
  ip: string;
}

const script = (name: string) => `${repoRoot}scripts/swarm/${name}`;

/**
 * The test swarm and the stack deployed on it. Every Docker call goes to a node's own socket;
 * the only host-level objects are the ones scripts/swarm/up.sh labels and down.sh removes.
 */
export class TestSwarm {
  nodes: SwarmNode[] = [];

  constructor(
    readonly stack = 'consul-stack',
    /** Node whose manager takes the swarm commands; never the one the kill test stops. */
    readonly control = 0,
  ) {}

  static async up(images: string[]): Promise<TestSwarm> {
    const s = new TestSwarm();
    const { stdout } = await run('bash', [script('up.sh'), ...images], { timeoutMs: 600_000 });
    s.nodes = stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .map(([name, ip, sock]) => ({ name: name!, ip: ip!, sock: sock! }));
    if (s.nodes.length < 3 || s.nodes.some((n) => !n.sock?.startsWith('unix://'))) throw new Error(`up.sh printed: ${stdout}`);
    return s;
  }

  static down(): Promise<Exec> {
    return run('bash', [script('down.sh')], { timeoutMs: 180_000 });
  }

  node(name: string): SwarmNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** `docker ARGS` against one node's engine (default: the control manager). */
  docker(args: string[], node: SwarmNode = this.nodes[this.control]!, timeoutMs = 60_000): Promise<Exec> {
    return run('docker', ['-H', node.sock, ...args], { timeoutMs });
  }

  deploy(env: Record<string, string>): Promise<Exec> {
    return run('bash', [script('deploy.sh'), this.stack], {
      timeoutMs: 180_000,
      env: { ...process.env, ...env, DOCKER_HOST: this.nodes[this.control]!.sock },
    });
  }

  svc(name: string): string {
    return `${this.stack}_${name}`;
  }

  /** Running tasks of a service (desired state running, current state running), with node and overlay address. */
  async tasks(service: string): Promise<Task[]> {
    const { stdout } = await this.docker(['service', 'ps', '-q', '--no-trunc', '-f', 'desired-state=running', this.svc(service)]);
    const ids = [...new Set(stdout.split('\n').map((s) => s.trim()).filter(Boolean))];
    if (ids.length === 0) return [];
    const [{ stdout: js }, names] = await Promise.all([this.docker(['inspect', '--type', 'task', ...ids]), this.nodeNames()]);
    const mesh = this.svc('mesh');
    return (JSON.parse(js) as Array<Record<string, any>>)
      .filter((t) => t.Status?.State === 'running')
      .map((t) => {
        const att = ((t.NetworksAttachments ?? []) as Array<{ Network: { Spec: { Name: string } }; Addresses: string[] }>).find((a) => a.Network.Spec.Name === mesh);
        return {
          id: t.ID as string,
          node: names.get(t.NodeID as string) ?? (t.NodeID as string),
          containerId: (t.Status?.ContainerStatus?.ContainerID as string) ?? '',
          ip: att?.Addresses[0]?.split('/')[0] ?? '',
        };
      });
  }

  async nodeNames(): Promise<Map<string, string>> {
    const { stdout } = await this.docker(['node', 'ls', '--format', '{{.ID}} {{.Hostname}}']);
    return new Map(stdout.trim().split('\n').map((l) => l.trim().split(' ') as [string, string]));
  }

  /** GET a Consul HTTP API path from inside the consul-agent container on `node` (no port is published). */
  async consul<T>(path: string, node: SwarmNode = this.nodes[this.control]!): Promise<T> {
    return this.consulAt<T>('127.0.0.1', path, node);
  }

  /**
   * Each running Consul server's own view of raft (from its /v1/agent/self), not one agent's gossip
   * view: a rejoined server can stay "leaving" in some agents' member lists while raft has it as a
   * follower (hashicorp/consul#13379, #6882). A server that does not answer is `unreachable`.
   */
  async raftServers(): Promise<RaftServer[]> {
    const tasks = await this.tasks('consul-server');
    return Promise.all(tasks.map(async (t): Promise<RaftServer> => {
      try {
        const self = await this.consulAt<{ Stats: { raft: Record<string, string>; consul: Record<string, string> } }>(t.ip, '/v1/agent/self');
        const { state = '', last_contact: lc = 'never' } = self.Stats.raft;
        return { node: t.node, ip: t.ip, state, lastContactMs: state === 'Leader' ? 0 : goDurationMs(lc), leader: self.Stats.consul.leader_addr ?? '' };
      } catch {
        return { node: t.node, ip: t.ip, state: 'unreachable', lastContactMs: Infinity, leader: '' };
      }
    }));
  }

  /** GET a Consul HTTP API path of the agent or server at `ip` (an overlay address), from the consul-agent container on `node`. */
  async consulAt<T>(ip: string, path: string, node: SwarmNode = this.nodes[this.control]!): Promise<T> {
    const { stdout: ids } = await this.docker(['ps', '-q', '-f', `label=com.docker.swarm.service.name=${this.svc('consul-agent')}`], node);
    const id = ids.trim().split('\n')[0];
    if (!id) throw new Error(`no consul-agent on ${node.name}`);
    const { stdout } = await this.docker(['exec', id, 'curl', '-fsS', '--max-time', '5', `http://${ip}:8500${path}`], node, 20_000);
    return JSON.parse(stdout) as T;
  }
}

export interface RaftServer {
  node: string;
  ip: string;
  /** raft state as the server reports it: Leader, Follower, Candidate; or unreachable */
  state: string;
  lastContactMs: number;
  leader: string;
}

/** A server in the quorum: the leader, or a follower that knows the leader and heard from it within 2 s. */
export const inQuorum = (s: RaftServer): boolean =>
  s.state === 'Leader' || (s.state === 'Follower' && s.leader !== '' && s.lastContactMs <= 2_000);

/** Go's time.Duration text ("1m2.5s", "34.1ms", "800µs") in ms; "never" and anything else unparsable is Infinity. */
function goDurationMs(text: string): number {
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, 'µs': 1e-3, us: 1e-3, ns: 1e-6 };
  if (text === '0') return 0;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|µs|us|ns)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) return Infinity;
  return parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2]!]!, 0);
}
