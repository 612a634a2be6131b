import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.js';
import { BlockingQuery } from './blocking.js';
import { diffChecks, mergeNotPassing, snapshotChecks, type CheckChanges, type CheckEntry, type CheckSnapshot } from './check-diff.js';
import { guard } from './emit.js';
import type { ConsulError } from './errors.js';
import { checkKey, feedFilter, type FeedCheck, type FeedView } from './feed-patch.js';
import type { QueryMeta } from './meta.js';
import { endpoints, type ConsulPool } from './pool.js';
import { readOnce, ReadError } from './read.js';

export interface CheckFeedOptions {
  waitMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export interface CheckFeedSink {
  /** `feed`: set for answers of the blocking query, whose view can patch known instances (feed-patch.ts). */
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
 *   milliseconds. Its answers also carry the view that lets service-sync.ts
 *   settle known instances without reading their service (feed-patch.ts);
 * - a full read at start (and when the catalog's index goes back), for the
 *   checks not passing then. Instances registered already passing, or
 *   deregistered while passing, change no check that is not passing: the
 *   node scan (node-scan.ts) finds those.
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
    private readonly pool: ConsulPool,
    private readonly opts: CheckFeedOptions,
    private readonly sink: CheckFeedSink,
    private readonly log: Logger,
  ) {
    // Only the checks that are not passing (a small answer that still comes back on every
    // check change, since its index is that of all checks), and the ones that were not
    // passing last time by name: one now listed passing passes, one not listed went.
    const filter = () => feedFilter(this.#watch, WATCH_MAX);
    this.#query = new BlockingQuery<CheckEntry[]>(pool, endpoints.healthState(filter), { ...opts, name: 'health state', log });
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
    void readOnce<CheckEntry[]>(this.pool, endpoints.healthState()).then(
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

function feedView(entries: readonly CheckEntry[]): FeedView {
  const checks = new Map<string, FeedCheck>();
  for (const c of entries) {
    if (!c?.Node || !c.CheckID) continue;
    const serviceId = c.ServiceID ?? '';
    checks.set(checkKey(c.Node, c.CheckID), {
      node: c.Node,
      checkId: c.CheckID,
      serviceId,
      service: serviceId ? (c.ServiceName ?? '').toLowerCase() : '',
      status: c.Status ?? '',
      modify: Number(c.ModifyIndex ?? 0),
    });
  }
  return { checks };
}

/**
 * The snapshot keeps only the checks not passing: all that mergeNotPassing needs (a passing check
 * that fails is listed by the next answer anyway). Kept whole, it would grow with every check that
 * ever existed, since a deregistration of a passing instance no longer triggers a full read.
 */
function notPassingOnly(snapshot: CheckSnapshot): CheckSnapshot {
  return new Map([...snapshot].filter(([, c]) => c.status !== 'passing'));
}
