/** Something with a deadline in a Deadlines list. */
export interface Expiring {
  /** Called once, when its deadline passed and it was not cancelled. */
  expire(): void;
}

/** A deadline set with `Deadlines.add`; `cancel()` it when what it guards is over. */
export class Deadline {
  prev: Deadline | null = null;
  next: Deadline | null = null;
  linked = true;

  constructor(
    readonly list: Deadlines,
    readonly at: number,
    readonly item: Expiring,
  ) {}

  cancel(): void {
    this.list.remove(this);
  }
}

/**
 * Deadlines in a linked list sorted by when they end (mostly the order they
 * were set: most share one duration) and one Node timer for the whole list,
 * armed for its head. Setting and cancelling a deadline is a few field writes;
 * a Node timer per attempt cost about 2 µs (create, schedule, clear) on the
 * proxy's hot path. A deadline may fire up to a millisecond late, as a Node
 * timer may.
 */
export class Deadlines {
  #head: Deadline | null = null;
  #tail: Deadline | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** When the armed timer fires (clock ms); the timer is left armed when its head is cancelled. */
  #timerAt = Infinity;

  constructor(
    readonly ms: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * `ms`: this deadline's own duration (per-try timeouts differ by service);
   * the list stays sorted by inserting from the tail, which is O(1) while
   * durations are alike, as they nearly always are.
   */
  add(item: Expiring, ms: number = this.ms): Deadline {
    const d = new Deadline(this, this.now() + ms, item);
    let after = this.#tail;
    while (after && after.at > d.at) after = after.prev;
    if (after) {
      d.next = after.next;
      d.prev = after;
      if (after.next) after.next.prev = d;
      else this.#tail = d;
      after.next = d;
    } else {
      d.next = this.#head;
      if (this.#head) this.#head.prev = d;
      else this.#tail = d;
      this.#head = d;
    }
    // An armed timer at or before this deadline will come round to it.
    if (this.#timerAt > d.at) this.#arm(d.at);
    return d;
  }

  remove(d: Deadline): void {
    if (!d.linked) return;
    d.linked = false;
    if (d.prev) d.prev.next = d.next;
    else this.#head = d.next;
    if (d.next) d.next.prev = d.prev;
    else this.#tail = d.prev;
    d.prev = d.next = null;
  }

  /** Deadlines set and not yet over (for tests). */
  get size(): number {
    let n = 0;
    for (let d = this.#head; d; d = d.next) n++;
    return n;
  }

  #arm(at: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#fire, Math.max(1, Math.ceil(at - this.now())));
    // Pending deadlines never keep the process alive on their own.
    this.#timer.unref();
  }

  #fire = (): void => {
    this.#timer = null;
    this.#timerAt = Infinity;
    const now = this.now();
    // Node's millisecond timers can fire a fraction of a millisecond before `at` on this clock.
    while (this.#head && this.#head.at <= now + 1) {
      const d = this.#head;
      this.remove(d);
      d.item.expire();
    }
    if (this.#head) this.#arm(this.#head.at);
  };

  /** Cancels every deadline and the timer (shutdown, tests). */
  clear(): void {
    while (this.#head) this.remove(this.#head);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Infinity;
  }
}
