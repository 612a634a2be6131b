import type { Instance, RouteTable } from '@stack/shared';
import type { LoadView } from '../balancing/balancer.js';
import type { ErrorCode } from '../proxy/errors.js';
import type { AttemptReport, ProxyObserver } from './observer.js';

/** The sliding window, in one-second buckets. */
export const WINDOW_S = 10;

// Upper bounds (ms) of the latency buckets; one more bucket holds everything above.
// Roughly 1-2-3-5 steps: p50/p99 come out within a step's width, enough for a dashboard.
export const BOUNDS_MS = [1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 30000];
const NB = BOUNDS_MS.length + 1;

export interface WindowStats {
  /** Per second over the window. */
  rps: number;
  /** Share of the window's events that were errors, 0..1 (0 without events). */
  errorRate: number;
  /** Latency percentiles in ms; null without events. */
  p50Ms: number | null;
  p99Ms: number | null;
}

/** An instance's window, and what the balancer thinks of it now (absent without a balancer view). */
export interface InstanceStats extends WindowStats {
  balancer?: LoadView;
}

export interface ServiceStats extends WindowStats {
  /** By instance.key (node/id). */
  instances: Record<string, InstanceStats>;
}

export interface LiveStatsJSON {
  windowSeconds: number;
  at: string;
  services: Record<string, ServiceStats>;
}

function bucketOf(ms: number): number {
  for (let b = 0; b < BOUNDS_MS.length; b++) if (ms <= BOUNDS_MS[b]!) return b;
  return NB - 1;
}

const round = (n: number, digits: number) => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

/**
 * Counts, errors and a fixed-bucket latency histogram per second, for the
 * last WINDOW_S seconds. Recording is O(1) and allocates nothing; a slot is
 * cleared when a new second reuses it.
 */
export class Window {
  #second = new Float64Array(WINDOW_S).fill(-1);
  #count = new Uint32Array(WINDOW_S);
  #errors = new Uint32Array(WINDOW_S);
  #max = new Float64Array(WINDOW_S);
  #hist = new Uint32Array(WINDOW_S * NB);

