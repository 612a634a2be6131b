import type { ErrorCode } from '../proxy/errors.js';
import { BOUNDS_MS, quantile } from '../observe/live-stats.js';
import type { AttemptReport, ProxyObserver } from '../observe/observer.js';

export interface TryBudgetOptions {
  /** A fixed per-try timeout (UPSTREAM_TRY_TIMEOUT_MS); 0 derives it from each service's latency. */
  fixedMs: number;
  /** Bounds of the derived budget. */
  minMs: number;
  maxMs: number;
  /** The latency quantile the derived budget waits for (0.99: about 1 % of attempts get a hedge). */
  quantile: number;
}

export const TRY_BUDGET_DEFAULTS: TryBudgetOptions = { fixedMs: 0, minMs: 50, maxMs: 1_000, quantile: 0.99 };

/** Seconds of history behind a derived budget, in one-second buckets; recomputed at most once a second. */
const WINDOW_S = 10;
const NB = BOUNDS_MS.length + 1;

function bucketOf(ms: number): number {
  for (let b = 0; b < BOUNDS_MS.length; b++) if (ms <= BOUNDS_MS[b]!) return b;
  return NB - 1;
}

class ServiceLatency {
  second = new Float64Array(WINDOW_S).fill(-1);
  max = new Float64Array(WINDOW_S);
  hist = new Uint32Array(WINDOW_S * NB);
  budgetMs = 0;
  computedSec = -1;

  record(sec: number, ms: number): void {
    const slot = sec % WINDOW_S;
    if (this.second[slot] !== sec) {
      if (this.second[slot]! > sec) return;
      this.second[slot] = sec;
      this.max[slot] = 0;
      this.hist.fill(0, slot * NB, slot * NB + NB);
    }
    if (ms > this.max[slot]!) this.max[slot] = ms;
    this.hist[slot * NB + bucketOf(ms)]! += 1;
  }

  /** The q-quantile over the window; null without samples. */
  quantile(sec: number, q: number): number | null {
    const merged = new Float64Array(NB);
    let total = 0;
    let max = 0;
    for (let slot = 0; slot < WINDOW_S; slot++) {
      const s = this.second[slot]!;
      if (s < 0 || s > sec || sec - s >= WINDOW_S) continue;
      if (this.max[slot]! > max) max = this.max[slot]!;
      for (let b = 0; b < NB; b++) {
        const c = this.hist[slot * NB + b]!;
        merged[b]! += c;
        total += c;
      }
    }
    return quantile(merged, total, max, q);
  }
}

/**
 * The per-try timeout of hedged requests: how long an attempt may go without
 * response headers before a second one goes to another instance. Derived, as
 * Finagle's backup requests are, from a high quantile of the service's recent
 * time to headers (p99 by default: about 1 % of attempts are hedged when
 * nothing is wrong), and kept between a floor (a fast service's p99 moves with
 * the gateway's own scheduling noise) and a cap (a frozen instance costs a
 * request no more than that). A service with no answers in the window gets
 * the cap.
 */
export class TryBudget implements ProxyObserver {
  #services = new Map<string, ServiceLatency>();

  constructor(
    readonly opts: TryBudgetOptions = TRY_BUDGET_DEFAULTS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  request(_service: string | null, _status: number, _ms: number, _refused: ErrorCode | null): void {}

  /** As an observer: every attempt that got response headers (not a 5xx) is a latency sample. */
  attempt(service: string, a: AttemptReport): void {
    if (a.outcome === 'ok' && a.status < 500) this.record(service, a.ms);
  }

  /** An attempt at `service` got its response headers after `ms`; `at`: now, when the caller already read it. */
  record(service: string, ms: number, at: number = this.now()): void {
    if (this.opts.fixedMs > 0) return;
    let s = this.#services.get(service);
    if (!s) this.#services.set(service, (s = new ServiceLatency()));
    s.record(Math.floor(at / 1000), ms);
  }

  /** The per-try timeout for an attempt at `service` starting now (ms). */
  budgetMs(service: string): number {
    const o = this.opts;
    if (o.fixedMs > 0) return o.fixedMs;
    const s = this.#services.get(service);
    if (!s) return o.maxMs;
    const sec = Math.floor(this.now() / 1000);
    if (s.computedSec !== sec) {
      s.computedSec = sec;
      const q = s.quantile(sec, o.quantile);
      s.budgetMs = q === null ? o.maxMs : Math.min(o.maxMs, Math.max(o.minMs, Math.ceil(q)));
    }
    return s.budgetMs;
  }

  retain(services: Iterable<string>): void {
    const keep = new Set(services);
    for (const k of this.#services.keys()) if (!keep.has(k)) this.#services.delete(k);
  }
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Whether a request may have two attempts in flight at once: a safe method
 * (RFC 9110 9.2.1: the client asked for no change, so a second copy is
 * harmless) and no body to send twice.
 */
export function hedgeable(method: string, hasBody: boolean): boolean {
  return !hasBody && SAFE.has(method);
}
