import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A scripted stand-in for a Consul agent's HTTP API, for unit tests that need
 * answers a real Consul gives only under faults: a lagging server (an index
 * that goes back, a high X-Consul-LastContact), no leader, a 403, a reset.
 *
 * It keeps a small catalog (instances with one check each, nodes with
 * serfHealth) and answers, with Consul's headers and blocking semantics:
 * /v1/catalog/services, /v1/health/service/<name>, /v1/health/state/any
 * (with the `Status != "passing"` filter, and the checks it names), /v1/catalog/service/<name>,
 * /v1/catalog/nodes and /v1/catalog/node/<node> (with 1.16's per-node index),
 * /v1/agent/services (the instances on `agentNode` not written through the catalog API),
 * /v1/status/leader and /v1/status/peers.
 * Every write bumps one raft index, as Consul does; services, checks and each
 * service keep the index of their last write.
 */
export interface FakeInstance {
  id: string;
  service: string;
  node?: string;
  address?: string;
  port?: number;
  /** Status of its one check; null: registered without any check. */
  status?: string | null;
  interval?: string;
  /** Written through /v1/catalog/register: in the catalog, not in any agent's own registrations. */
  viaCatalog?: boolean;
}

interface Model {
  index: number;
  servicesIndex: number;
  checksIndex: number;
  /** The nodes table's index: moved by every service write too (Consul 1.16's catalogInsertService). */
  nodesIndex: number;
  serviceIndex: Map<string, number>;
  /** Each node's own index (/v1/catalog/node/<node>'s X-Consul-Index). */
  nodeIndex: Map<string, number>;
  instances: Map<string, Required<Omit<FakeInstance, 'interval' | 'viaCatalog'>> & { interval?: string; viaCatalog?: boolean; checkModify: number; modify: number }>;
  nodes: Map<string, { serf: string; modify: number }>;
}

export interface StaleView {
  /** Answer ?stale reads from this frozen model (a lagging server) instead of the live one. */
  frozen?: Model;
  /** Only ?stale reads of paths starting with one of these come from `frozen` (default: every path). */
  paths?: string[];
  lastContactMs?: number;
  knownLeader?: boolean;
}

type Failure = { status: number; text: string } | 'reset';

export class FakeConsul {
  /** Every request: its path, query, time and X-Consul-Token. */
  readonly requests: Array<{ path: string; query: URLSearchParams; at: number; token?: string }> = [];
  /** How ?stale reads answer; fresh (non-stale) reads always see the live model. */
  stale: StaleView = {};
  /** Non-stale reads fail with 500 "No cluster leader" while set. */
  noLeader = false;
  /**
   * Whose X-Consul-Index the node reads carry. '1.16': a service write moves the nodes table's
   * index too (/v1/catalog/nodes), and /v1/catalog/node/<node> carries the node's own. '1.8'
   * (measured on 1.8.7): /v1/catalog/nodes stays at the nodes table's index (node writes only),
   * and /v1/catalog/node/<node> carries the highest of the nodes and services tables'.
   */
  indexes: '1.16' | '1.8' = '1.16';
  /** The node of the agent this fake is: /v1/agent/services lists what was registered on it (not viaCatalog). */
  agentNode = 'node-1';
  #model: Model = {
    index: 10, servicesIndex: 10, checksIndex: 10, nodesIndex: 10, serviceIndex: new Map(), nodeIndex: new Map(), instances: new Map(), nodes: new Map(),
  };
  #server: http.Server;
  #sockets = new Set<Socket>();
  #waiting = new Set<() => void>();
  #failures: Array<{ prefix: string; failure: Failure; left: number }> = [];
  #slow: Array<{ prefix: string; ms: number; only: 'fresh' | 'stale' | 'any' }> = [];
  port = 0;

  constructor() {
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  get index(): number {
    return this.#model.index;
  }

  /** Open TCP connections from clients. */
  get connections(): number {
    return this.#sockets.size;
  }

  async close(): Promise<void> {
    for (const wake of this.#waiting) wake();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  /** Plain (non-blocking) reads of paths starting with `prefix` answer `ms` late, with the state as it was when they arrived: a slow leader. */
  slow(prefix: string, ms: number, only: 'fresh' | 'stale' | 'any' = 'any'): void {
    this.#slow.push({ prefix, ms, only });
  }

  /** Requests to paths starting with `prefix` fail `times` times (or until cleared). */
  fail(prefix: string, failure: Failure, times = Infinity): void {
    this.#failures.push({ prefix, failure, left: times });
  }

  clearFailures(): void {
    this.#failures = [];
    this.#slow = [];
  }

  /** A copy of the catalog as it is now, to answer stale reads from later. */
  snapshot(): Model {
    const m = this.#model;
    return {
      ...m,
      serviceIndex: new Map(m.serviceIndex),
      nodeIndex: new Map(m.nodeIndex),
      instances: new Map([...m.instances].map(([k, v]) => [k, { ...v }])),
      nodes: new Map([...m.nodes].map(([k, v]) => [k, { ...v }])),
    };
  }

  register(i: FakeInstance): void {
    const m = this.#model;
    const idx = ++m.index;
    const node = i.node ?? 'node-1';
    if (!m.nodes.has(node)) m.nodes.set(node, { serf: 'passing', modify: idx });
    const status = i.status === undefined ? 'passing' : i.status;
    m.instances.set(i.id, {
      id: i.id, service: i.service, node, address: i.address ?? '127.0.0.1', port: i.port ?? 3000, status, interval: i.interval, viaCatalog: i.viaCatalog, checkModify: idx, modify: idx,
    });
    m.servicesIndex = idx;
    if (this.indexes === '1.16') m.nodesIndex = idx;
    m.nodeIndex.set(node, idx);
    if (status !== null) m.checksIndex = idx;
    m.serviceIndex.set(i.service, idx);
    this.#changed();
  }

  deregister(id: string): void {
    const m = this.#model;
    const inst = m.instances.get(id);
    if (!inst) return;
    const idx = ++m.index;
    m.instances.delete(id);
    m.servicesIndex = idx;
    if (this.indexes === '1.16') m.nodesIndex = idx;
    m.nodeIndex.set(inst.node, idx);
    m.checksIndex = idx; // Consul bumps the checks table on a deregistration, with or without checks
    m.serviceIndex.set(inst.service, idx);
    this.#changed();
  }

  setStatus(id: string, status: string): void {
    const m = this.#model;
    const inst = m.instances.get(id);
    if (!inst) throw new Error(`no instance ${id}`);
    const idx = ++m.index;
    inst.status = status;
    inst.checkModify = idx;
    m.checksIndex = idx;
    m.nodeIndex.set(inst.node, idx);
    m.serviceIndex.set(inst.service, idx);
    this.#changed();
  }

  setNode(node: string, serf: string): void {
    const m = this.#model;
    const idx = ++m.index;
    m.nodes.set(node, { serf, modify: idx });
    m.checksIndex = idx;
    m.nodesIndex = idx;
    m.nodeIndex.set(node, idx);
    for (const i of m.instances.values()) if (i.node === node) m.serviceIndex.set(i.service, idx);
    this.#changed();
  }

  /** Replace the whole catalog with another (a restored snapshot: indexes go back). */
  restore(model: Model): void {
    this.#model = model;
    this.#changed();
  }

  #changed(): void {
    for (const wake of [...this.#waiting]) wake();
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    const token = req.headers['x-consul-token'];
    this.requests.push({ path, query: url.searchParams, at: Date.now(), ...(typeof token === 'string' ? { token } : {}) });
    const failure = this.#failures.find((f) => path.startsWith(f.prefix) && f.left > 0);
    if (failure) {
      failure.left -= 1;
      if (failure.failure === 'reset') {
        req.socket.destroy();
        return;
      }
      res.writeHead(failure.failure.status, { 'Content-Type': 'text/plain' });
      res.end(failure.failure.text);
      return;
    }
    const stale = url.searchParams.has('stale');
    if (!stale && this.noLeader) {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('No cluster leader');
      return;
    }
    const lagging = stale && this.stale.frozen !== undefined && (this.stale.paths?.some((p) => path.startsWith(p)) ?? true);
    const view = () => (lagging && this.stale.frozen ? this.stale.frozen : this.#model);
    const wanted = Number(url.searchParams.get('index') ?? 0);
    const waitMs = parseWait(url.searchParams.get('wait'));
    let answer = this.#answer(path, view(), url.searchParams);
    if (!answer) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    if (wanted > 0 && answer.index === wanted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#waiting.delete(check);
          req.socket.off('close', done); // a kept-alive socket carries many long polls
          resolve();
        };
        const check = () => {
          const a = this.#answer(path, view(), url.searchParams);
          if (!a || a.index !== wanted) done();
        };
        const timer = setTimeout(done, waitMs);
        this.#waiting.add(check);
        req.socket.once('close', done);
      });
      if (req.socket.destroyed) return;
      answer = this.#answer(path, view(), url.searchParams)!;
    }
    const slow = wanted === 0 ? this.#slow.find((x) => path.startsWith(x.prefix) && (x.only === 'any' || (x.only === 'stale') === stale)) : undefined;
    if (slow) {
      await new Promise((r) => setTimeout(r, slow.ms));
      if (req.socket.destroyed) return;
    }
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'X-Consul-Index': String(answer.index),
      'X-Consul-KnownLeader': stale && this.stale.knownLeader === false ? 'false' : 'true',
      'X-Consul-LastContact': String(stale ? (this.stale.lastContactMs ?? 0) : 0),
    };
    res.writeHead(200, headers);
    res.end(JSON.stringify(answer.body));
  }

  #answer(path: string, m: Model, q: URLSearchParams): { index: number; body: unknown } | undefined {
    if (path === '/v1/catalog/services') {
      const body: Record<string, string[]> = { consul: [] };
      for (const i of m.instances.values()) body[i.service] = [];
      return { index: m.servicesIndex, body };
    }
    if (path === '/v1/health/state/any') {
      let checks = [
        ...[...m.nodes].map(([node, n]) => ({ Node: node, CheckID: 'serfHealth', Status: n.serf, ServiceID: '', ServiceName: '', ModifyIndex: n.modify })),
        ...[...m.instances.values()]
          .filter((i) => i.status !== null)
          .map((i) => ({ Node: i.node, CheckID: `service:${i.id}`, Status: i.status, ServiceID: i.id, ServiceName: i.service, ModifyIndex: i.checkModify })),
      ];
      const filter = q.get('filter');
      const named = filter ? parseFeedFilter(filter) : undefined;
      if (named) checks = checks.filter((c) => c.Status !== 'passing' || named.has(`${c.Node}\u0000${c.CheckID}`));
      else if (filter) return { index: m.checksIndex, body: { error: `fake does not know filter ${filter}` } };
      return { index: m.checksIndex, body: checks };
    }
    const svc = /^\/v1\/health\/service\/([^/]+)$/.exec(path);
    if (svc) {
      const name = decodeURIComponent(svc[1]!);
      const body = [...m.instances.values()]
        .filter((i) => i.service.toLowerCase() === name.toLowerCase()) // Consul matches names case-insensitively
        .map((i) => ({
          Node: { Node: i.node, Address: '127.0.0.1' },
          Service: { ID: i.id, Service: i.service, Address: i.address, Port: i.port, Tags: [], ModifyIndex: i.modify },
          Checks: [
            { Node: i.node, CheckID: 'serfHealth', Status: m.nodes.get(i.node)?.serf ?? 'passing', ServiceID: '', ModifyIndex: m.nodes.get(i.node)?.modify ?? 0 },
            ...(i.status === null ? [] : [{ Node: i.node, CheckID: `service:${i.id}`, Status: i.status, ServiceID: i.id, Interval: i.interval ?? '', ModifyIndex: i.checkModify }]),
          ],
        }));
      const own = [...m.serviceIndex].find(([n]) => n.toLowerCase() === name.toLowerCase());
      return { index: own?.[1] ?? m.servicesIndex, body };
    }
    if (/^\/v1\/catalog\/service\/[^/]+$/.test(path)) return { index: m.servicesIndex, body: [] };
    // The raft status reads (the gateway's dashboard): one server, leading.
    if (path === '/v1/status/leader') return { index: 0, body: '127.0.0.1:8300' };
    if (path === '/v1/status/peers') return { index: 0, body: ['127.0.0.1:8300'] };
    if (path === '/v1/agent/services') {
      const body: Record<string, unknown> = {};
      for (const i of m.instances.values())
        if (i.node === this.agentNode && !i.viaCatalog) body[i.id] = { ID: i.id, Service: i.service, Address: i.address, Port: i.port, Tags: [], Meta: {} };
      return { index: 0, body };
    }
    if (path === '/v1/catalog/nodes') return { index: m.nodesIndex, body: [...m.nodes.keys()].map((Node) => ({ Node, Address: '127.0.0.1' })) };
    const node = /^\/v1\/catalog\/node\/([^/]+)$/.exec(path);
    if (node) {
      const name = decodeURIComponent(node[1]!);
      if (!m.nodes.has(name)) return { index: m.nodesIndex, body: null };
      const services: Record<string, unknown> = {};
      for (const i of m.instances.values())
        if (i.node === name) services[i.id] = { ID: i.id, Service: i.service, Address: i.address, Port: i.port, Tags: [], ModifyIndex: i.modify };
      const index = this.indexes === '1.8' ? Math.max(m.servicesIndex, m.nodesIndex) : (m.nodeIndex.get(name) ?? m.nodesIndex);
      return { index, body: { Node: { Node: name, Address: '127.0.0.1' }, Services: services } };
    }
    return undefined;
  }
}

/**
 * The one filter discovery sends: `Status != "passing"`, then any number of
 * ` or (Node == "n" and CheckID == "c")`. Returns the named checks (node NUL
 * id), undefined for any other filter.
 */
function parseFeedFilter(filter: string): Set<string> | undefined {
  const head = 'Status != "passing"';
  if (!filter.startsWith(head)) return undefined;
  const named = new Set<string>();
  const clause = / or \(Node == "([^"]*)" and CheckID == "([^"]*)"\)/y;
  clause.lastIndex = head.length;
  while (clause.lastIndex < filter.length) {
    const m = clause.exec(filter);
    if (!m) return undefined;
    named.add(`${m[1]}\u0000${m[2]}`);
  }
  return named;
}

function parseWait(v: string | null): number {
  const m = /^(\d+)ms$/.exec(v ?? '');
  return m ? Number(m[1]) : 300_000;
}
