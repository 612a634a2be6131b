import type { Logger } from 'pino';
import { type ConsulError, type ConsulAgents, describeConsulError, endpoints, type QueryMeta } from './agents.js';
import type { CheckChanges, FeedView } from './changes.js';
import { decideServiceAnswer, distrust, type HealthEntry, type Instance, sameInstances } from './instances.js';
import { Reader, readService, Reconciler, type ReconcileView } from './reads.js';
import { TrackedService, type TrackedServiceView } from './service.js';
import { NodeScan } from './node-scan.js';
import { CheckFeed } from './watch.js';

export interface ServiceSyncOptions {
  waitMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  staleAfterMs: number;
  emptyConfirmMs: number;
  /** How often every followed service is read once from the leader to catch a missed change (ms; 0: never). */
  reconcileIntervalMs: number;
}

export interface ServiceSyncSink {
  current(key: string): readonly Instance[] | undefined;
  apply(key: string, instances: Instance[]): void;
  answered(meta: QueryMeta): void;
  failed(error: ConsulError, agent: string, what: string, attempt: number): void;
  /** Something that `ready` depends on changed. */
  progressed(): void;
  /**
   * A change Consul announced for a service already in the table (a check or
   * an instance) is now in the table, `ms` after the answer that showed it
   * arrived: discovery's own latency, for metrics.
   */
  applied?(key: string, ms: number): void;
}

// Reads in flight at once. With the two long polls, the full health-state
// read, the leader probe and a catalog confirmation, discovery holds at most 8
// connections to its agent, whatever the catalog's size (Consul allows 200 per
// client IP by default, limits.http_max_conns_per_client, and resets the rest).
const READ_CONCURRENCY = 3;
// Services read on every catalog move because their instances changed last (see catalogChanged).
const HOT = 2;
// The node scan waits this long at most for the reads the agent's hint asked for (a retried one must not hold it up).
const SUSPECTED_WAIT_MS = 100;

/**
 * Keeps the instances of a set of services current with a bounded number of
 * connections, however many services there are:
 *
 * - the check feed (CheckFeed, watch.ts) says whose checks changed; a change of
 *   known checks is applied from the feed's answer itself (patchEntries, changes.ts: no
 *   read, so a check passing is routed as soon as Consul answers);
 * - a catalog change makes the node scan (NodeScan) say whose instances
 *   changed: registrations and deregistrations, with or without checks;
 * - the rest is read with plain reads, a few at a time, each carrying the
 *   index of the change that caused it (a read older than that is confirmed
 *   with the leader), or read from the leader when that index is unknown;
 * - the reconciliation (Reconciler, reads.ts) reads every service from the leader now
 *   and then, and counts what the above missed.
 */
export class ServiceSync {
  #tracked = new Map<string, TrackedService>();
  #feed: CheckFeed;
  #reader: Reader<HealthEntry[]>;
  #feedFailure: ConsulError | undefined;
  /** Highest index of the check feed's answers applied (its own, for distrust). */
  #feedSeen = 0n;
  #scan: NodeScan;
  #stopped = false;
  /** When a pending change of each service was first seen (ms), until the table holds it or an answer settles it. */
  #noticed = new Map<string, number>();
  /** Services waiting on a read from the leader: their pending change is not settled yet. */
  #confirming = new Set<string>();
  /** When the catalog moved, for the full health-state read it starts. */
  #catalogAt: number | undefined;
  #reconciler: Reconciler;
  /** Services whose instances changed last, most recent first: read at once on the next catalog move. */
  #hot: string[] = [];
  /** Answers and patches applied per service: a reconciliation answer is applied only if none came in meanwhile. */
  #generation = new Map<string, number>();

