import type { Logger } from 'pino';
import { BlockingQuery } from './blocking.js';
import { EmptyHold, isSuspiciousEmpty } from './empty-hold.js';
import { describeConsulError, type ConsulError } from './errors.js';
import { routableServiceNames } from './instances.js';
import type { QueryMeta } from './meta.js';
import { endpoints, type ConsulPool } from './pool.js';
import { Reader } from './read.js';
import { distrust } from './trust.js';

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
 * an answer that can't be trusted (see trust.ts) is dropped only once a read
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
    private readonly pool: ConsulPool,
    private readonly opts: CatalogFollowerOptions,
    private readonly sink: CatalogFollowerSink,
    private readonly log: Logger,
  ) {
    this.#hold = new EmptyHold<string[]>((names) => {
      log.warn('consul still has no services: dropping the last table');
      this.#apply(names);
    });
    this.#leader = new Reader<Catalog>(pool, { concurrency: 1, ...opts }, () => listCatalog, {
      answer: (_key, body, meta) => {
        sink.answered(meta);
        this.#answer(body ?? {}, meta);
      },
      failed: (_key, e, agent, attempt) => sink.failed(e, agent, 'catalog (from the leader)', attempt),
    }, log);
    this.#query = new BlockingQuery<Catalog>(pool, listCatalog, { ...opts, name: 'catalog', log });
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
