import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { BlockingQuery, type QueryMeta } from './blocking.js';
import type { ConsulPool } from './pool.js';
import { agentLostInstances, routableInstances, routableServiceNames, type HealthEntry, type Instance } from './instances.js';
import { emptyTable, retainServices, setService, type RouteTable } from '../table.js';
import { EmptyHold, isSuspiciousEmpty } from './suspicion.js';
import { LeaderProbe } from './leader-probe.js';

export interface DiscoveryOptions {
  /** Consul `wait` for blocking queries (ms). */
  waitMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Lower-case service names that are never routed. */
  excluded: ReadonlySet<string>;
  /** How long an all-empty service list must persist before it is believed (ms). */
  emptyConfirmMs: number;
  /** Above this X-Consul-LastContact (ms), discovery counts as degraded. */
  staleAfterMs: number;
  /** How often to ask for the raft leader (ms; 0: never). */
  probeIntervalMs: number;
}

export interface ConsulState {
  reachable: boolean;
  agent: string | null;
  lastContact: string | null;
  lastError: string | null;
  knownLeader: boolean;
  lastContactMs: number;
  degraded: boolean;
  reasons: string[];
}

interface ServiceWatch {
  name: string;
  query: BlockingQuery<HealthEntry[]>;
  seen: boolean;
  agentLost?: boolean;
  /** Holds an answer that would leave the service without instances. */
  hold: EmptyHold<Instance[]>;
}

/**
 * The Consul side of routing: blocking queries on the service list and on
 * every service's passing instances, folded into one RouteTable. It never
 * calls Consul on behalf of a request, and on any Consul trouble it keeps the
 * last good table and says so in state().
 *
 * Events: 'change' (table) whenever the table changed; 'synced' once.
 */
export class Discovery extends EventEmitter {
  #table: RouteTable = emptyTable;
  #watches = new Map<string, ServiceWatch>();
  #catalog: BlockingQuery<Record<string, string[]>> | undefined;
  #probe: LeaderProbe | undefined;
  #catalogSeen = false;
  #syncedAt: Date | null = null;
  #catalogHold: EmptyHold<string[]>;
  #reachable = true;
  #lastMeta: QueryMeta | undefined;
  #lastError: string | null = null;
  #stopped = false;

