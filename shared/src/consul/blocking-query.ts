import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.js';
import { type Call, classifyConsulError, type ConsulAddress, type ConsulAgents, deliver, readMeta, type Response } from './agents.js';

/**
 * The blocking query (long poll) on one endpoint, through agents.ts's HTTP
 * layer, and the token bucket that paces its loop.
 */

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

export interface BlockingQueryOptions {
  /** Names the query in logs: "catalog", "health state", "service web". */
  name: string;
  /** Consul's `wait` for a blocking query, in ms. */
  waitMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  log: Logger;
}

// Three answers back to back go out at once; past that, at most ten a second.
const BURST = 3;
const PER_SECOND = 10;

/**
 * A Consul blocking query that runs until stop(), following the rules of
 * Consul's blocking-query docs: block on the last X-Consul-Index, start over
 * from 0 when the index goes back, never block on 0, rate-limit the loop.
 * A failure reaching Consul moves the preference to the next agent and retries
 * after a jittered backoff; a misconfiguration (403, 400) stays on the same
 * agent and is retried at the slowest pace.
 *
 * Events: 'data' (body, meta) for the first answer and whenever the index
 * differs from the last one delivered (moved, or went back); 'ok' (meta) on every answer; 'error' (ConsulError, agent,
 * attempt) on every failure. Listeners run outside the Consul call: what they
 * throw is logged as a bug and never counts as a Consul failure.
 */
export class BlockingQuery<T> extends EventEmitter {
  #stopped = false;
  #ctx: EventEmitter & { includeResponse?: boolean } = Object.assign(new EventEmitter(), {
    includeResponse: true,
  });
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #bucket = new TokenBucket(BURST, PER_SECOND);

  constructor(
    private readonly agents: ConsulAgents,
    private readonly call: Call,
    private readonly opts: BlockingQueryOptions,
  ) {
    super();
  }

  start(): this {
    void this.#loop();
    return this;
  }

  stop(): void {
    this.#stopped = true;
    this.#ctx.emit('cancel');
    if (this.#timer) clearTimeout(this.#timer);
    this.#wake?.();
  }

  async #loop(): Promise<void> {
    let cursor = 0n;
    let delivered: bigint | undefined;
    let failures = 0;
    let lastAgent: ConsulAddress | undefined;
    const { name, log, waitMs } = this.opts;
    while (!this.#stopped) {
      await this.#sleep(this.#bucket.take());
      if (this.#stopped) return;
      const { client, index: agentIndex, address } = this.agents.current();
      // Another agent may ask another server: start over rather than block on an index it may not have.
      if (lastAgent && lastAgent !== address) cursor = 0n;
      lastAgent = address;
      const sentAt = Date.now();
      let res: Response;
      let body: T;
      try {
        [res, body] = (await this.call(client, {
          index: cursor.toString(),
          wait: `${waitMs}ms`,
          // Consul answers a blocking query within wait + wait/16; past that it is stuck.
          timeout: waitMs + Math.max(waitMs / 8, 1000),
          stale: true,
          ctx: this.#ctx,
        })) as [Response, T];
      } catch (err) {
        if (this.#stopped) return;
        failures += 1;
        const e = classifyConsulError(err);
        if (e.failover) this.agents.reportFailure(agentIndex);
        deliver(this, log, name, 'error', e, address.url, failures);
        // Failing over to a fresh agent is immediate the first time round;
        // a misconfiguration will not fix itself soon: retry at the slowest pace.
        const delay = !e.retryable
          ? this.opts.backoffMaxMs
          : e.failover && failures < this.agents.clients.length
            ? 0
            : backoffDelay(failures - this.agents.clients.length, this.opts.backoffBaseMs, this.opts.backoffMaxMs);
        await this.#sleep(delay);
        continue;
      }
      if (this.#stopped) return;
      failures = 0;
      const meta = readMeta(res, address.url);
      const previous = cursor;
      if (meta.index < previous) cursor = 0n; // went back: start over from 0
      else if (meta.index === previous && previous > 0n && Date.now() - sentAt < waitMs / 2)
        // Woken early with nothing new: what a snapshot restore does to every blocking
        // query (the restored index is lower, so blocking on ours would sit out the wait).
        cursor = 0n;
      else cursor = meta.index > 0n ? meta.index : 1n; // never block on 0: 1 is always safe
      deliver(this, log, name, 'ok', meta);
      if (delivered === undefined || meta.index !== delivered) {
        delivered = meta.index;
        deliver(this, log, name, 'data', body, meta);
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms);
    });
  }
}
