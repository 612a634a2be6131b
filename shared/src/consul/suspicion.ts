/**
 * A catalog that had routable services and suddenly has none is more likely
 * a Consul that lost its state (a fresh agent, a restore) than every service
 * vanishing at once; such an answer is held until it persists.
 */
export function isSuspiciousEmpty(knownServices: number, newServices: number): boolean {
  return knownServices > 0 && newServices === 0;
}

/**
 * Holds back an answer that would empty a list until it has persisted for
 * `ms`: then the latest held answer is applied. cancel() drops the hold when
 * a non-empty answer arrives first.
 */
export class EmptyHold<T> {
  #timer: NodeJS.Timeout | undefined;
  #latest: T | undefined;

  constructor(
    private readonly ms: number,
    private readonly apply: (value: T) => void,
  ) {}

  get holding(): boolean {
    return this.#timer !== undefined;
  }

  /** Keeps `value` as the answer to apply later; true when this call started the hold. */
  hold(value: T): boolean {
    this.#latest = value;
    if (this.#timer) return false;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.apply(this.#latest as T);
    }, this.ms);
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
