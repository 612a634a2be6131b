import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.js';
import { type ConsulError, type ConsulAgents, describeConsulError, endpoints, guard, type QueryMeta, ReadError, readOnce } from './agents.js';
import { BlockingQuery } from './blocking-query.js';
import { type CheckChanges, type CheckEntry, type CheckSnapshot, diffChecks, feedFilter, feedView, type FeedView, mergeNotPassing, notPassingOnly, snapshotChecks } from './changes.js';
import { distrust, EmptyHold, isSuspiciousEmpty, routableServiceNames } from './instances.js';
import { Reader } from './reads.js';

/**
 * What talks to Consul to learn what changed, for the gateway's table: the
 * catalog follower (the names to route), the check feed (whose checks
 * changed); the node scan (whose instances changed) is node-scan.ts. Each
 * reports to a sink; what a change means is changes.ts's and instances.ts's to decide.
 */

// ---------------------------------------------------------------- the catalog: the names to route

export interface CatalogFollowerOptions {
  waitMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  staleAfterMs: number;
  emptyConfirmMs: number;
  excluded: ReadonlySet<string>;
}

export interface CatalogFollowerSink {
  /** The routable service names, whenever they change. */
  names(names: string[]): void;
  /** The catalog's index moved past the previous answer's (not on the first answer). */
  moved(index: bigint): void;
  /** The catalog's index went back (a lagging server, a restored snapshot): anything may have changed. */
  wentBack(): void;
  answered(meta: QueryMeta): void;
  failed(error: ConsulError, agent: string, what: string, attempt: number): void;
  progressed(): void;
}

type Catalog = Record<string, string[]>;
const listCatalog = endpoints.catalogServices();
const CATALOG = 'catalog';

/**
 * Follows /v1/catalog/services for the gateway: the names to route. A name
 * missing from a trusted answer is dropped at once (404); a name missing from
 * an answer that can't be trusted (distrust, instances.ts) is dropped only once a read
 * from the leader agrees; an answer with no services at all, after some, is
 * held for CONSUL_EMPTY_CONFIRM_MS (a fresh agent knows nothing until
 * registrator resyncs).
 */
export class CatalogFollower {
  #query: BlockingQuery<Catalog>;
  #names: string[] = [];
  #seen = 0n;
  #lastIndex: bigint | undefined;
  #answered = false;
  #hold: EmptyHold<string[]>;
  /** Reads the catalog from the leader, to confirm a removal an untrusted answer suggested. */
  #leader: Reader<Catalog>;

