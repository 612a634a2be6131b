import type { Logger } from 'pino';
import { type ConsulError, type ConsulAgents, describeConsulError, endpoints, type QueryMeta } from './agents.js';
import { BlockingQuery } from './blocking-query.js';
import { checkKey, type FeedView, patchEntries } from './changes.js';
import { decideServiceAnswer, distrust, EmptyHold, type HealthEntry, holdMsFor, type Instance } from './instances.js';
import { Reader } from './reads.js';

/**
 * One service's answers on their way into the route table (TrackedService),
 * and the long-lived blocking watches of single services that /call uses
 * (ServiceWatches).
 */

export interface TrackedServiceOptions {
  /** Above this X-Consul-LastContact (ms) an answer can't take instances away on its own. */
  staleAfterMs: number;
  /** CONSUL_EMPTY_CONFIRM_MS: the shortest hold of an N → 0 answer (0: no hold). */
  holdFloorMs: number;
}

/** Where a tracked service's instances go, and how it asks for a confirming read. */
export interface TrackedServiceSink {
  current(): readonly Instance[] | undefined;
  apply(instances: Instance[]): void;
  /** Read the service again from the leader (no ?stale). */
  confirm(): void;
}

export interface ServiceFailure {
  error: ConsulError;
  attempts: number;
  since: number;
}

/** What a tracked service's answers did to the table, for /_gateway/explain (explain.ts). */
export interface TrackedServiceView {
  name: string;
  /** Highest X-Consul-Index applied (0n: none). */
  index: bigint;
  /** How long an N → 0 answer is held now (ms; 0: not held). */
  holdMs: number;
  /** The N → 0 answer being held: since when and until when (ms since the epoch). */
  hold: { since: number; until: number } | null;
  /** The last answer would have taken instances away but was not trusted: why, and since when it waits for the leader. */
  untrusted: { why: string; since: number } | null;
  /** Routing to instances whose only failing check is their lost agent's (nothing passes). */
  agentLost: boolean;
  failure: ServiceFailure | undefined;
  /** The entries behind the table's instances: last read, statuses patched by the check feed since (outputs may be older). */
  entries: readonly HealthEntry[] | undefined;
}

// Leader answers in a row older than a change already applied before one is believed anyway.
const FRESH_BEHIND_MAX = 3;

// Failed reads after which a failing service no longer holds the first sync up.
const SETTLE_AFTER_ATTEMPTS = 3;

/**
 * One service's answers on their way into the route table: the trust and
 * empty-answer policies (decideServiceAnswer, instances.ts) with the state they need: the
 * highest index applied, the hold, the nodes its instances run on, and its
 * failures.
 */
export class TrackedService {
  #index = 0n;
  #holdMs: number;
  #hold: EmptyHold<Instance[]>;
  #agentLost = false;
  #untrusted: { why: string; since: number } | null = null;
  #seen = false;
  #failure: ServiceFailure | undefined;
  #nodes: ReadonlySet<string> = new Set();
  /** The entries behind the table's instances (last read, patched by the feed since). */
  #entries: readonly HealthEntry[] | undefined;
  /** Highest check ModifyIndex the feed patched in: a read older than that is behind. */
  #patchedAt = 0n;
  /** Leader answers in a row found older than #patchedAt. */
  #freshBehind = 0;

