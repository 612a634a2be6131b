import type { RouteTarget } from './table.js';

/** A target's share of a route right now: its weight among the targets that have a passing instance. */
export interface Share {
  service: string;
  live: boolean;
  /** Effective weight (0-100 scale, before normalising over the live targets). */
  weight: number;
  /** Percent of the route's requests it gets now. */
  percent: number;
}

/**
 * Effective weights: a weighted target gets its weight; the unweighted one (at
 * most one, see resolveTargets) gets what the weights leave of 100. Targets
 * with no passing instance drop out and the rest share the route in
 * proportion; when every live target is at weight 0 they share it evenly
 * (a route with a live instance never answers 503 because of weights).
 */
export function shares(targets: readonly RouteTarget[], live: (service: string) => boolean): Share[] {
  const declared = targets.reduce((s, t) => s + (t.weight ?? 0), 0);
  const out = targets.map((t) => ({
    service: t.service,
    live: live(t.service),
    weight: t.weight ?? Math.max(0, 100 - declared),
    percent: 0,
  }));
  const alive = out.filter((s) => s.live);
  const total = alive.reduce((s, t) => s + t.weight, 0);
  for (const s of alive) s.percent = total > 0 ? (100 * s.weight) / total : 100 / alive.length;
  return out;
}

/**
 * Per-request choice between a route's targets: smooth weighted round robin
 * (nginx's upstream weights), so the split is exact over any window of
 * requests rather than right on average like a coin toss: 90/10 sends
 * exactly 1 of every 10 requests to the canary. Liveness is read per request,
 * so a target losing its last instance drops out at once.
 */
export class Split {
  readonly #targets: readonly RouteTarget[];
  readonly #current: number[];

  constructor(targets: readonly RouteTarget[]) {
    this.#targets = targets;
    this.#current = targets.map(() => 0);
  }

  /** The service for the next request; null when the route has no target. */
  pick(live: (service: string) => boolean): string | null {
    const t = this.#targets;
    if (t.length === 1) return t[0]!.service;
    if (t.length === 0) return null;
    const s = shares(t, live);
    let best = -1;
    let total = 0;
    for (let i = 0; i < t.length; i++) {
      if (!s[i]!.live) continue;
      const w = s[i]!.percent;
      total += w;
      this.#current[i]! += w;
      if (best < 0 || this.#current[i]! > this.#current[best]!) best = i;
    }
    // Nothing live: the first target, so the proxy answers its usual 503 for it.
    if (best < 0) return t[0]!.service;
    this.#current[best]! -= total;
    return t[best]!.service;
  }

  /** What pick() would return next, without moving (for explain). */
  peek(live: (service: string) => boolean): string | null {
    const copy = new Split(this.#targets);
    copy.#current.splice(0, copy.#current.length, ...this.#current);
    return copy.pick(live);
  }
}
