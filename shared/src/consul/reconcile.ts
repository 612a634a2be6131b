import type { Logger } from 'pino';
import { guard } from './emit.js';
import type { HealthEntry } from './instances.js';
import type { QueryMeta } from './meta.js';

export interface ReconcileSink {
  /** The services followed now: lower-case key and name as Consul spells it. */
  services(): Array<{ key: string; name: string }>;
  /** A change of `key` is on its way (a read queued or in flight, a confirmation): not the time to compare. */
  busy(key: string): boolean;
  /** Reads `name` from the leader (no ?stale). */
  read(name: string): Promise<{ body: HealthEntry[]; meta: QueryMeta }>;
  /**
   * Whether a leader's answer would change the table now (and the service got
   * no answer of any kind since the read was sent): a candidate correction.
   */
  differs(key: string, entries: HealthEntry[], meta: QueryMeta): boolean;
  /** Applies a leader's answer through the usual rules, unless anything was applied to `key` since the read was sent; true when the table changed. */
  apply(key: string, entries: HealthEntry[], meta: QueryMeta): boolean;
}

export interface Correction {
  service: string;
  /** ms since the epoch. */
  at: number;
}

export interface ReconcileView {
  /** Full passes over every followed service since start. */
  sweeps: number;
  /** Leader reads that changed the table: each a change the blocking queries had missed. */
  corrections: number;
  lastCorrection: Correction | null;
  lastSweepAt: number | null;
}

// At most this many leader reads a second, whatever the catalog's size (500 services: a pass in ~25 s).
const READS_PER_SECOND = 20;
// A leader's answer that differs from the table may only be ahead of a change on its way through the
// blocking queries (routed in milliseconds, under a second on a loaded machine): it counts as a
// correction only if nothing at all reached that service this long after.
const GRACE_MS = 2000;

/**
 * A safety net under the blocking queries: every `intervalMs`, each followed
 * service is read once from the leader, one at a time, and the answer goes
 * through the same rules as any other. If it changes the table, the blocking
 * queries had missed a change: that is logged as a warning and counted
 * (a discovery bug, or a Consul that lost an event), and the table is right
 * again within one interval. A service with a change on its way is skipped.
 */
export class Reconciler {
  #sweeps = 0;
  #corrections = 0;
  #last: Correction | null = null;
  #lastSweepAt: number | null = null;
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #stopped = false;

  constructor(
    private readonly intervalMs: number,
    private readonly sink: ReconcileSink,
    private readonly log: Logger,
  ) {}

  start(): this {
    if (this.intervalMs > 0) void this.#loop();
    return this;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#wake?.();
  }

  view(): ReconcileView {
    return { sweeps: this.#sweeps, corrections: this.#corrections, lastCorrection: this.#last, lastSweepAt: this.#lastSweepAt };
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      await this.#sleep(this.intervalMs);
      if (this.#stopped) return;
      await this.#sweep();
      if (this.#stopped) return;
      this.#sweeps += 1;
      this.#lastSweepAt = Date.now();
    }
  }

  async #sweep(): Promise<void> {
    for (const { key, name } of this.sink.services()) {
      if (this.#stopped) return;
      if (this.sink.busy(key)) continue;
      let answer: { body: HealthEntry[]; meta: QueryMeta };
      try {
        answer = await this.sink.read(name);
      } catch (err) {
        // Consul trouble is the blocking queries' to report; the next pass tries again.
        this.log.debug({ service: name, err: (err as Error).message }, 'reconciliation read failed');
        await this.#sleep(1000 / READS_PER_SECOND);
        continue;
      }
      if (this.#stopped) return;
      // A change arrived meanwhile: the usual path has it, and this answer may be older.
      const entries = Array.isArray(answer.body) ? answer.body : [];
      if (!this.sink.busy(key) && this.#guard(name, () => this.sink.differs(key, entries, answer.meta))) {
        await this.#sleep(GRACE_MS);
        if (this.#stopped) return;
        const changed = !this.sink.busy(key) && this.#guard(name, () => this.sink.apply(key, entries, answer.meta));
        if (changed) {
          this.#corrections += 1;
          this.#last = { service: name, at: Date.now() };
          this.log.warn(
            { service: name, index: String(answer.meta.index), corrections: this.#corrections },
            'the table differed from consul: corrected from a leader read (the blocking queries had missed a change)',
          );
        }
      }
      await this.#sleep(1000 / READS_PER_SECOND);
    }
  }

  #guard(service: string, fn: () => boolean): boolean {
    return guard(this.log, 'applying a reconciliation answer', { service }, fn, false);
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms);
      this.#timer.unref();
    });
  }
}