  constructor(
    readonly name: string,
    private readonly opts: TrackedServiceOptions,
    private readonly sink: TrackedServiceSink,
    private readonly log: Logger,
  ) {
    this.#holdMs = holdMsFor([], opts.holdFloorMs);
    this.#hold = new EmptyHold<Instance[]>((instances) => {
      this.log.warn({ service: name }, 'consul still says no instance passes: dropping the last ones');
      this.#applyNow(instances);
    });
  }

  /** An answer was applied or held (the service is in the table or about to be). */
  get seen(): boolean {
    return this.#seen;
  }

  get holding(): boolean {
    return this.#hold.holding;
  }

  get failure(): ServiceFailure | undefined {
    return this.#failure;
  }

  /** No longer worth waiting for at the first sync: answered, or failing for good or for a while. */
  get settled(): boolean {
    const f = this.#failure;
    return this.#seen || (f !== undefined && (!f.error.retryable || f.attempts >= SETTLE_AFTER_ATTEMPTS));
  }

  /** Highest X-Consul-Index applied. */
  get index(): bigint {
    return this.#index;
  }

  /** The entries behind the table's instances (undefined: not read yet). */
  get entries(): readonly HealthEntry[] | undefined {
    return this.#entries;
  }

  /**
   * Whether the entries show a check not passing that the check feed's answer
   * at `index` (every check not passing then) does not: it was written at or
   * before `index` (its ModifyIndex), so it has passed or gone since, and the
   * read behind the entries came from a server behind the feed's.
   */
  contradicts(view: FeedView, index: bigint): boolean {
    for (const e of this.#entries ?? []) {
      const node = e.Node?.Node ?? '';
      for (const c of e.Checks ?? []) {
        if (c.Status === 'passing' || !c.CheckID || c.ModifyIndex === undefined || BigInt(c.ModifyIndex) > index) continue;
        const now = view.checks.get(checkKey(node, c.CheckID));
        if (!now || now.status === 'passing') return true;
      }
    }
    return false;
  }

  /** Whether an answer at `index` is older than what this service already applied (an answer or a feed patch). */
  behind(index: bigint): boolean {
    return index < this.#index || index < this.#patchedAt;
  }

  /** Nodes the last applied answer had instances on. */
  get nodes(): ReadonlySet<string> {
    return this.#nodes;
  }

  view(): TrackedServiceView {
    return {
      name: this.name,
      index: this.#index,
      holdMs: this.#holdMs,
      hold: this.#hold.window,
      untrusted: this.#untrusted,
      agentLost: this.#agentLost,
      failure: this.#failure,
      entries: this.#entries,
    };
  }

  /**
   * A /v1/health/service answer. `minIndex`: the health state showed a check of
   * this service written at that index, so an older answer is known to be behind.
   */
  answer(entries: readonly HealthEntry[], meta: QueryMeta, minIndex = 0n): void {
    this.#failure = undefined;
    const floor = minIndex > this.#patchedAt ? minIndex : this.#patchedAt;
    if (meta.index < floor && (!meta.fresh || this.#freshBehind < FRESH_BEHIND_MAX)) {
      const at = { service: this.name, index: String(meta.index), minIndex: String(floor) };
      // Even the leader's answer can be older than a change applied meanwhile from the check feed:
      // it was read before that change and arrived after it. Asked again; a few in a row are
      // believed (a restored snapshot sends every index back, see resync()).
      if (meta.fresh) this.#freshBehind += 1;
      this.log.debug(at, 'answer older than a change already seen: asking the leader');
      this.#distrusted(`the answer (index ${meta.index}) is older than a change already seen (index ${floor})`);
      this.sink.confirm();
      return;
    }
    this.#freshBehind = 0;
    if (!this.#decide(entries, meta, distrust(meta, this.#index, this.opts.staleAfterMs))) return;
    this.#index = meta.fresh || meta.index > this.#index ? meta.index : this.#index;
    this.#seen = true;
  }

  /**
   * A check feed answer (`why`: why it can't be trusted for removals, as for
   * a read): applied to the known entries without reading the service, under
   * the same rules as a read. 'read' when the feed can't settle it alone (see
   * patchEntries, changes.ts): nothing known yet, a check gone from the list, a new instance.
   */
  patch(view: FeedView, meta: QueryMeta, why: string | null): 'done' | 'read' {
    if (!this.#entries) return 'read';
    const p = patchEntries(this.#entries, this.name.toLowerCase(), view);
    if (!p) return 'read';
    if (p.changed) {
      if (p.asOf > this.#patchedAt) this.#patchedAt = p.asOf;
      this.#decide(p.entries, meta, why);
    }
    return p.unknownInstance ? 'read' : 'done';
  }

  /** Applies (or holds) what `entries` make routable; false when a read from the leader must confirm it first. */
  #decide(entries: readonly HealthEntry[], meta: QueryMeta, why: string | null): boolean {
    const before = this.sink.current();
    const d = decideServiceAnswer({ before, entries, distrust: why, holdMs: this.#holdMs });
    if (d.action === 'confirm') {
      this.log.info({ service: this.name, why: d.why, agent: meta.agent }, 'consul answer would take instances away but cannot be trusted yet: asking the leader');
      this.#distrusted(d.why);
      this.sink.confirm();
      return false;
    }
    this.#untrusted = null;
    this.#entries = entries;
    if (d.action === 'hold') {
      if (this.#hold.hold(d.instances, this.#holdMs))
        this.log.warn({ service: this.name, before: before?.length ?? 0, holdMs: this.#holdMs }, 'consul says no instance passes; keeping the last ones until that holds');
      return true;
    }
    if (this.#hold.cancel()) this.log.info({ service: this.name }, 'instances pass again; the empty answer was transient');
    if (d.agentLost && !this.#agentLost)
      this.log.warn({ service: this.name, instances: d.instances.length }, 'no instance passes, but only because their Consul agent is unreachable: still routing to them');
    this.#agentLost = d.agentLost;
    this.#nodes = new Set(entries.map((e) => e.Node?.Node ?? '').filter((n) => n !== ''));
    if (d.instances.length > 0) this.#holdMs = holdMsFor(entries.flatMap((e) => e.Checks ?? []), this.opts.holdFloorMs);
    this.#applyNow(d.instances);
    return true;
  }

  /** The catalog's index went back (a restored snapshot): older indexes are no longer a sign of a lagging read. */
  indexWentBack(): void {
    this.#patchedAt = 0n;
    this.#freshBehind = 0;
  }

  /** A read of this service failed. */
  failed(error: ConsulError): void {
    const f = this.#failure;
    this.#failure = { error, attempts: (f?.attempts ?? 0) + 1, since: f?.since ?? Date.now() };
    if (!f && !error.retryable)
      this.log.error({ service: this.name, err: describeConsulError(error) }, `consul refuses to read service ${this.name}: ${error.kind === 'denied' ? 'check the ACL token' : 'a request Consul will not accept'}`);
  }

  stop(): void {
    this.#hold.cancel();
  }

  #distrusted(why: string): void {
    this.#untrusted = { why, since: this.#untrusted?.since ?? Date.now() };
  }

  #applyNow(instances: Instance[]): void {
    const before = this.sink.current()?.length ?? 0;
    this.sink.apply(instances);
    if (before !== instances.length) this.log.info({ service: this.name, instances: instances.length, before }, 'passing instances changed');
  }
}

// ---------------------------------------------------------------- /call's watches of single services

export interface ServiceWatchOptions {
  waitMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  staleAfterMs: number;
  emptyConfirmMs: number;
}

export interface ServiceWatchSink {
  current(key: string): readonly Instance[] | undefined;
  apply(key: string, instances: Instance[]): void;
  answered(meta: QueryMeta): void;
  failed(error: ConsulError, agent: string, what: string, attempt: number): void;
}

// Leader reads in flight at once (each confirms one service).
const LEADER_READS = 3;

interface Watch {
  query: BlockingQuery<HealthEntry[]>;
  tracked: TrackedService;
  /** Resolves once the first answer is in the table (or Consul refused the read). */
  first: Promise<void>;
}

/**
 * Long-lived watches of single services, for web-service's /call: one blocking query per service
 * asked for, kept for the life of the process. Few services and exact
 * (a service's own index moves only when that service changes), which is why
 * /call keeps them instead of the gateway's health-state feed; the caller
 * bounds how many (CALL_MAX_SERVICES).
 */
export class ServiceWatches {
  #watches = new Map<string, Watch>();
  /** Reads from the leader, for an answer that would take instances away but could not be trusted. */
  #leader: Reader<HealthEntry[]>;
  #stopped = false;

  constructor(
    private readonly agents: ConsulAgents,
    private readonly opts: ServiceWatchOptions,
    private readonly sink: ServiceWatchSink,
    private readonly log: Logger,
  ) {
    this.#leader = new Reader<HealthEntry[]>(agents, { concurrency: LEADER_READS, ...opts }, endpoints.healthService, {
      answer: (key, body, meta) => {
        const l = this.#watches.get(key);
        if (!l) return;
        sink.answered(meta);
        l.tracked.answer(Array.isArray(body) ? body : [], meta);
      },
      // No leader to ask: keep what is routed; the read is retried with backoff.
      failed: (key, e, agent, attempt) => sink.failed(e, agent, `service ${this.#watches.get(key)?.tracked.name ?? key} (from the leader)`, attempt),
    }, log);
  }

  /** Resolves once `name`'s first answer is in the table, or after timeoutMs with whatever is known. */
  async watch(name: string, timeoutMs: number): Promise<void> {
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
    for (const l of this.#watches.values()) {
      l.query.stop();
      l.tracked.stop();
    }
    this.#watches.clear();
  }

  #start(key: string, name: string): Watch {
    const existing = this.#watches.get(key);
    if (existing) return existing;
    let resolveFirst!: () => void;
    const first = new Promise<void>((r) => (resolveFirst = r));
    const call = endpoints.healthService(name);
    const query = new BlockingQuery<HealthEntry[]>(this.agents, call, { ...this.opts, name: `service ${name}`, log: this.log });
    const tracked = new TrackedService(name, { staleAfterMs: this.opts.staleAfterMs, holdFloorMs: this.opts.emptyConfirmMs }, {
      current: () => this.sink.current(key),
      apply: (instances) => this.sink.apply(key, instances),
      confirm: () => this.#leader.request(key, name, { fresh: true }),
    }, this.log);
    const l: Watch = { query, tracked, first };
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
    this.#watches.set(key, l);
    query.start();
    return l;
  }
}
