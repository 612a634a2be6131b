import type { Logger } from 'pino';
import { BlockingQuery } from './blocking.js';
import type { ConsulError } from './errors.js';
import type { HealthEntry, Instance } from './instances.js';
import type { QueryMeta } from './meta.js';
import { endpoints, type Call, type ConsulPool } from './pool.js';
import { readOnce, ReadError } from './read.js';
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
  #stopped = false;

  constructor(
    private readonly pool: ConsulPool,
    private readonly opts: LookupOptions,
    private readonly sink: LookupSink,
    private readonly log: Logger,
  ) {}

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
      confirm: () => this.#confirm(key, l, call),
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

  /** A read from the leader, for an answer that would take instances away but could not be trusted. */
  #confirm(key: string, l: Lookup, call: Call): void {
    void readOnce<HealthEntry[]>(this.pool, call, true).then(
      ({ body, meta }) => {
        if (this.#lookups.get(key) !== l) return;
        this.sink.answered(meta);
        l.tracked.answer(Array.isArray(body) ? body : [], meta);
      },
      (err: ReadError) => {
        // No leader to ask: keep what is routed; the next answer of the blocking query tries again.
        if (this.#lookups.get(key) !== l) return;
        this.sink.failed(err.consul, err.agent, `service ${l.tracked.name} (from the leader)`, 1);
      },
    );
  }
}
