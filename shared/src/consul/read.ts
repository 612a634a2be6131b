import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.js';
import { guard } from './emit.js';
import { classifyConsulError, type ConsulError } from './errors.js';
import type { HealthEntry } from './instances.js';
import { readMeta, type QueryMeta, type Response } from './meta.js';
import { endpoints, type Call, type ConsulPool } from './pool.js';

// A plain read answers in milliseconds; past this the agent is stuck.
const READ_TIMEOUT_MS = 5_000;

/** A failed read, with what it means for discovery. */
export class ReadError extends Error {
  constructor(
    readonly consul: ConsulError,
    readonly agent: string,
  ) {
    super(consul.message);
  }
}

/**
 * One non-blocking read from the preferred agent: ?stale by default (any
 * server answers), or `fresh` (no ?stale: the leader answers, so a removal a
 * stale answer suggested can be confirmed). A failure reaching the agent moves
 * the pool to the next one, as a blocking query's would.
 */
export async function readOnce<T>(pool: ConsulPool, call: Call, fresh = false): Promise<{ body: T; meta: QueryMeta }> {
  const { client, index, address } = pool.current();
  try {
    const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
    const [res, body] = (await call(client, { ...(fresh ? {} : { stale: true }), timeout: READ_TIMEOUT_MS, ctx })) as [Response, T];
    return { body, meta: readMeta(res, address.url, fresh) };
  } catch (err) {
    const e = classifyConsulError(err);
    if (e.failover) pool.reportFailure(index);
    throw new ReadError(e, address.url);
  }
}

/** One plain read of /v1/health/service/<name>: ?stale, or from the leader when `fresh`. */
export function readService(pool: ConsulPool, name: string, fresh: boolean): Promise<{ body: HealthEntry[]; meta: QueryMeta }> {
  return readOnce<HealthEntry[]>(pool, endpoints.healthService(name), fresh);
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
    private readonly pool: ConsulPool,
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
      const { body, meta } = await readOnce<T>(this.pool, this.endpoint(want.name), want.fresh);
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
      if (this.#generation.get(key) === generation) this.#generation.delete(key);
      if (!this.#stopped) this.#pump();
    }
  }

  #cancelRetry(key: string): void {
    const timer = this.#retries.get(key);
    if (timer) clearTimeout(timer);
    this.#retries.delete(key);
  }
}
