import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.js';
import { logBug } from './emit.js';
import type { ConsulError } from './errors.js';
import type { HealthEntry } from './instances.js';
import type { QueryMeta } from './meta.js';
import { endpoints, type ConsulPool } from './pool.js';
import { readOnce, ReadError } from './read.js';

/** One instance as a node's catalog lists it. */
export interface NodeService {
  node: string;
  id: string;
  /** Lower-case service name. */
  service: string;
  modify: number;
}

/** The parts of /v1/catalog/node/<node> we read. */
interface NodeAnswer {
  Services?: Record<string, { ID?: string; Service?: string; ModifyIndex?: number }> | null;
}

export interface NodeScanSink {
  /** The entries behind each followed service's table row (undefined: not read yet). */
  entries(): Iterable<[key: string, entries: readonly HealthEntry[] | undefined]>;
  /**
   * Services whose instances differ from the catalog: the highest ModifyIndex
   * among their new or changed instances (a read older than that is behind),
   * or 0n when one went (its index is unknown: read from the leader).
   */
  changed(services: Map<string, bigint>): void;
  answered(meta: QueryMeta): void;
  failed(error: ConsulError, agent: string, what: string, attempt: number): void;
}

// Nodes read at once: with the long polls and the service reads, discovery's
// connections to its agent stay bounded whatever the catalog's size.
const CONCURRENCY = 3;

/**
 * Which services' instances changed, when the catalog's index moved: each
 * node's services (/v1/catalog/node/<node>, one read per node) compared with
 * the instances the table was built from (node, service id, ModifyIndex). It
 * finds what no check shows: an instance registered or deregistered without a
 * check, a changed address or tags, several services changed at once. Only
 * those services are read again, never all of them.
 *
 * A service write moves the nodes table's index, so a node list read behind
 * the catalog index `C` that caused the scan came from a server without the
 * change: the scan then reads from the leader. Coalesces: a scan asked for
 * while one runs runs once more afterwards, for the highest index asked.
 */
export class NodeScan {
  #running = false;
  #again = 0n;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #idle: Array<() => void> = [];

  constructor(
    private readonly pool: ConsulPool,
    private readonly opts: { backoffBaseMs: number; backoffMaxMs: number },
    private readonly sink: NodeScanSink,
    private readonly log: Logger,
  ) {}

  /** Scan for a catalog index of `index`. */
  scan(index: bigint): void {
    if (this.#stopped) return;
    if (this.#running) {
      if (index > this.#again || this.#again === 0n) this.#again = index > 0n ? index : 1n;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#running = true;
    void this.#run(index);
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

  async #run(index: bigint): Promise<void> {
    try {
      const found = await this.#read(index, false);
      if (this.#stopped) return;
      this.#attempt = 0;
      const changed = diffInstances(this.sink.entries(), found.services, found.nodes);
      if (changed.size > 0) {
        this.log.debug({ index: String(index), services: [...changed.keys()] }, 'node scan: instances changed');
        this.sink.changed(changed);
      }
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
      this.#running = false;
      const again = this.#again;
      this.#again = 0n;
      if (again > 0n && !this.#stopped) this.scan(again);
      else for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  async #read(index: bigint, fresh: boolean): Promise<{ services: NodeService[]; nodes: Set<string> }> {
    const list = await readOnce<Array<{ Node?: string }>>(this.pool, endpoints.catalogNodes(), fresh);
    this.sink.answered(list.meta);
    if (!fresh && list.meta.index < index) return this.#read(index, true); // a server behind the change
    const nodes = [...new Set((Array.isArray(list.body) ? list.body : []).map((n) => n?.Node ?? '').filter((n) => n !== ''))];
    const services: NodeService[] = [];
    const read = new Set<string>();
    let next = 0;
    const worker = async () => {
      while (next < nodes.length && !this.#stopped) {
        const node = nodes[next++]!;
        const r = await readOnce<NodeAnswer | null>(this.pool, endpoints.nodeServices(node), fresh);
        read.add(node);
        for (const s of Object.values(r.body?.Services ?? {}))
          if (s?.ID && s.Service) services.push({ node, id: s.ID, service: s.Service.toLowerCase(), modify: Number(s.ModifyIndex ?? 0) });
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, nodes.length) }, worker));
    return { services, nodes: read };
  }
}

/**
 * The services whose instances in the catalog (`found`, from the nodes in
 * `scanned`) differ from the entries the table was built from. Pure, for
 * table-driven tests. A service not read yet is left to its first read; an
 * instance whose catalog ModifyIndex is lower than the entry's is a catalog
 * answer behind the table, not a change.
 */
export function diffInstances(
  entries: Iterable<[key: string, entries: readonly HealthEntry[] | undefined]>,
  found: readonly NodeService[],
  scanned: ReadonlySet<string>,
): Map<string, bigint> {
  const bySvc = new Map<string, Map<string, number>>();
  for (const s of found) {
    let m = bySvc.get(s.service);
    if (!m) bySvc.set(s.service, (m = new Map()));
    m.set(`${s.node}\u0000${s.id}`, s.modify);
  }
  const out = new Map<string, bigint>();
  const note = (key: string, at: bigint) => {
    const was = out.get(key);
    out.set(key, was === 0n || at <= 0n ? 0n : was !== undefined && was > at ? was : at);
  };
  for (const [key, list] of entries) {
    if (!list) continue;
    const inCatalog = bySvc.get(key) ?? new Map<string, number>();
    const known = new Map<string, number>();
    for (const e of list) {
      const node = e.Node?.Node ?? '';
      const id = e.Service?.ID ?? '';
      if (node && id) known.set(`${node}\u0000${id}`, Number(e.Service?.ModifyIndex ?? 0));
    }
    for (const [inst, modify] of inCatalog) {
      const had = known.get(inst);
      if (had === undefined || modify > had) note(key, BigInt(modify > 0 ? modify : 0));
    }
    for (const inst of known.keys()) {
      const node = inst.slice(0, inst.indexOf('\u0000'));
      if (scanned.has(node) && !inCatalog.has(inst)) note(key, 0n);
    }
  }
  return out;
}