  constructor(
    private readonly agents: ConsulAgents,
    private readonly opts: CatalogFollowerOptions,
    private readonly sink: CatalogFollowerSink,
    private readonly log: Logger,
  ) {
    this.#hold = new EmptyHold<string[]>((names) => {
      log.warn('consul still has no services: dropping the last table');
      this.#apply(names);
    });
    this.#leader = new Reader<Catalog>(agents, { concurrency: 1, ...opts }, () => listCatalog, {
      answer: (_key, body, meta) => {
        sink.answered(meta);
        this.#answer(body ?? {}, meta);
      },
      failed: (_key, e, agent, attempt) => sink.failed(e, agent, 'catalog (from the leader)', attempt),
    }, log);
    this.#query = new BlockingQuery<Catalog>(agents, listCatalog, { ...opts, name: 'catalog', log });
    this.#query.on('ok', (meta: QueryMeta) => sink.answered(meta));
    this.#query.on('error', (e: ConsulError, agent: string, attempt: number) => {
      if (!e.retryable && attempt === 1) {
        const hint = e.kind === 'denied' ? 'check the ACL token' : 'check CONSUL_HTTP_ADDR';
        log.error({ agent, err: describeConsulError(e) }, `consul refuses the catalog read: ${hint}; nothing can be routed until that is fixed`);
      }
      sink.failed(e, agent, 'catalog', attempt);
    });
    this.#query.on('data', (body: Catalog, meta: QueryMeta) => {
      this.#leader.forget(CATALOG); // a newer answer supersedes any confirmation under way
      this.#answer(body ?? {}, meta);
    });
  }

  start(): this {
    this.#query.start();
    return this;
  }

  /** The catalog answered (its names are applied or held). */
  get answered(): boolean {
    return this.#answered;
  }

  get holding(): boolean {
    return this.#hold.holding;
  }

  stop(): void {
    this.#query.stop();
    this.#leader.stop();
    this.#hold.cancel();
  }

  #answer(body: Catalog, meta: QueryMeta): void {
    const names = routableServiceNames(body, this.opts.excluded);
    if (this.#lastIndex !== undefined && meta.index > this.#lastIndex) this.sink.moved(meta.index);
    if (this.#lastIndex !== undefined && meta.index < this.#lastIndex && !meta.fresh) this.sink.wentBack();
    if (this.#lastIndex === undefined || meta.index > this.#lastIndex || meta.fresh) this.#lastIndex = meta.index;
    const next = new Set(names);
    const gone = this.#names.filter((n) => !next.has(n));
    const why = gone.length > 0 ? distrust(meta, this.#seen, this.opts.staleAfterMs) : null;
    if (why) {
      // Add what is new now; take nothing away until the leader says so.
      const added = names.filter((n) => !this.#names.includes(n));
      this.log.info({ gone, why, agent: meta.agent }, 'consul answer drops services but cannot be trusted yet: asking the leader');
      if (added.length > 0) this.#apply([...this.#names, ...added].sort());
      this.#answered = true;
      this.#leader.request(CATALOG, CATALOG, { fresh: true });
      this.sink.progressed();
      return;
    }
    this.#seen = meta.fresh || meta.index > this.#seen ? meta.index : this.#seen;
    this.#answered = true;
    if (isSuspiciousEmpty(this.#names.length, names.length) && this.opts.emptyConfirmMs > 0) {
      if (this.#hold.hold(names, this.opts.emptyConfirmMs))
        this.log.warn({ known: this.#names }, 'consul returned no services at all; keeping the last table until that holds for a while');
      this.sink.progressed();
      return;
    }
    if (this.#hold.cancel()) this.log.info('consul lists services again; the empty answer was transient');
    this.#apply(names);
    this.sink.progressed();
  }

  #apply(names: string[]): void {
    const changed = names.length !== this.#names.length || names.some((n, i) => n !== this.#names[i]);
    this.#names = names;
    if (changed) this.sink.names(names);
  }
}

// ---------------------------------------------------------------- the check feed: whose checks changed

export interface CheckFeedOptions {
  waitMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export interface CheckFeedSink {
  /** `feed`: set for answers of the blocking query, whose view can patch known instances (patchEntries, changes.ts). */
  changes(changes: CheckChanges, feed?: { view: FeedView; meta: QueryMeta }): void;
  answered(meta: QueryMeta): void;
  failed(error: ConsulError, agent: string, what: string, attempt: number): void;
}

// Checks named in the feed's filter besides the non-passing ones: enough for
// the usual few failing; past it, a check that leaves the list is read instead.
const WATCH_MAX = 64;

/**
 * Which services' checks changed, from two reads of /v1/health/state/any
 * (whose index moves whenever any check anywhere changes, the one query
 * fabio watches too):
 *
 * - a blocking query on the checks that are not passing: small whatever the
 *   catalog's size (the full list is 790 kB for 2,000 checks, 25 ms for Consul
 *   to write), so a check that fails or passes again is seen within
 *   milliseconds. Its answers also carry the view that lets sync.ts
 *   settle known instances without reading their service (patchEntries, changes.ts);
 * - a full read at start (and when the catalog's index goes back), for the
 *   checks not passing then. Instances registered already passing, or
 *   deregistered while passing, change no check that is not passing: the
 *   node scan (NodeScan) finds those.
 */
export class CheckFeed {
  #query: BlockingQuery<CheckEntry[]>;
  /** The checks not passing in the last answer: named in the next request's filter. */
  #watch: Array<{ node: string; checkId: string }> = [];
  #snapshot: CheckSnapshot = new Map();
  #answered = false;
  #last: { view: FeedView; index: bigint } | undefined;
  #full: { running: boolean; again: boolean; attempt: number; timer?: NodeJS.Timeout; waiters: Array<() => void> } = {
    running: false,
    again: false,
    attempt: 0,
    waiters: [],
  };
  #stopped = false;

  constructor(
    private readonly agents: ConsulAgents,
    private readonly opts: CheckFeedOptions,
    private readonly sink: CheckFeedSink,
    private readonly log: Logger,
  ) {
    // Only the checks that are not passing (a small answer that still comes back on every
    // check change, since its index is that of all checks), and the ones that were not
    // passing last time by name: one now listed passing passes, one not listed went.
    const filter = () => feedFilter(this.#watch, WATCH_MAX);
    this.#query = new BlockingQuery<CheckEntry[]>(agents, endpoints.healthState(filter), { ...opts, name: 'health state', log });
    this.#query.on('ok', (meta: QueryMeta) => sink.answered(meta));
    this.#query.on('error', (e: ConsulError, agent: string, attempt: number) => sink.failed(e, agent, 'health state', attempt));
    this.#query.on('data', (body: CheckEntry[], meta: QueryMeta) => {
      const entries = Array.isArray(body) ? body : [];
      const view = feedView(entries);
      const notPassing = entries.filter((c) => c?.Status !== 'passing');
      // The passing ones are there because they were named: each carries the index it passed at.
      const named = entries.filter((c) => c?.Status === 'passing');
      const { next, changes } = mergeNotPassing(this.#snapshot, snapshotChecks(notPassing), snapshotChecks(named));
      this.#snapshot = notPassingOnly(next);
      this.#watch = [...view.checks.values()].filter((c) => c.status !== 'passing').map(({ node, checkId }) => ({ node, checkId }));
      this.#answered = true;
      this.#last = { view, index: meta.index };
      this.#emit(changes, { view, meta });
    });
  }

  /** The last answer of the blocking query: every check not passing at `index` (and the named ones). */
  get last(): { view: FeedView; index: bigint } | undefined {
    return this.#last;
  }

  /** The blocking query answered once. */
  get answered(): boolean {
    return this.#answered;
  }

  start(): this {
    this.#query.start();
    this.refresh();
    return this;
  }

  /** Reads every check and reports what changed since the last full read. Coalesces. */
  refresh(): void {
    if (this.#stopped) return;
    if (this.#full.running) {
      this.#full.again = true;
      return;
    }
    if (this.#full.timer) clearTimeout(this.#full.timer);
    this.#full.timer = undefined;
    this.#full.running = true;
    this.#full.again = false;
    void readOnce<CheckEntry[]>(this.agents, endpoints.healthState()).then(
      ({ body, meta }) => {
        if (this.#stopped) return;
        this.#full.attempt = 0;
        const next = snapshotChecks(Array.isArray(body) ? body : []);
        const changes = diffChecks(this.#snapshot, next);
        this.#snapshot = notPassingOnly(next);
        this.#guard(() => this.sink.answered(meta));
        this.#emit(changes);
        this.#fullDone();
      },
      (err: ReadError) => {
        if (this.#stopped) return;
        this.#full.attempt += 1;
        this.#guard(() => this.sink.failed(err.consul, err.agent, 'health state', this.#full.attempt));
        // Without it a registration could go unseen: keep trying (unless asked again meanwhile).
        if (!this.#full.again) {
          this.#full.timer = setTimeout(() => this.refresh(), backoffDelay(this.#full.attempt - 1, this.opts.backoffBaseMs, this.opts.backoffMaxMs));
          this.#full.timer.unref();
        }
        this.#fullDone();
      },
    );
  }

  stop(): void {
    this.#stopped = true;
    this.#query.stop();
    if (this.#full.timer) clearTimeout(this.#full.timer);
    for (const resolve of this.#full.waiters.splice(0)) resolve();
  }

  #fullDone(): void {
    this.#full.running = false;
    if (this.#full.again) return this.refresh();
    for (const resolve of this.#full.waiters.splice(0)) resolve();
  }

  #emit(changes: CheckChanges, feed?: { view: FeedView; meta: QueryMeta }): void {
    this.#guard(() => this.sink.changes(changes, feed));
  }

  #guard(fn: () => void): void {
    guard(this.log, 'handling the health state', {}, fn, undefined);
  }
}
