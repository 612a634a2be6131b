import type { QueryMeta } from './agents.js';

/**
 * What an answer makes routable: pure decisions with table-driven tests.
 * Which entries are routable instances (and why not), what an answer may
 * take away (trust), what to do with a service's answer (apply, confirm with
 * the leader, hold), and how long a sudden "nothing passes" is held.
 */

/** One routable instance of a service, as the gateway and /call use it. */
export interface Instance {
  id: string;
  service: string;
  address: string;
  port: number;
  node: string;
  tags: string[];
  /** The instance's one identity (instanceKey): what the gateway keys per-instance state by. */
  key: string;
}

/**
 * An instance's identity: Consul's service id is unique per node (agent), so
 * node/id is unique in the datacenter; the same id on two nodes is two instances.
 */
export function instanceKey(node: string, id: string): string {
  return `${node}/${id}`;
}

/** The parts of a check in a /v1/health/service/<name> entry we read (Name, Output, Notes: for explain.ts). */
export type HealthCheck = { Status?: string; CheckID?: string; Name?: string; Output?: string; Notes?: string; ModifyIndex?: number } & CheckSchedule;

/** The parts of a /v1/health/service/<name> entry we read. */
export interface HealthEntry {
  Node?: { Node?: string; Address?: string };
  Service?: { ID?: string; Service?: string; Address?: string; Port?: number; Tags?: string[] | null; ModifyIndex?: number };
  Checks?: HealthCheck[] | null;
}

/**
 * Consul's DNS-safe service name: letters, digits and dashes, 1-63 chars, not
 * starting or ending with a dash. Also what the gateway accepts in a URL, so
 * a name can never smuggle a dot, slash, colon or @ into anything.
 */
const SERVICE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

export function isValidServiceName(name: string): boolean {
  return SERVICE_NAME.test(name);
}

/** Why one entry is not routable on its own. */
export type EntryProblem =
  /** A check (service or node) that is not passing: warning counts, maintenance is a critical check. */
  | { kind: 'check'; check: HealthCheck }
  /** No address, or a port outside 1-65535. */
  | { kind: 'address' }
  /** Same node and service id as an entry before it that is routable. */
  | { kind: 'duplicate' };

export interface EntryVerdict {
  entry: HealthEntry;
  /** The instance the entry stands for (address '' or port 0 when unusable). */
  instance: Instance;
  /** Empty: routable on its own. */
  problems: readonly EntryProblem[];
}

const NO_PROBLEMS: readonly EntryProblem[] = Object.freeze([]);

/**
 * The one predicate of routability, entry by entry, in Consul's order:
 * every check (node and service) passing, a usable address and port, not a
 * repeat. routableInstances keeps the entries without problems; explain.ts
 * turns the problems into reasons, so the two cannot disagree. Entries
 * without a service ID or name are skipped.
 */
export function judgeEntries(entries: readonly HealthEntry[]): EntryVerdict[] {
  const seen = new Set<string>();
  const out: EntryVerdict[] = [];
  for (const e of entries) {
    const svc = e.Service;
    if (!svc?.ID || !svc.Service) continue;
    let problems: EntryProblem[] | undefined;
    for (const c of e.Checks ?? []) if (c.Status !== 'passing') (problems ??= []).push({ kind: 'check', check: c });
    const address = svc.Address || e.Node?.Address || '';
    const port = svc.Port ?? 0;
    if (!address || !Number.isInteger(port) || port < 1 || port > 65535) (problems ??= []).push({ kind: 'address' });
    const node = e.Node?.Node ?? '';
    if (!problems) {
      const key = instanceKey(node, svc.ID);
      if (seen.has(key)) problems = [{ kind: 'duplicate' }];
      else seen.add(key);
    }
    const instance = { id: svc.ID, service: svc.Service, address, port, node, tags: svc.Tags ?? [], key: instanceKey(node, svc.ID) };
    out.push({ entry: e, instance, problems: problems ?? NO_PROBLEMS });
  }
  return out;
}

