import type { Instance } from '@stack/shared';

export type LbPolicy = 'peak_ewma' | 'least_request' | 'round_robin';

export interface LoadOptions {
  /** How fast an estimate forgets (ms): Linkerd's and Finagle's peak EWMA use 10 s. */
  decayMs: number;
  /** What a failed attempt counts as at least (ms), so an instance that fails fast does not look fast. */
  failurePenaltyMs: number;
}

const LOAD_DEFAULTS: LoadOptions = { decayMs: 10_000, failurePenaltyMs: 1_000 };

/**
 * Latencies below this count as this much in the cost (ms), the same 50 ms
 * as the per-try timeout's floor: below it a difference is a JIT warm-up or a
 * GC pause, not a slow instance. Without the floor one such sample (every
 * instance's first request is one) left an instance without traffic for the
 * ~30 s its peak took to decay, while the others answered in 2 ms. Among
 * instances under it, requests in flight decide (least request) and ties are
 * random.
 */
const LATENCY_FLOOR_MS = 50;

/** What the balancer knows of one instance. */
export interface LoadState {
  inflight: number;
  /** Peak EWMA of time to response headers (ms), as of `at`; null before the first sample. */
  ewmaMs: number | null;
  at: number;
  /** Attempts started on it (for explain). */
  picks: number;
  /** Failed attempts in a row (each counted as at least the failure penalty). */
  failures: number;
}

/** One instance's figures as the dashboard, explain and metrics show them. */
export interface LoadView {
  inflight: number;
  /** Decayed to now; null before the first answer. */
  latencyMs: number | null;
  /** The policy's cost: lower gets the request; null while nothing is known of the instance. */
  score: number | null;
  /** Its last attempts failed, this many in a row. */
  failures: number;
}

/**
 * Requests in flight and a peak-EWMA latency per instance (address:port),
 * as Linkerd's balancer keeps them (tower's PeakEwma): a sample above the
 * estimate replaces it at once, one below is averaged in with a weight that
 * grows with the time since the last sample, and the estimate decays towards
 * zero while an instance gets nothing, so one that was slow is probed again
 * once its estimate falls below its peers' cost.
 */
export class LoadTracker {
  #hosts = new Map<string, LoadState>();

  constructor(
    readonly opts: LoadOptions = LOAD_DEFAULTS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  state(key: string): LoadState {
    let h = this.#hosts.get(key);
    if (!h) this.#hosts.set(key, (h = { inflight: 0, ewmaMs: null, at: this.now(), picks: 0, failures: 0 }));
    return h;
  }

  peek(key: string): LoadState | undefined {
    return this.#hosts.get(key);
  }

  started(key: string): void {
    const h = this.state(key);
    h.inflight++;
    h.picks++;
  }

  /** An attempt ended: `ms` to its headers, or `failed` (a connection failure, reset or timeout, or hedged away past its per-try timeout). */
  /** `at`: now on this tracker's clock, when the caller already read it. */
  finished(key: string, ms: number, failed: boolean, at?: number): void {
    const h = this.#hosts.get(key);
    if (!h) return;
    if (h.inflight > 0) h.inflight--;
    h.failures = failed ? h.failures + 1 : 0;
    this.sample(h, failed ? Math.max(ms, this.opts.failurePenaltyMs) : ms, at);
  }

  /** An attempt ended with nothing learnt about the instance: it only leaves the in-flight count. */
  abandoned(key: string): void {
    const h = this.#hosts.get(key);
    if (h && h.inflight > 0) h.inflight--;
  }

  sample(h: LoadState, ms: number, t: number = this.now()): void {
    const est = this.latency(h, t);
    if (est === null || ms > est) h.ewmaMs = ms;
    else {
      const w = Math.exp(-Math.max(0, t - h.at) / this.opts.decayMs);
      h.ewmaMs = est * w + ms * (1 - w);
    }
    h.at = t;
  }

  /** The estimate decayed to `t`: it falls towards zero while nothing is learnt (the instance gets probed again). */
  latency(h: LoadState, t = this.now()): number | null {
    if (h.ewmaMs === null) return null;
    return h.ewmaMs * Math.exp(-Math.max(0, t - h.at) / this.opts.decayMs);
  }

  /**
   * A new instance starts at its peers' average latency (a neutral score), not
   * at zero: a perfect score would send it every request until its first answers.
   */
  seed(key: string, peers: readonly Instance[]): LoadState {
    const h = this.state(key);
    if (h.ewmaMs !== null) return h;
    const t = this.now();
    let sum = 0;
    let n = 0;
    for (const p of peers) {
      const ps = this.#hosts.get(p.key);
      const l = ps && ps !== h ? this.latency(ps, t) : null;
      if (l !== null) {
        sum += l;
        n++;
      }
    }
    if (n > 0) {
      h.ewmaMs = sum / n;
      h.at = t;
    }
    return h;
  }

  /** Forget instances that left the table. */
  retain(keys: ReadonlySet<string>): void {
    for (const k of this.#hosts.keys()) if (!keys.has(k)) this.#hosts.delete(k);
  }
}

/** Linkerd's cost: latency times (requests in flight + 1), the latency at least LATENCY_FLOOR_MS (also when nothing is known yet). */
export function ewmaCost(h: LoadState, latencyMs: number | null): number {
  return Math.max(latencyMs ?? 0, LATENCY_FLOOR_MS) * (h.inflight + 1);
}

/**
 * Power of two choices: two distinct instances at random among those `skip`
 * lets through, the cheaper one wins (ties: the first drawn). Draws straight
 * from the list first and keeps the pair when neither is skipped (the common
 * case: two `skip` calls, nothing allocated); builds the candidate list and
 * draws again only when one is. Either way the pair is uniform over the
 * candidates.
 */
export function p2c<T>(items: readonly T[], cost: (item: T) => number, skip: ((item: T) => boolean) | undefined, random: () => number): T | undefined {
  const n = items.length;
  if (n === 0) return undefined;
  if (n > 1) {
    // The common case: draw from the whole list and ask `skip` about the two drawn only.
    const a = Math.floor(random() * n) % n;
    let b = Math.floor(random() * (n - 1)) % (n - 1);
    if (b >= a) b++;
    const x = items[a]!;
    const y = items[b]!;
    if (!skip || (!skip(x) && !skip(y))) return cost(y) < cost(x) ? y : x;
  }
  const list = skip ? items.filter((i) => !skip(i)) : items;
  const m = list.length;
  if (m <= 1) return list[0];
  const a = Math.floor(random() * m) % m;
  let b = Math.floor(random() * (m - 1)) % (m - 1);
  if (b >= a) b++;
  const x = list[a]!;
  const y = list[b]!;
  return cost(y) < cost(x) ? y : x;
}
