/**
 * Whether the instance is on its way out, and how many requests it is still
 * answering. /health reads the first; shutdown logs the second.
 */
export class DrainState {
  #since: Date | null = null;
  inFlight = 0;

  get draining(): boolean {
    return this.#since !== null;
  }

  get since(): Date | null {
    return this.#since;
  }

  start(now = new Date()): void {
    this.#since ??= now;
  }
}
