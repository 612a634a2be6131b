import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.js';
import { classifyConsulError, type ConsulError } from './errors.js';
import type { HealthEntry } from './instances.js';
import type { QueryMeta } from './meta.js';
import { endpoints, type ConsulPool } from './pool.js';
import { readOnce, ReadError } from './read.js';

export interface ServiceReaderOptions {
  /** Reads in flight at once: the connections the reader may hold to the agent. */
  concurrency: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export interface ServiceReaderSink {
  answer(key: string, entries: HealthEntry[], meta: QueryMeta, minIndex: bigint): void;
  failed(key: string, error: ConsulError, agent: string): void;
}

/** One plain read of /v1/health/service/<name>: ?stale, or from the leader when `fresh`. */
export function readService(pool: ConsulPool, name: string, fresh: boolean): Promise<{ body: HealthEntry[]; meta: QueryMeta }> {
  return readOnce<HealthEntry[]>(pool, endpoints.healthService(name), fresh);
}

interface Want {
  name: string;
  fresh: boolean;
  minIndex: bigint;
}

/**
 * Non-blocking reads of /v1/health/service/<name>, a few at a time, for the
 * services the health state or the catalog says changed. Asking for a service
 * already queued merges into that request; asking while it is being read
 * reads it again afterwards, so the last change is always read. A read that
 * failed to reach Consul is retried with backoff; one Consul refused waits for
 * the next change (or sweep) instead.
 */
export class ServiceReader {
  #queue = new Map<string, Want>();
  #inflight = new Set<string>();
  #attempts = new Map<string, number>();
  #retries = new Map<string, NodeJS.Timeout>();
  #idle: Array<() => void> = [];
  #stopped = false;

  constructor(
    private readonly pool: ConsulPool,
    private readonly opts: ServiceReaderOptions,
    private readonly sink: ServiceReaderSink,
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

  /** Drops everything about `key` (the service is no longer followed). */
  forget(key: string): void {
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
    try {
      const { body, meta } = await readService(this.pool, want.name, want.fresh);
      if (this.#stopped) return;
      this.#attempts.delete(key);
      this.#call(() => this.sink.answer(key, Array.isArray(body) ? body : [], meta, want.minIndex));
    } catch (err) {
      if (this.#stopped) return;
      const { consul, agent } = err instanceof ReadError ? err : new ReadError(classifyConsulError(err), '');
      const attempt = (this.#attempts.get(key) ?? 0) + 1;
      this.#attempts.set(key, attempt);
      // Refused reads wait for the next change; the others retry, unless asked again meanwhile.
      if (consul.retryable && !this.#queue.has(key)) {
        const timer = setTimeout(() => {
          this.#retries.delete(key);
          this.request(key, want.name, want);
        }, backoffDelay(attempt - 1, this.opts.backoffBaseMs, this.opts.backoffMaxMs));
        timer.unref();
        this.#retries.set(key, timer);
      }
      this.#call(() => this.sink.failed(key, consul, agent));
    } finally {
      this.#inflight.delete(key);
      if (!this.#stopped) this.#pump();
    }
  }

  #cancelRetry(key: string): void {
    const timer = this.#retries.get(key);
    if (timer) clearTimeout(timer);
    this.#retries.delete(key);
  }

  #call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, 'bug: handling a service answer threw; consul is not at fault');
    }
  }
}