  /** `nowMs`: a monotonic clock in ms; `ms`: the event's latency. */
  record(nowMs: number, ms: number, error: boolean): void {
    const sec = Math.floor(nowMs / 1000);
    const slot = sec % WINDOW_S;
    if (this.#second[slot] !== sec) {
      // A late event for a second already recycled is dropped rather than mixed into a newer one.
      if (this.#second[slot]! > sec) return;
      this.#second[slot] = sec;
      this.#count[slot] = 0;
      this.#errors[slot] = 0;
      this.#max[slot] = 0;
      this.#hist.fill(0, slot * NB, slot * NB + NB);
    }
    this.#count[slot]! += 1;
    if (error) this.#errors[slot]! += 1;
    if (ms > this.#max[slot]!) this.#max[slot] = ms;
    this.#hist[slot * NB + bucketOf(ms)]! += 1;
  }

  /**
   * The window ending now: this second so far and the WINDOW_S - 1 before it,
   * so rates are per second of that span and never lag by a whole second.
   */
  stats(nowMs: number): WindowStats {
    const sec = Math.floor(nowMs / 1000);
    const merged = new Float64Array(NB);
    let total = 0;
    let errors = 0;
    let max = 0;
    for (let slot = 0; slot < WINDOW_S; slot++) {
      const s = this.#second[slot]!;
      if (s < 0 || s > sec || sec - s >= WINDOW_S) continue;
      total += this.#count[slot]!;
      errors += this.#errors[slot]!;
      if (this.#max[slot]! > max) max = this.#max[slot]!;
      for (let b = 0; b < NB; b++) merged[b]! += this.#hist[slot * NB + b]!;
    }
    const spanS = WINDOW_S - 1 + (nowMs - sec * 1000) / 1000;
    return {
      rps: round(total / spanS, 2),
      errorRate: total === 0 ? 0 : round(errors / total, 4),
      p50Ms: quantile(merged, total, max, 0.5),
      p99Ms: quantile(merged, total, max, 0.99),
    };
  }
}

/**
 * The q-quantile of a bucketed histogram, interpolated linearly inside its
 * bucket (as Prometheus' histogram_quantile does), never above the largest
 * value seen; the open-ended last bucket ends at that largest value.
 */
export function quantile(buckets: ArrayLike<number>, total: number, max: number, q: number): number | null {
  if (total === 0) return null;
  const target = q * total;
  let cum = 0;
  for (let b = 0; b < NB; b++) {
    const c = buckets[b]!;
    if (c === 0 || cum + c < target) {
      cum += c;
      continue;
    }
    const lo = b === 0 ? 0 : BOUNDS_MS[b - 1]!;
    const hi = b < BOUNDS_MS.length ? BOUNDS_MS[b]! : max;
    const v = lo + (Math.max(hi, lo) - lo) * ((target - cum) / c);
    return round(Math.min(v, max), 1);
  }
  return round(max, 1);
}

interface ServiceWindows {
  window: Window;
  list: readonly Instance[] | null;
  instances: Map<string, Window>;
}

/**
 * Live per-service and per-instance figures for the dashboard
 * (`GET /_gateway/stats`), fed by the proxy's observer:
 * - a service's figures are its requests: rate, share answered 5xx (the
 *   gateway's own 502/503/504 included), latency from receipt to the end;
 * - an instance's are the attempts sent to it: rate, share that failed
 *   (connect failure, reset, timeout, unusable answer) or answered 5xx,
 *   latency to response headers (or to the failure).
 * Only services and instances of the current table are kept.
 */
export class LiveStats implements ProxyObserver {
  #services = new Map<string, ServiceWindows>();
  #table: RouteTable | null = null;

  constructor(
    private readonly table: () => RouteTable,
    private readonly now: () => number = () => performance.now(),
    /** The balancer's view of a service's instances, by instance.key (InstancePicker.view). */
    private readonly load?: (instances: readonly Instance[]) => Map<string, LoadView>,
  ) {}

  request(service: string | null, status: number, ms: number, _refused: ErrorCode | null): void {
    if (service === null) return;
    this.#sync();
    this.#services.get(service)?.window.record(this.now(), ms, status >= 500);
  }

  attempt(service: string, a: AttemptReport): void {
    this.#sync();
    this.#services.get(service)?.instances.get(a.inst.key)?.record(this.now(), a.ms, a.outcome !== 'ok' || a.status >= 500);
  }

  toJSON(at = new Date()): LiveStatsJSON {
    this.#sync();
    const now = this.now();
    const services: Record<string, ServiceStats> = {};
    for (const [name, s] of this.#services) {
      const instances: Record<string, InstanceStats> = {};
      const views = this.load && s.list ? this.load(s.list) : null;
      for (const [key, w] of s.instances) {
        const v = views?.get(key);
        instances[key] = v ? { ...w.stats(now), balancer: v } : w.stats(now);
      }
      services[name] = { ...s.window.stats(now), instances };
    }
    return { windowSeconds: WINDOW_S, at: at.toISOString(), services };
  }

  /** Follows the table: services and instances that left it drop out. O(1) while the table is unchanged. */
  #sync(): void {
    const table = this.table();
    if (table === this.#table) return;
    this.#table = table;
    for (const name of this.#services.keys()) if (!table.services.has(name)) this.#services.delete(name);
    for (const [name, list] of table.services) {
      let s = this.#services.get(name);
      if (!s) this.#services.set(name, (s = { window: new Window(), list: null, instances: new Map() }));
      if (s.list === list) continue;
      s.list = list;
      const keys = new Set(list.map((i) => i.key));
      for (const key of s.instances.keys()) if (!keys.has(key)) s.instances.delete(key);
      for (const key of keys) if (!s.instances.has(key)) s.instances.set(key, new Window());
    }
  }
}
