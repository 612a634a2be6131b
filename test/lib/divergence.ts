/**
 * The bookkeeping of the consistency checker (test/e2e/consistency.test.ts):
 * a stream of observations, each the gateway's table and Consul's passing set
 * for one service read at the same moment, folded into divergence episodes.
 *
 * An episode opens at the first observation where the two sets differ and
 * closes at the first one where they are equal again. Its time to converge is
 * close − open (the resolution is one polling period). Some divergences are
 * the gateway's documented behaviour and are *declared* by it while they last
 * (an N → 0 answer held for CONSUL_EMPTY_CONFIRM_MS, instances kept because
 * only their agent is lost, Consul unreachable from the gateway); while one is
 * declared, or while the checker itself cannot read one side, the bound's
 * clock is stopped: what is asserted is the time from the later of the
 * episode's start and the end of its last excuse to convergence ("unexcused").
 * The caller decides what counts as an excuse and checks the excuse's own
 * bound (a hold may not outlast its declared length, a reconnect its backoff).
 */

export type ExcuseKind =
  /** The gateway holds the last instances of a service Consul suddenly reports none passing of. */
  | 'hold'
  /** Nothing passes only because the instances' Consul agent is unreachable; the gateway keeps them. */
  | 'agent-lost'
  /** The gateway reports Consul unreachable (it routes on its last good table and retries with backoff). */
  | 'gateway-cannot-reach-consul'
  /** The checker could not read Consul or the gateway: no comparison possible. */
  | 'unobserved';

export interface Observation {
  /** Epoch ms when both reads were sent. */
  at: number;
  /** Consul's passing instances (identity keys); null: Consul did not answer the checker. */
  consul: ReadonlySet<string> | null;
  /** The gateway's table for the service (identity keys); null: the gateway did not answer. */
  gateway: ReadonlySet<string> | null;
  /** A declared reason for a divergence seen in this observation, and until when it excuses it (epoch ms). */
  excuse?: { kind: ExcuseKind; until: number } | null;
  /** Free-form context kept with the episode (e.g. the gateway's explain view). */
  note?: unknown;
}

export interface Divergence {
  /** First observation that differed (epoch ms). */
  start: number;
  /** First observation equal again; null while open. */
  end: number | null;
  /** Last observation that differed. */
  lastSeen: number;
  /** The bound's clock starts again here: the end of the latest excuse (0: none). */
  excusedUntil: number;
  /** Observations of the episode by excuse kind ('none': divergent with no excuse). */
  kinds: Partial<Record<ExcuseKind | 'none', number>>;
  /** In Consul's passing set, not in the gateway's table (first divergent observation). */
  missing: string[];
  /** In the gateway's table, not passing in Consul (first divergent observation). */
  extra: string[];
  /** The worst moment's note (the longest unexcused stretch so far). */
  note?: unknown;
}

export interface DivergenceSummary {
  observations: number;
  /** Observations where both sides answered. */
  compared: number;
  /** Time covered by observations where one side did not answer (ms, from each to the next). */
  unobservedMs: number;
  divergences: number;
  /** Episodes that had any excuse. */
  excused: number;
  /** Time to converge, whole episodes (ms). */
  worstMs: number;
  p99Ms: number;
  /** Time to converge outside excuses: what the bound applies to (ms). */
  worstUnexcusedMs: number;
  p99UnexcusedMs: number;
  /** Episodes whose unexcused time exceeded the bound (open ones measured to `now`). */
  violations: Divergence[];
  open: number;
}

export function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/** Nearest-rank percentile of an ascending list. */
export function percentileOf(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)]!;
}

export class DivergenceTracker {
  readonly closed: Divergence[] = [];
  #open: Divergence | null = null;
  #observations = 0;
  #compared = 0;
  #unobservedMs = 0;
  #lastAt: number | null = null;
  #lastUnobserved = false;

  constructor(readonly boundMs: number) {}

  get open(): Divergence | null {
    return this.#open;
  }

  observe(o: Observation): void {
    this.#observations++;
    if (this.#lastAt !== null && this.#lastUnobserved) this.#unobservedMs += o.at - this.#lastAt;
    this.#lastAt = o.at;
    this.#lastUnobserved = o.consul === null || o.gateway === null;
    if (o.consul === null || o.gateway === null) {
      // Nothing to compare: the clock of an open episode stops until both sides answer again.
      if (this.#open) {
        this.#open.excusedUntil = Math.max(this.#open.excusedUntil, o.at);
        this.#open.kinds.unobserved = (this.#open.kinds.unobserved ?? 0) + 1;
      }
      return;
    }
    this.#compared++;
    if (sameSet(o.consul, o.gateway)) {
      if (this.#open) {
        this.#open.end = o.at;
        this.closed.push(this.#open);
        this.#open = null;
      }
      return;
    }
    let d = this.#open;
    if (!d) {
      d = this.#open = {
        start: o.at,
        end: null,
        lastSeen: o.at,
        excusedUntil: 0,
        kinds: {},
        missing: [...o.consul].filter((k) => !o.gateway!.has(k)).sort(),
        extra: [...o.gateway].filter((k) => !o.consul!.has(k)).sort(),
      };
    }
    d.lastSeen = o.at;
    const kind = o.excuse?.kind ?? 'none';
    d.kinds[kind] = (d.kinds[kind] ?? 0) + 1;
    if (o.excuse) d.excusedUntil = Math.max(d.excusedUntil, o.excuse.until);
    if (o.note !== undefined && (d.note === undefined || !o.excuse)) d.note = o.note;
  }

  /** Whole time to converge (open episodes: up to `now`). */
  static durationMs(d: Divergence, now: number): number {
    return (d.end ?? now) - d.start;
  }

  /** Time to converge outside excuses (open episodes: up to `now`); never negative. */
  static unexcusedMs(d: Divergence, now: number): number {
    return Math.max(0, (d.end ?? now) - Math.max(d.start, d.excusedUntil));
  }

  summary(now: number): DivergenceSummary {
    const all = this.#open ? [...this.closed, this.#open] : [...this.closed];
    const whole = all.map((d) => DivergenceTracker.durationMs(d, now)).sort((a, b) => a - b);
    const unexcused = all.map((d) => DivergenceTracker.unexcusedMs(d, now)).sort((a, b) => a - b);
    return {
      observations: this.#observations,
      compared: this.#compared,
      unobservedMs: this.#unobservedMs,
      divergences: all.length,
      excused: all.filter((d) => d.excusedUntil > 0).length,
      worstMs: whole.at(-1) ?? 0,
      p99Ms: percentileOf(whole, 99),
      worstUnexcusedMs: unexcused.at(-1) ?? 0,
      p99UnexcusedMs: percentileOf(unexcused, 99),
      violations: all.filter((d) => DivergenceTracker.unexcusedMs(d, now) > this.boundMs),
      open: this.#open ? 1 : 0,
    };
  }
}

/** A small seeded PRNG (mulberry32): the churn's every choice comes from it, so a seed replays them. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
