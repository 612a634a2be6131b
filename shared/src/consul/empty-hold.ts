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
