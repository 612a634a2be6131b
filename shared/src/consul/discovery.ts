import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { emptyTable, retainServices, type RouteTable, setService } from '../table.js';
import { type ConsulError, type ConsulAgents, guard, type QueryMeta } from './agents.js';
import { type ConsulState, ConsulStatus, LeaderProbe } from './health.js';
import type { Instance } from './instances.js';
import type { ReconcileView } from './reads.js';
import { ServiceWatches, type TrackedServiceView } from './service.js';
import { ServiceSync } from './sync.js';
import { CatalogFollower } from './watch.js';

export type { ConsulState };
export type DiscoveryState = ConsulState & { reconcile: ReconcileView };

export interface DiscoveryOptions {
  /** Consul `wait` for blocking queries (ms). */
  waitMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Lower-case service names that are never routed. */
  excluded: ReadonlySet<string>;
  /** Shortest hold of a sudden "no instances" / "no services" answer (ms; 0: believed at once). */
  emptyConfirmMs: number;
  /** Above this X-Consul-LastContact (ms) discovery is degraded, and answers can't take instances away on their own. */
  staleAfterMs: number;
  /** How often to ask for the raft leader (ms; 0: never). */
  probeIntervalMs: number;
  /** How often every followed service is read from the leader to catch a missed change (ms; 0: never). */
  reconcileIntervalMs: number;
}

/** The reconciliation's findings, in state(). */
export type { ReconcileView };

// How long after a correction /_gateway/health names it among its reasons.
const CORRECTION_SHOWN_MS = 60_000;

// Failing services named in state().reasons; the rest are counted.
const REASONS_LISTED = 5;

/**
 * The Consul side of routing, folded into one immutable RouteTable. It never
 * calls Consul on behalf of a request, and on any Consul trouble it keeps the
 * last good table and says so in state(). A facade over one module per stage:
 *
 * - agents.ts: the agents, their failover and every HTTP call to Consul;
 * - watch.ts + sync.ts: follow every service in the catalog (the gateway),
 *   over a handful of connections whatever the catalog's size (changes.ts
 *   decides what changed, reads.ts reads it);
 * - service.ts: one service's answers into the table, and the watches of
 *   single services (web-service's /call);
 * - instances.ts: what an answer makes routable (trust, holds);
 * - health.ts: Consul's own health, for /_gateway/health.
 *
 * Events: 'change' (table) whenever the table changed; 'synced' once;
 * 'applied' (service key, ms): a change Consul showed for a service already
 * followed reached the table ms after its answer arrived (discovery latency,
 * for metrics; a newly listed service's first read is not timed).
 */
export class Discovery extends EventEmitter {
  #table: RouteTable = emptyTable;
  #status: ConsulStatus;
  #catalog: CatalogFollower | undefined;
  #sync: ServiceSync | undefined;
  #probe: LeaderProbe | undefined;
  #watches: ServiceWatches | undefined;
  /** Keys /call looked up: kept in the table whatever the catalog says. */
  #looked = new Set<string>();
  #catalogNames = new Set<string>();
  #syncedAt: Date | null = null;
  #stopped = false;

  constructor(
    private readonly agents: ConsulAgents,
    private readonly opts: DiscoveryOptions,
    private readonly log: Logger,
  ) {
    super();
    this.#status = new ConsulStatus(log, opts.staleAfterMs);
  }

  get table(): RouteTable {
    return this.#table;
  }

  /** The catalog answered and every service in it answered, or failed for good or for a while. */
  get synced(): boolean {
    return this.#syncedAt !== null;
  }

  get syncedAt(): Date | null {
    return this.#syncedAt;
  }

