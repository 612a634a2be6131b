import type { ConsulState, Instance, RouteTable } from '@stack/shared';

/**
 * What happened to routing, as a person watching the dashboard wants to read
 * it: instances coming and going, passive-health ejections, Consul's health.
 */
export type EventType =
  | 'synced'
  | 'service-added'
  | 'service-removed'
  | 'instance-added'
  | 'instance-removed'
  | 'instance-changed'
  | 'instance-ejected'
  | 'instance-readmitted'
  | 'consul-degraded'
  | 'consul-recovered'
  | 'consul-leader-lost'
  | 'consul-leader-known'
  | 'consul-leader-changed';

export interface GatewayEvent {
  /** Increasing from 1 within one gateway process (see EventFeed.boot). */
  id: number;
  at: string;
  type: EventType;
  service?: string;
  instance?: string;
  /** The table version a table event came with. */
  version?: number;
  detail: string;
}

export type NewEvent = Omit<GatewayEvent, 'id' | 'at'>;

/** The last `capacity` items; older ones fall off. */
export class Ring<T> {
  #items: T[] = [];
  #start = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new Error('Ring capacity must be at least 1');
  }

  get size(): number {
    return this.#items.length;
  }

  push(item: T): void {
    if (this.#items.length < this.capacity) this.#items.push(item);
    else {
      this.#items[this.#start] = item;
      this.#start = (this.#start + 1) % this.capacity;
    }
  }

  /** Oldest first. */
  toArray(): T[] {
    return [...this.#items.slice(this.#start), ...this.#items.slice(0, this.#start)];
  }
}

const where = (i: Instance) => `${i.address}:${i.port}${i.node ? ` on ${i.node}` : ''}`;

/** The table events between two tables: services and instances that came, went or moved. */
export function diffTables(prev: RouteTable, next: RouteTable): NewEvent[] {
  const out: NewEvent[] = [];
  const version = next.version;
  for (const [service, list] of next.services) {
    const before = prev.services.get(service);
    // Tables share unchanged lists, so a same reference means nothing to compare.
    if (before === list) continue;
    if (!before) out.push({ type: 'service-added', service, version, detail: `${list.length} passing instance(s)` });
    const old = new Map((before ?? []).map((i) => [i.key, i]));
    for (const i of list) {
      const o = old.get(i.key);
      if (!o) out.push({ type: 'instance-added', service, instance: i.id, version, detail: `passing at ${where(i)}` });
      else if (o.address !== i.address || o.port !== i.port)
        out.push({ type: 'instance-changed', service, instance: i.id, version, detail: `moved from ${where(o)} to ${where(i)}` });
      old.delete(i.key);
    }
    for (const o of old.values())
      out.push({ type: 'instance-removed', service, instance: o.id, version, detail: `no longer passing (was ${where(o)})` });
  }
  for (const [service, list] of prev.services) {
    if (next.services.has(service)) continue;
    for (const o of list)
      out.push({ type: 'instance-removed', service, instance: o.id, version, detail: `service left the catalog (was ${where(o)})` });
    out.push({ type: 'service-removed', service, version, detail: 'no longer in the Consul catalog' });
  }
  return out;
}

// Reasons carry figures that move on every read ("answers are 1234 ms stale"):
// compared without digits, a degraded Consul is one event, not one a sample.
const reasonsShape = (reasons: readonly string[]) => reasons.map((r) => r.replace(/\d+/g, '#')).join('\n');

/** Consul health transitions between two samples of discovery.state(). */
export function diffConsul(prev: ConsulState | null, next: ConsulState): NewEvent[] {
  const out: NewEvent[] = [];
  const reasons = next.reasons.join('; ');
  if (next.degraded && (!prev?.degraded || reasonsShape(prev.reasons) !== reasonsShape(next.reasons)))
    out.push({ type: 'consul-degraded', detail: reasons || 'degraded' });
  else if (prev?.degraded && !next.degraded) out.push({ type: 'consul-recovered', detail: `answering normally via ${next.agent ?? 'the agent'}` });
  if (prev) {
    if (prev.knownLeader && !next.knownLeader) out.push({ type: 'consul-leader-lost', detail: 'consul reports no known raft leader' });
    // Before Consul's first answer "no leader" only means "not asked yet".
    else if (!prev.knownLeader && next.knownLeader && prev.lastContact !== null)
      out.push({ type: 'consul-leader-known', detail: 'consul has a raft leader again' });
  }
  return out;
}

/**
 * What the event feed keeps of one ejection between two samples (shared's
 * `Ejection` is the outlier detector's full record of it).
 */
export interface EjectionSample {
  service: string;
  instance: string;
  until: number;
}

/**
 * Ejection transitions between two samples of the outlier detector. `seen`
 * maps service|address:port to the last sample's ejection; `current` is this
 * sample's. An instance that left the table is dropped without an event (its
 * removal already is one).
 */
export function diffEjections(seen: ReadonlyMap<string, EjectionSample>, current: ReadonlyMap<string, EjectionSample>, inTable: (key: string) => boolean, now: number): NewEvent[] {
  const out: NewEvent[] = [];
  for (const [key, e] of current) {
    const before = seen.get(key);
    // A later deadline than the last sample's is a new ejection (readmitted and ejected again in between).
    if (!before || e.until > before.until)
      out.push({
        type: 'instance-ejected',
        service: e.service,
        instance: e.instance,
        detail: `passive health: ejected for ${Math.max(0, Math.round((e.until - now) / 1000))} s, until ${new Date(e.until).toISOString()}`,
      });
  }
  for (const [key, e] of seen)
    if (!current.has(key) && inTable(key)) out.push({ type: 'instance-readmitted', service: e.service, instance: e.instance, detail: 'ejection over: routed again' });
  return out;
}

export interface EventFeedDeps {
  table: () => RouteTable;
  state: () => ConsulState;
  /** The outlier detector's view of an instance (by instance.key). */
  ejectedUntil: (key: string) => number | null;
  capacity?: number;
  now?: () => number;
}

export type EventListener = (e: GatewayEvent) => void;

/**
 * The gateway's recent history: a bounded ring of events fed by table changes
 * (tableChanged, wired to discovery's 'change') and a light sampler of the
 * outlier detector and of Consul's state. It also remembers when each
 * instance was first seen, for "joined at". Nothing here runs per request.
 */
export class EventFeed {
  /** Tells one process's event ids from another's: a restarted gateway counts from 1 again. */
  readonly boot: string;
  #ring: Ring<GatewayEvent>;
  #nextId = 1;
  #listeners = new Set<EventListener>();
  #table: RouteTable;
  #consul: ConsulState | null = null;
  #ejections = new Map<string, EjectionSample>();
  /** service → instance identity → first seen (ms). */
  #joined = new Map<string, Map<string, number>>();
  #timer: NodeJS.Timeout | undefined;
  readonly #now: () => number;

  constructor(private readonly deps: EventFeedDeps) {
    this.#now = deps.now ?? Date.now;
    this.#ring = new Ring(deps.capacity ?? 200);
    this.boot = this.#now().toString(36);
    this.#table = deps.table();
    if (this.#table.services.size > 0) this.tableChanged(this.#table, { version: 0, changedAt: null, services: new Map() });
  }

  /** Oldest first. */
  recent(): GatewayEvent[] {
    return this.#ring.toArray();
  }

  /** Events after `id` (all kept ones when `id` is older than the ring or unknown). */
  after(id: number): GatewayEvent[] {
    const all = this.#ring.toArray();
    if (!(id >= 0) || id >= this.#nextId) return all;
    return all.filter((e) => e.id > id);
  }

  subscribe(fn: EventListener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  record(e: NewEvent): GatewayEvent {
    const ev: GatewayEvent = { id: this.#nextId++, at: new Date(this.#now()).toISOString(), ...e };
    this.#ring.push(ev);
    for (const fn of this.#listeners) {
      try {
        fn(ev);
      } catch {
        // A broken listener (a dead stream) must not stop the others or the feed.
      }
    }
    return ev;
  }

  /** When the gateway first saw this instance of `service` passing (ISO), if it is in the table. */
  joinedAt(service: string, i: Instance): string | null {
    const t = this.#joined.get(service)?.get(i.key);
    return t === undefined ? null : new Date(t).toISOString();
  }

  /** Discovery emitted a new table. `prev` defaults to the last table seen. */
  tableChanged(next: RouteTable, prev: RouteTable = this.#table): void {
    this.#table = next;
    const now = this.#now();
    for (const [service, list] of next.services) {
      if (prev.services.get(service) === list && this.#joined.has(service)) continue;
      const was = this.#joined.get(service) ?? new Map<string, number>();
      const kept = new Map<string, number>();
      for (const i of list) kept.set(i.key, was.get(i.key) ?? now);
      this.#joined.set(service, kept);
    }
    for (const service of this.#joined.keys()) if (!next.services.has(service)) this.#joined.delete(service);
    for (const e of diffTables(prev, next)) this.record(e);
  }

  synced(services: number): void {
    this.record({ type: 'synced', detail: `first sync with Consul complete: ${services} routable service(s)` });
  }

  /** One look at the outlier detector and Consul's state; the timer calls it. */
  sample(): void {
    const now = this.#now();
    const table = this.deps.table();
    if (table !== this.#table) this.tableChanged(table);
    const current = new Map<string, EjectionSample>();
    for (const [service, list] of table.services)
      for (const i of list) {
        const until = this.deps.ejectedUntil(i.key);
        if (until !== null) current.set(`${service}|${i.key}`, { service, instance: i.id, until });
      }
    const inTable = (key: string) => {
      const [service, instance] = [key.slice(0, key.indexOf('|')), key.slice(key.indexOf('|') + 1)];
      return (table.services.get(service) ?? []).some((i) => i.key === instance);
    };
    for (const e of diffEjections(this.#ejections, current, inTable, now)) this.record(e);
    this.#ejections = current;
    const consul = this.deps.state();
    for (const e of diffConsul(this.#consul, consul)) this.record(e);
    this.#consul = consul;
  }

  /** Samples every `intervalMs` on an unref'd timer: it never keeps the process alive. */
  start(intervalMs = 500): this {
    if (this.#timer) return this;
    this.sample();
    this.#timer = setInterval(() => this.sample(), intervalMs);
    this.#timer.unref();
    return this;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
  }
}
