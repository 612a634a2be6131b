import { EventEmitter } from 'node:events';
import type { ConsulPool } from './pool.js';
import { readMeta, type Response } from './blocking.js';

/**
 * Asks the preferred agent for Consul's state every few seconds: a plain
 * (non-blocking) stale read whose X-Consul-KnownLeader and
 * X-Consul-LastContact headers say whether there is a leader and how fresh
 * the answering server is. Blocking
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
      const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
      const [res] = (await client.catalog.service.list({ stale: true, timeout: Math.max(500, this.intervalMs), ctx } as never)) as unknown as [Response];
      this.#failures = 0;
      this.emit('ok', readMeta(res, address.url));
    } catch (err) {
      this.#failures += 1;
      this.pool.reportFailure(index);
      this.emit('error', err, address.url, this.#failures);
    }
    if (this.#timer) this.#schedule(this.intervalMs);
  }
}
