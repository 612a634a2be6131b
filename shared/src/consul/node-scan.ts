import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.js';
import { AgentHint } from './agent-hint.js';
import { classifyConsulError, type ConsulError, type ConsulAgents, endpoints, logBug, type QueryMeta, rawEndpoints, ReadError, readOnce, readRaw } from './agents.js';
import { diffNode, type NodeService, nodesOf } from './changes.js';
import type { HealthEntry } from './instances.js';
import { NodeAnswers } from './node-answers.js';

/**
 * The node scan: whose instances changed. On a catalog move it reads every
 * node's services (the nodes that changed last first) and compares them with
 * the entries the table was built from (diffNode, changes.ts).
 */

export interface NodeScanSink {
  /** The entries behind each followed service's table row (undefined: not read yet). */
  entries(): Iterable<[key: string, entries: readonly HealthEntry[] | undefined]>;
  /**
   * Services whose instances differ from the catalog: the highest ModifyIndex
   * among their new or changed instances (a read older than that is behind),
   * or 0n when one went (its index is unknown: read from the leader).
   */
  changed(services: Map<string, bigint>): void;
  /**
   * Services the agent's own registrations say changed (AgentHint): worth a read now, decided by
   * its answer. Resolves once those reads are done, or given up on: the sweep waits for it.
   */
  suspected(services: Set<string>): Promise<void>;
  answered(meta: QueryMeta): void;
  failed(error: ConsulError, agent: string, what: string, attempt: number): void;
}

// Nodes read at once: with the long polls and the service reads, discovery's
// connections to its agent stay bounded whatever the catalog's size.
const CONCURRENCY = 3;
// Nodes remembered as recently changed, read first by the next scan.
const RECENT = 8;

/**
 * Which services' instances changed, when the catalog's index moved: each
 * node's services (/v1/catalog/node/<node>, one read per node, parsed only
 * where it differs from the node's last answer: node-answers.ts) compared with
 * the instances the table was built from (node, service id, ModifyIndex). It
 * finds what no check shows: an instance registered or deregistered without a
 * check, a changed address or tags, several services changed at once. Only
 * those services are read again, never all of them.
 *
 * A change is reported as soon as its node is read, not after the last node:
 * the nodes where changes were found last are read first (churn comes in
 * runs: a host being deployed to, a flapping service), the other known nodes
 * next, together with the node list, which adds new nodes and says which are
 * gone (their instances with them). A sweep none of whose answers reaches
 * the catalog index `C` that caused it came from a server without the change:
 * the scan then reads everything from the leader (#sweep says why no single
 * answer can tell, across Consul versions). Coalesces: a scan asked for while
 * one runs runs once more afterwards, for the highest index asked.
 */
export class NodeScan {
  #running = false;
  #again = 0n;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #idle: Array<() => void> = [];
  /** Nodes where changes were found, most recent first. */
  #recent: string[] = [];
  /** The nodes of the last node list. */
  #nodes: string[] = [];
  /** Each node's last answer: one that comes back the same is not parsed again. */
  #answers = new NodeAnswers();
  #hint: AgentHint;

  constructor(
    private readonly agents: ConsulAgents,
    private readonly opts: { backoffBaseMs: number; backoffMaxMs: number },
    private readonly sink: NodeScanSink,
    private readonly log: Logger,
  ) {
    this.#hint = new AgentHint(agents, log);
  }

  /** Before the first scan: what the agent holds now, for the first catalog move to be compared with. */
  start(): void {
    this.#hint.baseline().catch((err: unknown) => logBug(this.log, 'the agent hint', {}, err));
  }

