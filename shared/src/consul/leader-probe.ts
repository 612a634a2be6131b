import type { Logger } from 'pino';
import { guard } from './emit.js';
import type { ConsulError } from './errors.js';
import type { QueryMeta } from './meta.js';
import { endpoints, type ConsulPool } from './pool.js';
import { readOnce, ReadError } from './read.js';

export interface LeaderProbeSink {
  answered(meta: QueryMeta): void;
  failed(error: ConsulError, agent: string, attempt: number): void;
}

/**
 * Asks the preferred agent for Consul's state every few seconds: a small
 * stale read (the Consul servers' own service) whose X-Consul-KnownLeader and
 * X-Consul-LastContact headers say whether there is a leader and how fresh
 * the answering server is. Blocking queries only answer when something
 * changes (or after their wait), so on their own they would notice a lost
 * quorum up to a minute late; this notices it within one interval.
 */
export class LeaderProbe {
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #stopped = false;

  constructor(
    private readonly pool: ConsulPool,
    private readonly intervalMs: number,
    private readonly sink: LeaderProbeSink,
    private readonly log: Logger,
  ) {}

  start(): this {
    if (this.intervalMs > 0) this.#schedule(0);
    return this;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => void this.#once(), ms);
    this.#timer.unref();
  }

  async #once(): Promise<void> {
    try {
      const { meta } = await readOnce(this.pool, endpoints.serviceNodes('consul'));
      this.#failures = 0;
      if (!this.#stopped) guard(this.log, 'handling a leader probe answer', {}, () => this.sink.answered(meta), undefined);
    } catch (err) {
      this.#failures += 1;
      if (!this.#stopped && err instanceof ReadError) guard(this.log, 'handling a leader probe answer', {}, () => this.sink.failed(err.consul, err.agent, this.#failures), undefined);
    }
    if (!this.#stopped) this.#schedule(this.intervalMs);
  }
}
