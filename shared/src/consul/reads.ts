import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.js';
import { type Call, classifyConsulError, type ConsulError, type ConsulAgents, endpoints, guard, type QueryMeta, ReadError, readOnce } from './agents.js';
import type { HealthEntry } from './instances.js';

/**
 * Plain reads outside the long polls: the keyed Reader (a few at a time,
 * coalesced, retried with backoff), which is also the one way discovery reads
 * again from the leader to confirm a removal; and the reconciliation, a slow
 * sweep of leader reads that catches what the blocking queries missed.
 */

// ---------------------------------------------------------------- reads, and the confirmation with the leader

/** One plain read of /v1/health/service/<name>: ?stale, or from the leader when `fresh`. */
export function readService(agents: ConsulAgents, name: string, fresh: boolean): Promise<{ body: HealthEntry[]; meta: QueryMeta }> {
  return readOnce<HealthEntry[]>(agents, endpoints.healthService(name), fresh);
}

export interface ReaderOptions {
  /** Reads in flight at once: the connections the reader may hold to the agent. */
  concurrency: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export interface ReaderSink<T> {
  /** `minIndex`: the highest one asked for since the read was queued. */
  answer(key: string, body: T, meta: QueryMeta, minIndex: bigint): void;
  /** `attempt`: failures in a row for `key`. */
  failed(key: string, error: ConsulError, agent: string, attempt: number): void;
}

interface Want {
  name: string;
  fresh: boolean;
  minIndex: bigint;
}

/**
 * Non-blocking reads of one endpoint (`endpoint(name)`), a few at a time, by
 * key: ?stale, or from the leader (no ?stale) with `fresh`. It is the one way
 * discovery reads again from the leader to confirm what a stale answer
 * suggested (a service, the catalog, a /call lookup), with one retry policy.
 * Asking for a key already queued merges into that request (fresh wins, the
 * highest minIndex wins); asking while it is being read reads it again
 * afterwards, so the last ask is always read. A read that failed to reach
 * Consul is retried with backoff, unless asked again meanwhile; one Consul
 * refused waits for the next ask instead. What supersedes a read is the
 * caller's: forget(key) drops what is queued or waiting to be retried.
 */
export class Reader<T> {
  #queue = new Map<string, Want>();
  #inflight = new Set<string>();
  #attempts = new Map<string, number>();
  #retries = new Map<string, NodeJS.Timeout>();
  /** Bumped by forget(): a read in flight from before answers no one. */
  #generation = new Map<string, number>();
  #idle: Array<() => void> = [];
  #stopped = false;

  constructor(
    private readonly agents: ConsulAgents,
    private readonly opts: ReaderOptions,
    private readonly endpoint: (name: string) => Call,
    private readonly sink: ReaderSink<T>,
    private readonly log: Logger,
  ) {}

  /** Reads `name` soon: `fresh` from the leader, `minIndex` to spot a server that is behind. */
  request(key: string, name: string, opts: { fresh?: boolean; minIndex?: bigint } = {}): void {
    if (this.#stopped) return;
    const q = this.#queue.get(key);
    const minIndex = opts.minIndex ?? 0n;
    this.#queue.set(key, {
      name,
      fresh: (q?.fresh ?? false) || (opts.fresh ?? false),
      minIndex: q && q.minIndex > minIndex ? q.minIndex : minIndex,
    });
    this.#cancelRetry(key); // asked again: no need to wait for the retry
    this.#pump();
  }

