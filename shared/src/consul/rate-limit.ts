/**
 * Token bucket for a blocking-query loop, as Consul's blocking-query docs ask:
 * in the happy case the next query goes out at once; when answers churn, the
 * loop degrades into polling at `perSecond` instead of a busy loop.
 */
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.#tokens = burst;
    this.#last = clock();
  }

  /** Takes a token; returns how long (ms) to wait before using it (0: go now). */
  take(): number {
    const now = this.clock();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.perSecond);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.perSecond) * 1000);
  }
}
