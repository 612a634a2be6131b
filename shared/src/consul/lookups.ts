import type { Logger } from 'pino';
import { BlockingQuery } from './blocking.js';
import type { ConsulError } from './errors.js';
import type { HealthEntry, Instance } from './instances.js';
import type { QueryMeta } from './meta.js';
import { endpoints, type ConsulPool } from './pool.js';
import { Reader } from './read.js';
import { TrackedService } from './tracked-service.js';

export interface LookupOptions {
  waitMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  staleAfterMs: number;
  emptyConfirmMs: number;
}

export interface LookupSink {
  current(key: string): readonly Instance[] | undefined;
  apply(key: string, instances: Instance[]): void;
  answered(meta: QueryMeta): void;
  failed(error: ConsulError, agent: string, what: string, attempt: number): void;
}

// Leader reads in flight at once (each confirms one service).
const LEADER_READS = 3;

interface Lookup {
  query: BlockingQuery<HealthEntry[]>;
  tracked: TrackedService;
  /** Resolves once the first answer is in the table (or Consul refused the read). */
  first: Promise<void>;
}

/**
 * On-demand lookups, for web-service's /call: one blocking query per service
 * asked for, kept for the life of the process. Few services and exact
 * (a service's own index moves only when that service changes), which is why
 * /call keeps them instead of the gateway's health-state feed; the caller
 * bounds how many (CALL_MAX_SERVICES).
 */
export class ServiceLookups {
  #lookups = new Map<string, Lookup>();
  /** Reads from the leader, for an answer that would take instances away but could not be trusted. */
  #leader: Reader<HealthEntry[]>;
  #stopped = false;

  constructor(
    private readonly pool: ConsulPool,
    private readonly opts: LookupOptions,
    private readonly sink: LookupSink,
    private readonly log: Logger,
  ) {
    this.#leader = new Reader<HealthEntry[]>(pool, { concurrency: LEADER_READS, ...opts }, endpoints.healthService, {
      answer: (key, body, meta) => {
        const l = this.#lookups.get(key);
        if (!l) return;
        sink.answered(meta);
        l.tracked.answer(Array.isArray(body) ? body : [], meta);
      },
      // No leader to ask: keep what is routed; the read is retried with backoff.
      failed: (key, e, agent, attempt) => sink.failed(e, agent, `service ${this.#lookups.get(key)?.tracked.name ?? key} (from the leader)`, attempt),
    }, log);
  }

  /** Resolves once `name`'s first answer is in the table, or after timeoutMs with whatever is known. */
  async lookup(name: string, timeoutMs: number): Promise<void> {
    if (this.#stopped) return;
    const l = this.#start(name.toLowerCase(), name);
    if (l.tracked.seen) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([l.first, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  stop(): void {
    this.#stopped = true;
    this.#leader.stop();
    for (const l of this.#lookups.values()) {
      l.query.stop();
      l.tracked.stop();
    }
    this.#lookups.clear();
  }

  #start(key: string, name: string): Lookup {
    const existing = this.#lookups.get(key);
    if (existing) return existing;
    let resolveFirst!: () => void;
    const first = new Promise<void>((r) => (resolveFirst = r));
    const call = endpoints.healthService(name);
    const query = new BlockingQuery<HealthEntry[]>(this.pool, call, { ...this.opts, name: `service ${name}`, log: this.log });
    const tracked = new TrackedService(name, { staleAfterMs: this.opts.staleAfterMs, holdFloorMs: this.opts.emptyConfirmMs }, {
      current: () => this.sink.current(key),
      apply: (instances) => this.sink.apply(key, instances),
      confirm: () => this.#leader.request(key, name, { fresh: true }),
    }, this.log);
    const l: Lookup = { query, tracked, first };
    query.on('ok', (meta: QueryMeta) => this.sink.answered(meta));
    query.on('data', (body: HealthEntry[], meta: QueryMeta) => {
      tracked.answer(Array.isArray(body) ? body : [], meta);
      if (tracked.seen) resolveFirst();
    });
    query.on('error', (e: ConsulError, agent: string, attempt: number) => {
      tracked.failed(e);
      this.sink.failed(e, agent, `service ${name}`, attempt);
      if (!e.retryable) resolveFirst(); // waiting longer will not help
    });
    this.#lookups.set(key, l);
    query.start();
    return l;
  }
}
