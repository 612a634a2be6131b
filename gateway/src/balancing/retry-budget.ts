export interface RetryBudgetOptions {
  /** Retries may add at most this share of the requests in the window. */
  percent: number;
  /** ...but this many per second are always allowed, so a quiet gateway still retries. */
  minPerSecond: number;
  /** Window length in whole seconds. */
  windowS: number;
}

/**
 * Caps retries to a share of recent traffic (as Envoy's and Linkerd's retry
 * budgets do), so a pool that fails everything gets at most (1 + percent)
 * times its load rather than (1 + retries) times. Counts live in one bucket
 * per second, so the cost per request is constant.
 */
export class RetryBudget {
  #requests: number[];
  #retries: number[];
  #second = -1;

  constructor(
    private readonly opts: RetryBudgetOptions,
    /** Milliseconds on a monotonic clock: a wall-clock step must not empty or freeze the window. */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#requests = new Array(opts.windowS).fill(0);
    this.#retries = new Array(opts.windowS).fill(0);
  }

  /** `at`: the request's start on the same clock, when the caller already read it (one clock read per request). */
  recordRequest(at: number = this.now()): void {
    this.#requests[this.#advance(at)]! += 1;
  }

  /** Takes a retry from the budget if one is left. */
  tryRetry(): boolean {
    const slot = this.#advance(this.now());
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    const floor = this.opts.minPerSecond * this.opts.windowS;
    const share = (sum(this.#requests) * this.opts.percent) / 100;
    if (sum(this.#retries) >= Math.max(floor, share)) return false;
    this.#retries[slot]! += 1;
    return true;
  }

  /** Moves to the current second, zeroing buckets that fell out of the window. */
  #advance(nowMs: number): number {
    const sec = Math.floor(nowMs / 1000);
    const n = this.opts.windowS;
    if (sec === this.#second) return sec % n; // the common case: still the same second
    if (this.#second < 0 || sec - this.#second >= n) {
      this.#requests.fill(0);
      this.#retries.fill(0);
    } else {
      for (let s = this.#second + 1; s <= sec; s++) {
        this.#requests[s % n] = 0;
        this.#retries[s % n] = 0;
      }
    }
    this.#second = Math.max(this.#second, sec);
    return sec % n;
  }
}