  constructor(
    agents: ConsulAgents,
    private readonly opts: ServiceSyncOptions,
    private readonly sink: ServiceSyncSink,
    private readonly log: Logger,
  ) {
    this.#reader = new Reader<HealthEntry[]>(
      agents,
      { concurrency: READ_CONCURRENCY, backoffBaseMs: opts.backoffBaseMs, backoffMaxMs: opts.backoffMaxMs },
      endpoints.healthService,
      {
        answer: (key, body, meta, minIndex) => {
          const entries = Array.isArray(body) ? body : [];
          sink.answered(meta);
          this.#confirming.delete(key);
          const t = this.#tracked.get(key);
          t?.answer(entries, meta, minIndex);
          // A check shown failing that the check feed already saw pass (or go): this read is behind it.
          const last = this.#feed.last;
          if (t && !meta.fresh && !this.#confirming.has(key) && last && t.contradicts(last.view, last.index)) {
            log.debug({ service: t.name, index: String(meta.index), feed: String(last.index) }, 'read shows a check failing that the check feed saw pass: asking the leader');
            this.#confirming.add(key);
            this.#reader.request(key, t.name, { fresh: true });
          }
          // Applied, held or unchanged: settled, unless it asked the leader first.
          if (!this.#confirming.has(key)) this.#noticed.delete(key);
          sink.progressed();
        },
        failed: (key, error, agent) => {
          const t = this.#tracked.get(key);
          // A refused read waits for the next change: timing it from this one would mislead.
          if (!error.retryable) this.#noticed.delete(key);
          t?.failed(error);
          sink.failed(error, agent, `service ${t?.name ?? key}`, t?.failure?.attempts ?? 1);
          sink.progressed();
        },
      },
      log,
    );
    this.#reconciler = this.#newReconciler(agents);
    this.#scan = new NodeScan(agents, opts, {
      entries: () => [...this.#tracked].map(([key, t]) => [key, t.entries] as [string, readonly HealthEntry[] | undefined]),
      changed: (services) => {
        this.#readScanned(services);
        sink.progressed();
      },
      suspected: (services) => this.#readSuspected(services),
      answered: (meta) => sink.answered(meta),
      failed: (error, agent, what, attempt) => sink.failed(error, agent, what, attempt),
    }, log);
    this.#feed = new CheckFeed(agents, opts, {
      changes: (changes, feed) => {
        this.#readChanged(changes, feed);
        sink.progressed();
      },
      answered: (meta) => {
        this.#feedFailure = undefined;
        sink.answered(meta);
      },
      failed: (error, agent, what, attempt) => {
        if (!error.retryable && !this.#feedFailure)
          log.error({ err: describeConsulError(error) }, 'consul refuses the health state read: changes are not followed until that is fixed');
        this.#feedFailure = error;
        sink.failed(error, agent, what, attempt);
        sink.progressed();
      },
    }, log);
  }

  start(): this {
    this.#feed.start();
    this.#scan.start();
    this.#reconciler.start();
    return this;
  }

  /** What the reconciliation found so far. */
  reconcileView(): ReconcileView {
    return this.#reconciler.view();
  }

  /** The services to follow: every name in the catalog. */
  follow(names: readonly string[]): void {
    const keep = new Map(names.map((n) => [n.toLowerCase(), n]));
    for (const [key, t] of this.#tracked) {
      if (keep.has(key)) continue;
      t.stop();
      this.#tracked.delete(key);
      this.#reader.forget(key);
      this.#noticed.delete(key);
      this.#confirming.delete(key);
      this.log.info({ service: t.name }, 'service left the catalog');
    }
    for (const [key, name] of keep) {
      if (this.#tracked.has(key)) continue;
      const t = new TrackedService(name, { staleAfterMs: this.opts.staleAfterMs, holdFloorMs: this.opts.emptyConfirmMs }, {
        current: () => this.sink.current(key),
        apply: (instances) => this.#apply(key, instances),
        confirm: () => {
          this.#confirming.add(key);
          this.#reader.request(key, name, { fresh: true });
        },
      }, this.log);
      this.#tracked.set(key, t);
      this.#reader.request(key, name);
    }
  }

  /**
   * The catalog's index moved to `index`: each node's services say which
   * instances changed (NodeScan, watch.ts: registrations and deregistrations, with
   * checks or without, changed addresses or tags), and only those services are
   * read. Check status changes come from the check feed's blocking query.
   */
  catalogChanged(index: bigint): void {
    const at = (this.#catalogAt ??= Date.now());
    // Changes come in runs (a service scaled, a deploy rolling): the services that changed last are
    // read at once, while the scan looks for what changed. Each read carries the service's own index,
    // so an answer older than the table is confirmed with the leader, never applied; one that shows
    // nothing new changes nothing (and times nothing: #apply). The scan still reads every node, so
    // nothing rests on the guess.
    for (const key of this.#hot) {
      const t = this.#tracked.get(key);
      if (!t?.seen || this.#reader.pending(key)) continue;
      if (!this.#noticed.has(key)) this.#noticed.set(key, at);
      this.#reader.request(key, t.name, { minIndex: t.index });
    }
    this.#scan.scan(index);
    // Once every scan asked for is over, the next move is timed from itself: a move whose change the
    // hint or a read of the services that changed last settled leaves nothing for the scan to report.
    void this.#scan.idle().then(() => {
      this.#catalogAt = undefined;
    });
  }

  /**
   * The catalog's index went back: a lagging server answered, or a snapshot
   * was restored. Read everything again; what would be taken away is
   * confirmed with the leader first (TrackedService, service.ts).
   */
  resync(): void {
    this.log.info({ services: this.#tracked.size }, "the catalog's index went back: reading every service again");
    for (const t of this.#tracked.values()) t.indexWentBack();
    this.#feed.refresh();
    for (const [key, t] of this.#tracked) this.#reader.request(key, t.name);
  }

  /** The health state answered and every service is settled (answered, or failing for good or for a while). */
  get ready(): boolean {
    if (!this.#feed.answered && !(this.#feedFailure && !this.#feedFailure.retryable)) return false;
    for (const t of this.#tracked.values()) if (!t.settled) return false;
    return true;
  }

  /** Services (and the health state) Consul does not answer for, for state(). */
  failing(): Array<{ what: string; reason: string }> {
    const out: Array<{ what: string; reason: string }> = [];
    if (this.#feedFailure && !this.#feedFailure.retryable)
      out.push({ what: 'health state', reason: describeConsulError(this.#feedFailure) });
    for (const t of this.#tracked.values())
      if (t.failure && t.settled) out.push({ what: `service ${t.name}`, reason: describeConsulError(t.failure.error) });
    return out;
  }

  /** What one followed service's answers did to the table (undefined: not followed). */
  view(key: string): TrackedServiceView | undefined {
    return this.#tracked.get(key)?.view();
  }

  /** Services whose N → 0 answer is being held. */
  holding(): string[] {
    return [...this.#tracked.values()].filter((t) => t.holding).map((t) => t.name);
  }

  stop(): void {
    this.#stopped = true;
    this.#feed.stop();
    this.#reader.stop();
    this.#reconciler.stop();
    this.#scan.stop();
    for (const t of this.#tracked.values()) t.stop();
    this.#tracked.clear();
    this.#noticed.clear();
  }

  #newReconciler(agents: ConsulAgents): Reconciler {
    const sent = new Map<string, number>();
    return new Reconciler(this.opts.reconcileIntervalMs, {
      services: () => [...this.#tracked].map(([key, t]) => ({ key, name: t.name })),
      busy: (key) => this.#reader.pending(key) || this.#confirming.has(key) || this.#noticed.has(key),
      read: async (name) => {
        const key = name.toLowerCase();
        sent.set(key, this.#generation.get(key) ?? 0);
        const r = await readService(agents, name, true);
        this.sink.answered(r.meta);
        return r;
      },
      differs: (key, entries, meta) => {
        const t = this.#tracked.get(key);
        if (!t || (this.#generation.get(key) ?? 0) !== sent.get(key) || t.behind(meta.index)) return false;
        const d = decideServiceAnswer({ before: this.sink.current(key), entries, distrust: null, holdMs: 0 });
        return d.action === 'apply' && !sameInstances(this.sink.current(key) ?? [], d.instances);
      },
      apply: (key, entries, meta) => {
        const t = this.#tracked.get(key);
        // Something came in since the leader answered (or the answer is older than the table): the usual path has it.
        if (!t || (this.#generation.get(key) ?? 0) !== sent.get(key) || t.behind(meta.index)) return false;
        const before = this.sink.current(key);
        t.answer(entries, meta);
        return this.sink.current(key) !== before;
      },
    }, this.log);
  }

  /** Into the table; times the change when it was one announced for a known service and the table took it. */
  #apply(key: string, instances: Instance[]): void {
    this.#generation.set(key, (this.#generation.get(key) ?? 0) + 1);
    const before = this.sink.current(key);
    this.sink.apply(key, instances);
    const at = this.#noticed.get(key);
    if (at === undefined || this.sink.current(key) === before) return;
    this.#noticed.delete(key);
    this.sink.applied?.(key, Math.max(0, Date.now() - at));
  }

  /**
   * Brings the changed services up to date: from the feed's answer itself
   * when it settles them (known instances whose checks changed status), by a
   * read otherwise. The feed's answers follow the same trust rules as reads:
   * one that can't be trusted (distrust, judged against the feed's own last
   * index) may add instances, and what it would take away waits for a read
   * from the leader.
   */
  #readChanged(changes: CheckChanges, feed?: { view: FeedView; meta: QueryMeta }): void {
    let why: string | null = null;
    // When Consul's answer showed the change: the feed's, or the catalog move that led to a full read.
    const at = feed ? feed.meta.at : (this.#catalogAt ?? Date.now());
    if (!feed) this.#catalogAt = undefined;
    if (feed) {
      why = distrust(feed.meta, this.#feedSeen, this.opts.staleAfterMs);
      if (feed.meta.fresh || feed.meta.index > this.#feedSeen) this.#feedSeen = feed.meta.index;
    }
    const settled = new Set<string>();
    // Every read carries what made it necessary: the index of the change (a read
    // answered by a server behind it is confirmed with the leader), or, when that
    // index is unknown, it goes to the leader at once. A ?stale read with neither
    // could come from a server without the change and leave the table behind for
    // good (the miss of issue #21).
    const settle = (key: string, t: TrackedService, minIndex: bigint) => {
      settled.add(key);
      // Only services already routed: a new one's first read is start-up, not change latency.
      if (t.seen && !this.#noticed.has(key)) this.#noticed.set(key, at);
      if (feed && t.patch(feed.view, feed.meta, why) === 'done') {
        if (!this.#confirming.has(key)) this.#noticed.delete(key);
        return;
      }
      this.#reader.request(key, t.name, minIndex > 0n ? { minIndex } : { fresh: true });
    };
    for (const [key, minIndex] of changes.services) {
      const t = this.#tracked.get(key);
      if (!t) continue;
      const unsure = changes.unsure.has(key);
      // Already read at or past every write of its checks (the first health state answer, mostly).
      if (!unsure && minIndex > 0n && t.seen && t.index >= minIndex) continue;
      settle(key, t, unsure ? 0n : minIndex);
    }
    if (feed)
      for (const [key, t] of this.#tracked) {
        // Entries with a check failing that this answer shows passing or gone, and no check
        // change of their own in it: read behind the feed (a registration the feed saw only passing).
        if (!settled.has(key) && !changes.services.has(key) && t.contradicts(feed.view, feed.meta.index)) settle(key, t, 0n);
      }
    if (changes.nodes.size === 0) return;
    for (const [key, t] of this.#tracked) {
      if (settled.has(key)) continue; // the patch above covered its nodes too
      let hit = false;
      let minIndex = -1n; // highest index of its nodes' changes; 0n once one is unknown
      for (const node of t.nodes) {
        if (!changes.nodes.has(node)) continue;
        hit = true;
        const i = changes.nodeIndex.get(node) ?? 0n;
        minIndex = minIndex === 0n || i === 0n ? 0n : i > minIndex ? i : minIndex;
      }
      if (hit) settle(key, t, minIndex);
    }
  }

  /**
   * Services the agent's registrations say changed (AgentHint): read now, each
   * at its own index like the ones that changed last (catalogChanged), and
   * they are the ones that changed last. The scan that follows finds anything
   * these reads did not show, and waits for them (SUSPECTED_WAIT_MS at most).
   */
  #readSuspected(services: Set<string>): Promise<void> {
    const at = this.#catalogAt ?? Date.now();
    for (const key of services) {
      const t = this.#tracked.get(key);
      if (!t?.seen) continue;
      this.#hot = [key, ...this.#hot.filter((k) => k !== key)].slice(0, HOT);
      if (!this.#noticed.has(key)) this.#noticed.set(key, at);
      // Even with a read on its way: it may have left before the change (the reader reads again after it).
      this.#reader.request(key, t.name, { minIndex: t.index });
    }
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([this.#reader.idle(), new Promise<void>((r) => (timer = setTimeout(r, SUSPECTED_WAIT_MS)))]).finally(() => clearTimeout(timer));
  }

  /** Services the node scan found changed (already compared with their entries): read each, at the change's index or from the leader. */
  #readScanned(services: Map<string, bigint>): void {
    const at = this.#catalogAt ?? Date.now();
    this.#catalogAt = undefined;
    for (const [key, minIndex] of services) {
      const t = this.#tracked.get(key);
      if (!t) continue;
      this.#hot = [key, ...this.#hot.filter((k) => k !== key)].slice(0, HOT);
      if (t.seen && !this.#noticed.has(key)) this.#noticed.set(key, at);
      this.#reader.request(key, t.name, minIndex > 0n ? { minIndex } : { fresh: true });
    }
  }
}