  /** Follow every service in the catalog (what the gateway does). */
  watchCatalog(): this {
    if (this.#catalog || this.#stopped) return this;
    const status = this.#status;
    const answered = (meta: QueryMeta, what?: string) => status.answered(meta, what);
    const progressed = () => this.#checkSynced();
    this.#sync = new ServiceSync(this.agents, this.opts, {
      current: (key) => this.#table.services.get(key),
      apply: (key, instances) => this.#setService(key, instances),
      answered: (meta) => answered(meta),
      failed: (e, agent, what, attempt) => status.failed(e, agent, what, attempt),
      progressed,
      applied: (key, ms) => this.#emit('applied', key, ms),
    }, this.log);
    this.#catalog = new CatalogFollower(this.agents, this.opts, {
      names: (names) => {
        this.#catalogNames = new Set(names.map((n) => n.toLowerCase()));
        this.#sync!.follow(names);
        this.#update(retainServices(this.#table, new Set([...this.#catalogNames, ...this.#looked])));
      },
      moved: (index) => this.#sync!.catalogChanged(index),
      wentBack: () => this.#sync!.resync(),
      answered: (meta) => answered(meta, 'catalog'),
      failed: (e, agent, what, attempt) => status.failed(e, agent, what, attempt, what === 'catalog'),
      progressed,
    }, this.log);
    this.#probe = new LeaderProbe(this.agents, this.opts.probeIntervalMs, {
      answered: (meta) => answered(meta),
      failed: (e, agent, attempt) => status.failed(e, agent, 'leader probe', attempt),
    }, this.log);
    this.#sync.start();
    this.#catalog.start();
    this.#probe.start();
    return this;
  }

  /**
   * Follow one service (what /call does). Resolves once its first answer is
   * in the table, or after timeoutMs with whatever is known.
   */
  async watchService(name: string, timeoutMs: number): Promise<void> {
    if (this.#stopped) return;
    this.#looked.add(name.toLowerCase());
    this.#watches ??= new ServiceWatches(this.agents, this.opts, {
      current: (key) => this.#table.services.get(key),
      apply: (key, instances) => this.#setService(key, instances),
      answered: (meta) => this.#status.answered(meta),
      failed: (e: ConsulError, agent, what, attempt) => this.#status.failed(e, agent, what, attempt),
    }, this.log);
    await this.#watches.watch(name, timeoutMs);
  }

  /**
   * What the answers of a followed service did to the table: trust, hold,
   * agent-lost fallback, failures and the entries behind it (for the
   * gateway's /_gateway/explain). Undefined for a service not followed (not in
   * the catalog, or excluded). Lower-case `name`.
   */
  serviceView(name: string): TrackedServiceView | undefined {
    return this.#sync?.view(name.toLowerCase());
  }

  state(): DiscoveryState {
    const extra: string[] = [];
    const reconcile = this.#sync?.reconcileView() ?? { sweeps: 0, corrections: 0, lastCorrection: null, lastSweepAt: null };
    const c = reconcile.lastCorrection;
    if (c && Date.now() - c.at < CORRECTION_SHOWN_MS)
      extra.push(`the table differed from consul for ${c.service} until a leader read corrected it ${Math.round((Date.now() - c.at) / 1000)} s ago (${reconcile.corrections} corrections since start; a missed change: please report it)`);
    if (this.#catalog?.holding) extra.push('holding last table: consul suddenly returned no services');
    const held = this.#sync?.holding() ?? [];
    if (held.length > 0) extra.push(`holding the last instances of ${listed(held)}: consul suddenly reports none passing`);
    const failing = this.#sync?.failing() ?? [];
    for (const f of failing.slice(0, REASONS_LISTED)) extra.push(`consul does not answer for ${f.what}: ${f.reason}`);
    if (failing.length > REASONS_LISTED) extra.push(`consul does not answer for ${failing.length - REASONS_LISTED} more services`);
    return { ...this.#status.state(extra), reconcile };
  }

  stop(): void {
    this.#stopped = true;
    this.#catalog?.stop();
    this.#sync?.stop();
    this.#probe?.stop();
    this.#watches?.stop();
  }

  #setService(key: string, instances: Instance[]): void {
    // A late answer for a service the catalog no longer lists must not bring it back.
    if (this.#catalog && !this.#catalogNames.has(key) && !this.#looked.has(key)) return;
    this.#update(setService(this.#table, key, instances));
  }

  #update(next: RouteTable): void {
    if (next === this.#table) return;
    this.#table = next;
    this.#emit('change', next);
  }

  /** A listener's bug stays the listener's: logged, never taken for a Consul failure. */
  #emit(event: string, ...args: unknown[]): void {
    guard(this.log, `a discovery '${event}' listener`, { event }, () => this.emit(event, ...args), false);
  }

  #checkSynced(): void {
    if (this.#syncedAt || !this.#catalog?.answered || !this.#sync?.ready) return;
    this.#syncedAt = new Date();
    const failing = this.#sync.failing();
    this.log.info({ services: this.#table.services.size, failing: failing.length }, 'first sync with consul complete');
    this.#emit('synced');
  }
}

function listed(names: string[]): string {
  return names.length <= REASONS_LISTED ? names.join(', ') : `${names.slice(0, REASONS_LISTED).join(', ')} and ${names.length - REASONS_LISTED} more`;
}