  /** Scan for a catalog index of `index`. */
  scan(index: bigint): void {
    if (this.#stopped) return;
    if (this.#running) {
      if (index > this.#again || this.#again === 0n) this.#again = index > 0n ? index : 1n;
      // The agent is asked now, not after a sweep that may read thousands of instances.
      void this.#askAgent();
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#running = true;
    void this.#run(index, false);
  }

  /** Resolves once no scan runs or is queued. */
  idle(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** `hinted`: the agent was asked when this scan was (scan() during a sweep). */
  async #run(index: bigint, hinted: boolean): Promise<void> {
    try {
      if (!hinted) await this.#askAgent();
      if (this.#stopped) return;
      await this.#sweep(index, false);
      this.#attempt = 0;
    } catch (err) {
      if (this.#stopped) return;
      const e = err instanceof ReadError ? err : undefined;
      this.#attempt += 1;
      if (e) this.sink.failed(e.consul, e.agent, 'node scan', this.#attempt);
      else logBug(this.log, 'the node scan', {}, err);
      // Without it a change without checks could go unseen: try again (unless asked again meanwhile).
      if (this.#again === 0n) {
        this.#timer = setTimeout(() => this.scan(index), backoffDelay(this.#attempt - 1, this.opts.backoffBaseMs, this.opts.backoffMaxMs));
        this.#timer.unref();
      }
    } finally {
      const again = this.#again;
      this.#again = 0n;
      if (again > 0n && !this.#stopped) void this.#run(again, true); // still running
      else {
        this.#running = false;
        for (const resolve of this.#idle.splice(0)) resolve();
      }
    }
  }

  /**
   * The agent's hint: before a sweep, on its own (beside the node reads it
   * would contend with them: both are Consul encoding every instance of a big
   * node), and the reads it asks for before the sweep too; during one, at
   * once (waiting for it would cost more). A bug in it must not cost the sweep.
   */
  async #askAgent(): Promise<void> {
    try {
      const services = await this.#hint.changed();
      if (services.size > 0 && !this.#stopped) {
        this.log.debug({ services: [...services] }, 'agent hint: registrations changed');
        // The sweep waits for these reads: a big node's answer is parsed in one go and would
        // hold up their answers, which are the change itself.
        await this.sink.suspected(services);
      }
    } catch (err) {
      logBug(this.log, 'the agent hint', {}, err);
    }
  }

  /**
   * Reads every node (`fresh`: from the leader), reporting each node's changes as it answers.
   * The sweep is behind the change (a ?stale server without it) when no answer in it reaches
   * `index`: on 1.16 the node list's index moves with every service write, on 1.8 only the node
   * reads' do (the list's stays at the nodes table's), so neither alone can tell; then the sweep
   * runs again from the leader.
   */
  async #sweep(index: bigint, fresh: boolean): Promise<void> {
    const queue = [...new Set([...this.#recent, ...this.#nodes])];
    const queued = new Set(queue);
    const read = new Set<string>();
    let listed: Set<string> | undefined;
    let reached = 0n;
    const saw = (meta: QueryMeta) => {
      if (meta.index > reached) reached = meta.index;
    };
    const listing = readOnce<Array<{ Node?: string }>>(this.agents, endpoints.catalogNodes(), fresh).then((list) => {
      this.sink.answered(list.meta);
      saw(list.meta);
      const names = [...new Set((Array.isArray(list.body) ? list.body : []).map((n) => n?.Node ?? '').filter((n) => n !== ''))];
      listed = new Set(names);
      this.#nodes = names;
      this.#answers.keepOnly(listed);
      for (const n of names) if (!queued.has(n)) queued.add(n), queue.push(n);
    });
    const take = (): string | undefined => {
      while (queue.length > 0) {
        const node = queue.shift()!;
        if (!read.has(node) && (listed === undefined || listed.has(node))) return node;
      }
      return undefined;
    };
    const worker = async () => {
      while (!this.#stopped) {
        const node = take();
        if (node === undefined) {
          if (listed !== undefined) return;
          await listing; // the list may add nodes
          continue;
        }
        read.add(node);
        const r = await readRaw(this.agents, rawEndpoints.nodeServices(node), fresh);
        if (this.#stopped) return;
        saw(r.meta);
        const changed = new Map<string, bigint>();
        diffNode(this.sink.entries(), node, this.#servicesOf(node, r.body, r.meta.agent), changed);
        this.#report(node, changed, index);
      }
    };
    await Promise.all([listing, ...Array.from({ length: CONCURRENCY }, worker)]);
    if (this.#stopped) return;
    if (!fresh && reached < index) return this.#sweep(index, true);
    const gone = new Map<string, bigint>();
    const entries = [...this.sink.entries()];
    for (const node of nodesOf(entries)) if (!listed!.has(node)) diffNode(entries, node, [], gone);
    this.#report(undefined, gone, index);
  }

  /** A node's answer as its instances; one that is not JSON failed as a read does (a proxy in the way). */
  #servicesOf(node: string, text: Buffer, agent: string): NodeService[] {
    try {
      return this.#answers.services(node, text);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      throw new ReadError(classifyConsulError(new Error(`the answer for node ${node} is not JSON: ${err.message}`)), agent);
    }
  }

  #report(node: string | undefined, changed: Map<string, bigint>, index: bigint): void {
    if (changed.size === 0) return;
    if (node !== undefined) this.#recent = [node, ...this.#recent.filter((n) => n !== node)].slice(0, RECENT);
    this.log.debug({ index: String(index), node, services: [...changed.keys()] }, 'node scan: instances changed');
    this.sink.changed(changed);
  }
}