/** Instances in a stable order: by id, then node. */
export function byIdThenNode(a: { id: string; node: string }, b: { id: string; node: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

/**
 * Turns a health response into the instances we may route to: the entries
 * judgeEntries finds no problem with. `?passing` already filters on Consul's
 * side; this keeps the decision ours and testable, and covers maintenance
 * mode (a critical check) the same way. Sorted by id so equal sets compare
 * equal whatever order Consul returned them in.
 */
export function routableInstances(entries: readonly HealthEntry[]): Instance[] {
  const out: Instance[] = [];
  for (const v of judgeEntries(entries)) if (v.problems.length === 0) out.push(v.instance);
  return out.sort(byIdThenNode);
}

/** Names from /v1/catalog/services that may be routed: valid and not excluded. */
export function routableServiceNames(
  catalog: Record<string, unknown>,
  excluded: ReadonlySet<string>,
): string[] {
  return Object.keys(catalog)
    .filter((name) => isValidServiceName(name) && !excluded.has(name.toLowerCase()))
    .sort();
}

export function sameInstances(a: readonly Instance[], b: readonly Instance[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    return x.id === y.id && x.node === y.node && x.address === y.address && x.port === y.port && sameTags(x.tags, y.tags);
  });
}

/** Tags carry the routes a service declares (the gateway's routes/tags.ts): a tag change is a change. */
function sameTags(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Instances whose own checks pass but whose node's agent is unreachable
 * (serfHealth critical, nothing else failing). When an agent dies, every
 * service registered on it turns critical although the instances may well be
 * serving; the gateway falls back to these only when nothing passes at all,
 * with passive health and retries to weed out the ones really gone.
 */
export function agentLostInstances(entries: readonly HealthEntry[]): Instance[] {
  const lenient = entries.map((e) => ({
    ...e,
    Checks: (e.Checks ?? []).filter((c) => c.CheckID !== 'serfHealth'),
  }));
  const agentDown = (e: HealthEntry) => (e.Checks ?? []).some((c) => c.CheckID === 'serfHealth' && c.Status !== 'passing');
  return routableInstances(lenient.filter((_, i) => agentDown(entries[i]!)));
}

// ---------------------------------------------------------------- trust: what an answer may take away

/**
 * Whether an answer may take something away (an instance, a service).
 * Reads use ?stale so any server answers, also without a leader; Consul says
 * such reads are "generally consistent to within 50 ms of the leader" but
 * "can be arbitrarily stale", and reports how stale in X-Consul-LastContact
 * and X-Consul-KnownLeader. An answer older than one already applied (its
 * index went back: another, lagging server answered, or a snapshot was
 * restored) shows a past state. Such answers may add, but a removal from them
 * waits for a read from the leader (no ?stale) to confirm it.
 *
 * Returns why the answer is not trusted for removals, or null when it is.
 */
export function distrust(
  meta: Pick<QueryMeta, 'index' | 'knownLeader' | 'lastContactMs' | 'fresh'>,
  /** Highest index already applied from this endpoint (0n: none). */
  seen: bigint,
  staleAfterMs: number,
): string | null {
  if (meta.fresh) return null; // the leader's own view: the most current there is
  if (!meta.knownLeader) return 'the answering server knows no leader';
  if (meta.lastContactMs > staleAfterMs)
    return `the answering server last heard from the leader ${meta.lastContactMs} ms ago`;
  if (meta.index < seen) return `index went back from ${seen} to ${meta.index}`;
  return null;
}

// ---------------------------------------------------------------- what to do with a service's answer

export type ServiceDecision =
  /** Route to these from now on. */
  | { action: 'apply'; instances: Instance[]; agentLost: boolean }
  /** The answer takes instances away but cannot be trusted for that: ask the leader first. */
  | { action: 'confirm'; why: string }
  /** Suddenly nothing passes: keep routing to the last instances until that persists. */
  | { action: 'hold'; instances: Instance[] };

export interface ServiceAnswer {
  /** What the table routes to now (undefined: nothing known yet). */
  before: readonly Instance[] | undefined;
  entries: readonly HealthEntry[];
  /** Why the answer can't be trusted for removals (distrust, instances.ts); null when it can. */
  distrust: string | null;
  /** How long an N → 0 answer is held (0: not held). */
  holdMs: number;
}

/**
 * What to do with one /v1/health/service/<name> answer. Passing instances
 * are routed; failing that, the ones only their lost agent makes critical. An
 * untrusted answer may add instances but not take any away; a trusted one
 * that takes every instance away is held for a while.
 */
export function decideServiceAnswer(a: ServiceAnswer): ServiceDecision {
  const passing = routableInstances(a.entries);
  const lost = passing.length === 0 ? agentLostInstances(a.entries) : [];
  const instances = passing.length > 0 ? passing : lost;
  const before = a.before ?? [];
  if (a.distrust !== null && removesAny(before, instances)) return { action: 'confirm', why: a.distrust };
  if (before.length > 0 && instances.length === 0 && a.holdMs > 0) return { action: 'hold', instances };
  return { action: 'apply', instances, agentLost: lost.length > 0 };
}

/** What makes two instances the same one for removesAny (and explain.ts): node, id, address and port. */
export const identityKey = (i: Instance) => `${i.node}\u0000${i.id}\u0000${i.address}\u0000${i.port}`;

/** True when some instance of `before` is not in `after` (same node, id, address and port). */
export function removesAny(before: readonly Instance[], after: readonly Instance[]): boolean {
  if (before.length === 0) return false;
  const next = new Set(after.map(identityKey));
  return before.some((i) => !next.has(identityKey(i)));
}

// ---------------------------------------------------------------- holding a sudden empty answer

/**
 * A list that had entries and suddenly has none is more likely a Consul that
 * lost or has not yet rebuilt its state (a restarted agent reports a check
 * critical until it has run it once; a fresh agent has no registrations until
 * registrator resyncs) than everything vanishing at once: such an answer is
 * held until it persists.
 */
export function isSuspiciousEmpty(known: number, next: number): boolean {
  return known > 0 && next === 0;
}

// However long the checks' intervals, a dead service is not routed for longer than this.
const MAX_DERIVED_HOLD_MS = 60_000;

/** The parts of a check we read for its schedule (Consul 1.11+ reports them; older ones do not). */
export interface CheckSchedule {
  ServiceID?: string;
  Interval?: string | number;
  Timeout?: string | number;
  Definition?: { Interval?: string | number; Timeout?: string | number } | null;
}

/**
 * How long to hold a service that suddenly has no passing instance: a
 * restarted agent runs each check for the first time within one interval
 * (plus its timeout), so that is how long "all critical" may be a restart
 * rather than an outage. Derived from the longest service check among
 * `checks` when Consul reports intervals (1.11+); `floorMs`
 * (CONSUL_EMPTY_CONFIRM_MS) otherwise, and never less. 0 turns holding off.
 */
export function holdMsFor(checks: readonly CheckSchedule[], floorMs: number): number {
  if (floorMs <= 0) return 0;
  let longest = 0;
  for (const c of checks) {
    if (!c?.ServiceID) continue; // node checks are not run on a schedule we know
    const interval = durationMs(c.Interval) || durationMs(c.Definition?.Interval);
    if (!interval) continue;
    const timeout = durationMs(c.Timeout) || durationMs(c.Definition?.Timeout);
    longest = Math.max(longest, interval + timeout);
  }
  return Math.max(floorMs, Math.min(longest, MAX_DERIVED_HOLD_MS));
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration ("10s", "1m30s", "250ms") or nanoseconds, in ms; 0 when unreadable. */
export function durationMs(v: string | number | undefined | null): number {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? v / 1e6 : 0;
  if (typeof v !== 'string' || v === '') return 0;
  let total = 0;
  let rest = v.trim();
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!m) return 0;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return total;
}

/**
 * Holds back an answer that would empty a list until it has persisted for
 * the hold's length: then the latest held answer is applied. cancel() drops
 * the hold when a non-empty answer arrives first.
 */
export class EmptyHold<T> {
  #timer: NodeJS.Timeout | undefined;
  #latest: T | undefined;
  #since = 0;
  #until = 0;

  constructor(private readonly apply: (value: T) => void) {}

  get holding(): boolean {
    return this.#timer !== undefined;
  }

  /** When the pending hold started and when it will be applied (ms since the epoch); null when none. */
  get window(): { since: number; until: number } | null {
    return this.#timer ? { since: this.#since, until: this.#until } : null;
  }

  /** Keeps `value` as the answer to apply after `ms`; true when this call started the hold. */
  hold(value: T, ms: number): boolean {
    this.#latest = value;
    if (this.#timer) return false;
    this.#since = Date.now();
    this.#until = this.#since + ms;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.apply(this.#latest as T);
    }, ms);
    this.#timer.unref();
    return true;
  }

  /** Drops a pending hold without applying it; true when there was one. */
  cancel(): boolean {
    if (!this.#timer) return false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    return true;
  }
}