  /** Drops everything about `key` (superseded, or no longer followed): queued, waiting to be retried, or in flight. */
  forget(key: string): void {
    if (this.#inflight.has(key)) this.#generation.set(key, (this.#generation.get(key) ?? 0) + 1);
    this.#queue.delete(key);
    this.#cancelRetry(key);
    this.#attempts.delete(key);
  }

  /** A read of `key` is queued, in flight or waiting to be retried. */
  pending(key: string): boolean {
    return this.#queue.has(key) || this.#inflight.has(key) || this.#retries.has(key);
  }

  get busy(): boolean {
    return this.#queue.size > 0 || this.#inflight.size > 0;
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  stop(): void {
    this.#stopped = true;
    this.#queue.clear();
    for (const timer of this.#retries.values()) clearTimeout(timer);
    this.#retries.clear();
    this.#attempts.clear();
    this.#generation.clear();
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  #pump(): void {
    for (const [key, want] of this.#queue) {
      if (this.#inflight.size >= this.opts.concurrency) return;
      if (this.#inflight.has(key)) continue; // read again once the current read is done
      this.#queue.delete(key);
      this.#inflight.add(key);
      void this.#read(key, want);
    }
    if (!this.busy) for (const resolve of this.#idle.splice(0)) resolve();
  }

  async #read(key: string, want: Want): Promise<void> {
    const generation = this.#generation.get(key);
    const forgotten = () => this.#stopped || this.#generation.get(key) !== generation;
    try {
      const { body, meta } = await readOnce<T>(this.agents, this.endpoint(want.name), want.fresh);
      if (forgotten()) return;
      this.#attempts.delete(key);
      guard(this.log, 'handling an answer', { key }, () => this.sink.answer(key, body, meta, want.minIndex), undefined);
    } catch (err) {
      if (forgotten()) return;
      const { consul, agent } = err instanceof ReadError ? err : new ReadError(classifyConsulError(err), '');
      const attempt = (this.#attempts.get(key) ?? 0) + 1;
      this.#attempts.set(key, attempt);
      // Refused reads wait for the next ask; the others retry, unless asked again meanwhile.
      if (consul.retryable && !this.#queue.has(key)) {
        const timer = setTimeout(() => {
          this.#retries.delete(key);
          this.request(key, want.name, want);
        }, backoffDelay(attempt - 1, this.opts.backoffBaseMs, this.opts.backoffMaxMs));
        timer.unref();
        this.#retries.set(key, timer);
      }
      guard(this.log, 'handling a failed read', { key }, () => this.sink.failed(key, consul, agent, attempt), undefined);
    } finally {
      this.#inflight.delete(key);
      this.#generation.delete(key); // only ever tags the one read in flight per key
      if (!this.#stopped) this.#pump();
    }
  }

  #cancelRetry(key: string): void {
    const timer = this.#retries.get(key);
    if (timer) clearTimeout(timer);
    this.#retries.delete(key);
  }
}

// ---------------------------------------------------------------- the reconciliation

export interface ReconcileSink {
  /** The services followed now: lower-case key and name as Consul spells it. */
  services(): Array<{ key: string; name: string }>;
  /** A change of `key` is on its way (a read queued or in flight, a confirmation): not the time to compare. */
  busy(key: string): boolean;
  /** Reads `name` from the leader (no ?stale). */
  read(name: string): Promise<{ body: HealthEntry[]; meta: QueryMeta }>;
  /**
   * Whether a leader's answer would change the table now (and the service got
   * no answer of any kind since the read was sent): a candidate correction.
   */
  differs(key: string, entries: HealthEntry[], meta: QueryMeta): boolean;
  /** Applies a leader's answer through the usual rules, unless anything was applied to `key` since the read was sent; true when the table changed. */
  apply(key: string, entries: HealthEntry[], meta: QueryMeta): boolean;
}

export interface Correction {
  service: string;
  /** ms since the epoch. */
  at: number;
}

export interface ReconcileView {
  /** Full passes over every followed service since start. */
  sweeps: number;
  /** Leader reads that changed the table: each a change the blocking queries had missed. */
  corrections: number;
  lastCorrection: Correction | null;
  lastSweepAt: number | null;
}

// At most this many leader reads a second, whatever the catalog's size (500 services: a pass in ~25 s).
const READS_PER_SECOND = 20;
// A leader's answer that differs from the table may only be ahead of a change on its way through the
// blocking queries (routed in milliseconds, under a second on a loaded machine): it counts as a
// correction only if nothing at all reached that service this long after.
const GRACE_MS = 2000;

/**
 * A safety net under the blocking queries: every `intervalMs`, each followed
 * service is read once from the leader, one at a time, and the answer goes
 * through the same rules as any other. If it changes the table, the blocking
 * queries had missed a change: that is logged as a warning and counted
 * (a discovery bug, or a Consul that lost an event), and the table is right
 * again within one interval. A service with a change on its way is skipped.
 */
export class Reconciler {
  #sweeps = 0;
  #corrections = 0;
  #last: Correction | null = null;
  #lastSweepAt: number | null = null;
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #stopped = false;

  constructor(
    private readonly intervalMs: number,
    private readonly sink: ReconcileSink,
    private readonly log: Logger,
  ) {}

  start(): this {
    if (this.intervalMs > 0) void this.#loop();
    return this;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#wake?.();
  }

  view(): ReconcileView {
    return { sweeps: this.#sweeps, corrections: this.#corrections, lastCorrection: this.#last, lastSweepAt: this.#lastSweepAt };
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      await this.#sleep(this.intervalMs);
      if (this.#stopped) return;
      await this.#sweep();
      if (this.#stopped) return;
      this.#sweeps += 1;
      this.#lastSweepAt = Date.now();
    }
  }

  async #sweep(): Promise<void> {
    for (const { key, name } of this.sink.services()) {
      if (this.#stopped) return;
      if (this.sink.busy(key)) continue;
      let answer: { body: HealthEntry[]; meta: QueryMeta };
      try {
        answer = await this.sink.read(name);
      } catch (err) {
        // Consul trouble is the blocking queries' to report; the next pass tries again.
        this.log.debug({ service: name, err: (err as Error).message }, 'reconciliation read failed');
        await this.#sleep(1000 / READS_PER_SECOND);
        continue;
      }
      if (this.#stopped) return;
      // A change arrived meanwhile: the usual path has it, and this answer may be older.
      const entries = Array.isArray(answer.body) ? answer.body : [];
      if (!this.sink.busy(key) && this.#guard(name, () => this.sink.differs(key, entries, answer.meta))) {
        await this.#sleep(GRACE_MS);
        if (this.#stopped) return;
        const changed = !this.sink.busy(key) && this.#guard(name, () => this.sink.apply(key, entries, answer.meta));
        if (changed) {
          this.#corrections += 1;
          this.#last = { service: name, at: Date.now() };
          this.log.warn(
            { service: name, index: String(answer.meta.index), corrections: this.#corrections },
            'the table differed from consul: corrected from a leader read (the blocking queries had missed a change)',
          );
        }
      }
      await this.#sleep(1000 / READS_PER_SECOND);
    }
  }

  #guard(service: string, fn: () => boolean): boolean {
    return guard(this.log, 'applying a reconciliation answer', { service }, fn, false);
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms);
      this.#timer.unref();
    });
  }
}