  constructor(
    private readonly pool: ConsulPool,
    private readonly opts: DiscoveryOptions,
    private readonly log: Logger,
  ) {
    super();
    this.#catalogHold = new EmptyHold<string[]>(opts.emptyConfirmMs, (names) => {
      this.log.warn('consul still has no services: dropping the last table');
      this.#applyCatalog(names);
    });
  }

  get table(): RouteTable {
    return this.#table;
  }

  get synced(): boolean {
    return this.#syncedAt !== null;
  }

  /** Follow every service in the catalog (what the gateway does). */
  watchCatalog(): this {
    if (this.#catalog) return this;
    const q = new BlockingQuery<Record<string, string[]>>(
      this.pool,
      (client, o) => client.catalog.service.list(o as never),
      this.opts,
    );
    this.#track(q, 'catalog');
    q.on('data', (body: Record<string, string[]>) => this.#onCatalog(body ?? {}));
    this.#catalog = q.start();
    this.#probe = new LeaderProbe(this.pool, this.opts.probeIntervalMs);
    this.#track(this.#probe, 'leader probe');
    this.#probe.start();
    return this;
  }

  /**
   * Follow one service (what /call does). Resolves once its first answer is
   * in the table, or after timeoutMs with whatever is known.
   */
  async watchService(name: string, timeoutMs: number): Promise<void> {
    const w = this.#startService(name.toLowerCase(), name);
    if (w.seen) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const onChange = () => (w.seen || this.#stopped) && done();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      w.query.once('data', () => setImmediate(onChange));
    });
  }

  watchedCount(): number {
    return this.#watches.size;
  }

  state(): ConsulState {
    const meta = this.#lastMeta;
    const reasons: string[] = [];
    if (!this.#reachable) reasons.push('consul unreachable');
    if (meta && !meta.knownLeader) reasons.push('consul has no known leader');
    if (meta && meta.lastContactMs > this.opts.staleAfterMs)
      reasons.push(`answers are ${meta.lastContactMs} ms stale`);
    if (this.#catalogHold.holding) reasons.push('holding last table: consul suddenly returned no services');
    return {
      reachable: this.#reachable,
      agent: meta?.agent ?? null,
      lastContact: meta ? new Date(meta.at).toISOString() : null,
      lastError: this.#lastError,
      knownLeader: meta?.knownLeader ?? false,
      lastContactMs: meta?.lastContactMs ?? 0,
      degraded: reasons.length > 0,
      reasons,
    };
  }

  get syncedAt(): Date | null {
    return this.#syncedAt;
  }

  stop(): void {
    this.#stopped = true;
    this.#catalog?.stop();
    this.#probe?.stop();
    for (const w of this.#watches.values()) {
      w.query.stop();
      w.hold.cancel();
    }
    this.#watches.clear();
    this.#catalogHold.cancel();
  }

  #onCatalog(body: Record<string, string[]>): void {
    const names = routableServiceNames(body, this.opts.excluded);
    if (isSuspiciousEmpty(this.#table.services.size, names.length) && this.opts.emptyConfirmMs > 0) {
      if (this.#catalogHold.hold(names))
        this.log.warn(
          { known: [...this.#table.services.keys()] },
          'consul returned no services at all; keeping the last table until that holds for a while',
        );
      return;
    }
    if (this.#catalogHold.cancel()) this.log.info('consul lists services again; the empty answer was transient');
    this.#applyCatalog(names);
  }

  #applyCatalog(names: string[]): void {
    const keep = new Map(names.map((n) => [n.toLowerCase(), n]));
    for (const [key, w] of this.#watches) {
      if (!keep.has(key)) {
        w.query.stop();
        w.hold.cancel();
        this.#watches.delete(key);
        this.log.info({ service: w.name }, 'service left the catalog');
      }
    }
    for (const [key, name] of keep) this.#startService(key, name);
    this.#catalogSeen = true;
    this.#update(retainServices(this.#table, new Set(keep.keys())));
    this.#checkSynced();
  }

  #startService(key: string, name: string): ServiceWatch {
    const existing = this.#watches.get(key);
    if (existing) return existing;
    const query = new BlockingQuery<HealthEntry[]>(
      this.pool,
      // All entries, not ?passing: the checks tell a dead instance from a lost agent.
      (client, o) => client.health.service({ ...(o as object), service: name } as never),
      this.opts,
    );
    const w: ServiceWatch = {
      name,
      query,
      seen: false,
      hold: new EmptyHold<Instance[]>(this.opts.emptyConfirmMs, (instances) => this.#applyService(key, w, instances)),
    };
    this.#watches.set(key, w);
    this.#track(query, `service ${name}`);
    query.on('data', (body: HealthEntry[]) => {
      if (this.#watches.get(key) !== w) return;
      const instances = this.#instancesOf(w, Array.isArray(body) ? body : []);
      const before = this.#table.services.get(key)?.length ?? 0;
      // A service that suddenly has no instance at all is held for a moment:
      // an agent that just restarted reports every check critical until it
      // has run them once. Only an empty answer that persists is believed.
      if (isSuspiciousEmpty(before, instances.length) && this.opts.emptyConfirmMs > 0) {
        if (w.hold.hold(instances))
          this.log.warn({ service: name, before }, 'consul says no instance passes; keeping the last ones until that holds');
        w.seen = true;
        this.#checkSynced();
        return;
      }
      if (w.hold.cancel()) this.log.info({ service: name }, 'instances pass again; the empty answer was transient');
      this.#applyService(key, w, instances);
    });
    query.start();
    return w;
  }

  /** Passing instances; failing that, the ones only their lost agent makes critical. */
  #instancesOf(w: ServiceWatch, entries: HealthEntry[]) {
    const passing = routableInstances(entries);
    const lost = passing.length === 0 ? agentLostInstances(entries) : [];
    if (lost.length > 0 && !w.agentLost)
      this.log.warn({ service: w.name, instances: lost.length }, 'no instance passes, but only because their Consul agent is unreachable: still routing to them');
    w.agentLost = lost.length > 0;
    return passing.length > 0 ? passing : lost;
  }

  #applyService(key: string, w: ServiceWatch, instances: Instance[]): void {
    if (this.#watches.get(key) !== w) return;
    const before = this.#table.services.get(key)?.length ?? 0;
    w.seen = true;
    this.#update(setService(this.#table, key, instances));
    if (before !== instances.length)
      this.log.info({ service: w.name, instances: instances.length, before }, 'passing instances changed');
    this.#checkSynced();
  }

  #track(q: EventEmitter, what: string): void {
    q.on('ok', (partial: Partial<QueryMeta> & Pick<QueryMeta, 'agent' | 'knownLeader' | 'at'>) => {
      const prev = this.#lastMeta;
      const meta: QueryMeta = { index: 0n, lastContactMs: prev?.lastContactMs ?? 0, ...partial };
      this.#lastMeta = meta;
      if (!this.#reachable) {
        this.#reachable = true;
        this.log.info({ agent: meta.agent }, 'consul reachable again');
      }
      if (prev && prev.knownLeader !== meta.knownLeader) {
        if (meta.knownLeader) this.log.info({ agent: meta.agent }, 'consul has a leader again');
        else this.log.warn({ agent: meta.agent, lastContactMs: meta.lastContactMs }, 'consul reports no known leader; serving stale reads');
      }
    });
    q.on('error', (err: Error, agent: string, attempt: number) => {
      this.#lastError = `${agent}: ${err.message}`;
      if (this.#reachable) {
        this.#reachable = false;
        this.log.warn({ agent, err: err.message, query: what }, 'consul unreachable; keeping the last good table');
      } else {
        this.log.debug({ agent, err: err.message, query: what, attempt }, 'consul still unreachable');
      }
    });
  }

  #update(next: RouteTable): void {
    if (next === this.#table) return;
    this.#table = next;
    this.emit('change', next);
  }

  #checkSynced(): void {
    if (this.#syncedAt || !this.#catalogSeen) return;
    for (const w of this.#watches.values()) if (!w.seen) return;
    this.#syncedAt = new Date();
    this.log.info({ services: this.#table.services.size }, 'first sync with consul complete');
    this.emit('synced');
  }
}
