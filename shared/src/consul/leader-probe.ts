import { EventEmitter } from 'node:events';
import type { ConsulPool } from './pool.js';
import type { QueryMeta } from './blocking.js';

/**
 * Asks the preferred agent for the raft leader every few seconds. Blocking
 * queries only answer when something changes (or after their wait), so on
 * their own they would notice a lost quorum up to a minute late; this notices
 * it within one interval. Emits 'ok' (meta) and 'error' (err, agent, attempt)
 * like a BlockingQuery, so Discovery tracks both the same way.
 */
export class LeaderProbe extends EventEmitter {
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;

  constructor(
    private readonly pool: ConsulPool,
    private readonly intervalMs: number,
  ) {
    super();
  }

  start(): this {
    if (this.intervalMs > 0) this.#schedule(0);
    return this;
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => void this.#once(), ms);
    this.#timer.unref();
  }

  async #once(): Promise<void> {
    const { client, index, address } = this.pool.current();
    try {
      const leader = (await client.status.leader({ timeout: Math.max(500, this.intervalMs) } as never)) as unknown;
      this.#failures = 0;
      const meta: Partial<QueryMeta> = { agent: address.url, knownLeader: typeof leader === 'string' && leader.length > 0, at: Date.now() };
      this.emit('ok', meta);
    } catch (err) {
      this.#failures += 1;
      this.pool.reportFailure(index);
      this.emit('error', err, address.url, this.#failures);
    }
    if (this.#timer) this.#schedule(this.intervalMs);
  }
}
