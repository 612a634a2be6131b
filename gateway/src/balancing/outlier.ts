/** The passive-health state of an instance the gateway ejected, as /_gateway/explain shows it. */
export interface Ejection {
  /** When it was ejected and until when (ms since the epoch). */
  since: number;
  until: number;
  /** Consecutive failures that ejected it, and how many of each kind (connect, reset, timeout). */
  failures: number;
  kinds: Readonly<Record<string, number>>;
  /** Ejections in a row (each doubles the time, up to the maximum). */
  ejections: number;
}

export interface OutlierOptions {
  /** Consecutive failures that eject an instance. */
  consecutiveFailures: number;
  /** First ejection lasts this long; each repeat doubles it up to maxEjectMs. */
  baseEjectMs: number;
  maxEjectMs: number;
  /** Never eject more than this share of a service's instances. */
  maxEjectPercent: number;
}

interface HostState {
  failures: number;
  /** The current run of failures, by kind (connect, reset, timeout). */
  kinds: Record<string, number>;
  ejectedUntil: number;
  ejections: number;
  lastEjectedAt: number;
  /** The run of failures that caused the last ejection, for /_gateway/explain. */
  cause: { failures: number; kinds: Record<string, number> } | null;
}

/**
 * Passive health, as Envoy's outlier detection does it: an instance that
 * fails N times in a row is left out for a while, longer on each repeat, then
 * readmitted. Consul's checks remain the authority; this only covers the
 * seconds before a check notices a dead or frozen instance.
 */
export class OutlierDetector {
  #hosts = new Map<string, HostState>();

  constructor(
    private readonly opts: OutlierOptions,
    private readonly now: () => number = Date.now,
  ) {}

  isEjected(key: string): boolean {
    const h = this.#hosts.get(key);
    return !!h && h.ejectedUntil > this.now();
  }

  ejectedUntil(key: string): number | null {
    const h = this.#hosts.get(key);
    return h && h.ejectedUntil > this.now() ? h.ejectedUntil : null;
  }

  /** The ejection `key` is under now, and the failures that caused it; null when not ejected. */
  ejection(key: string): Ejection | null {
    const h = this.#hosts.get(key);
    if (!h || h.ejectedUntil <= this.now()) return null;
    return { since: h.lastEjectedAt, until: h.ejectedUntil, failures: h.cause?.failures ?? 0, kinds: { ...h.cause?.kinds }, ejections: h.ejections };
  }

  success(key: string): void {
    const h = this.#hosts.get(key);
    if (!h) return;
    if (h.failures > 0) h.kinds = {};
    h.failures = 0;
    // A host that stayed healthy for a full max period starts over at the base time.
    if (h.ejections > 0 && this.now() - h.lastEjectedAt > this.opts.maxEjectMs * 2) h.ejections = 0;
    if (h.ejections === 0) this.#hosts.delete(key);
  }

  /**
   * Records a failure of `kind` (connect, reset, timeout: what /_gateway/explain
   * says the ejection was for); returns the ejection time in ms when this
   * failure ejected the host. `pool` is every instance key of its service.
   */
  failure(key: string, pool: readonly string[], kind = 'unknown'): number | null {
    const h = this.#hosts.get(key) ?? { failures: 0, kinds: {}, ejectedUntil: 0, ejections: 0, lastEjectedAt: 0, cause: null };
    this.#hosts.set(key, h);
    h.failures += 1;
    h.kinds[kind] = (h.kinds[kind] ?? 0) + 1;
    if (h.failures < this.opts.consecutiveFailures || this.isEjected(key)) return null;
    const ejectedNow = pool.filter((k) => k !== key && this.isEjected(k)).length;
    const allowed = Math.floor((pool.length * this.opts.maxEjectPercent) / 100);
    if (ejectedNow + 1 > allowed) return null;
    const ms = Math.min(this.opts.maxEjectMs, this.opts.baseEjectMs * 2 ** h.ejections);
    h.ejections += 1;
    h.cause = { failures: h.failures, kinds: h.kinds };
    h.kinds = {};
    h.failures = 0;
    h.lastEjectedAt = this.now();
    h.ejectedUntil = this.now() + ms;
    return ms;
  }

  /** Forget hosts that left the table, so state can't grow without bound. */
  retain(keys: ReadonlySet<string>): void {
    for (const k of this.#hosts.keys()) if (!keys.has(k)) this.#hosts.delete(k);
  }
}
