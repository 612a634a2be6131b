import { EventEmitter } from 'node:events';
import type Consul from 'consul';
import { backoffDelay } from '../backoff.js';
import type { ConsulPool } from './pool.js';
import type { ConsulAddress } from './addresses.js';

/** What Consul said about its own state alongside a response. */
export interface QueryMeta {
  agent: string;
  index: bigint;
  knownLeader: boolean;
  /** ms since the answering server last heard from the leader (stale reads). */
  lastContactMs: number;
  at: number;
}

export interface BlockingQueryOptions {
  /** Consul's `wait` for a blocking query, in ms. */
  waitMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

type Call = (client: Consul, opts: Record<string, unknown>) => Promise<unknown>;

export interface Response {
  headers: Record<string, string | string[] | undefined>;
}

/**
 * A Consul blocking query that runs until stop(): the same loop the consul
 * package's Watch runs, but one that never ends on its own. Every response
 * (changed or not) reports Consul's leader and staleness headers; an error
 * moves the pool to the next agent and retries after a jittered backoff.
 *
 * Events: 'data' (body, meta) when the index moved; 'ok' (meta) on every
 * response; 'error' (err, agent, attempt) on every failure.
 */
export class BlockingQuery<T> extends EventEmitter {
  #stopped = false;
  #ctx: EventEmitter & { includeResponse?: boolean } = Object.assign(new EventEmitter(), {
    includeResponse: true,
  });
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;

  constructor(
    private readonly pool: ConsulPool,
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

  get stopped(): boolean {
    return this.#stopped;
  }

  async #loop(): Promise<void> {
    let index = 0n;
    let failures = 0;
    let lastAgent: ConsulAddress | undefined;
    while (!this.#stopped) {
      const { client, index: agentIndex, address } = this.pool.current();
      // A new agent has its own index space: start from 0 there.
      if (lastAgent && lastAgent !== address) index = 0n;
      lastAgent = address;
      try {
        const [res, body] = (await this.call(client, {
          index: index.toString(),
          wait: `${this.opts.waitMs}ms`,
          // Consul answers a blocking query within wait + wait/16; past that it is stuck.
          timeout: this.opts.waitMs + Math.max(this.opts.waitMs / 8, 1000),
          stale: true,
          ctx: this.#ctx,
        })) as [Response, T];
        if (this.#stopped) return;
        const meta = readMeta(res, address.url);
        failures = 0;
        this.emit('ok', meta);
        // Index 0 is never valid and an index that went backwards means Consul
        // reset (snapshot restore, other server): take the body, restart at 0.
        if (meta.index <= 0n || meta.index < index) {
          index = 0n;
          this.emit('data', body, meta);
          await this.#sleep(this.opts.backoffBaseMs);
        } else if (meta.index !== index) {
          index = meta.index;
          this.emit('data', body, meta);
        }
      } catch (err) {
        if (this.#stopped) return;
        failures += 1;
        this.pool.reportFailure(agentIndex);
        this.emit('error', err, address.url, failures);
        // Failing over to a fresh agent is immediate the first time round.
        const delay =
          failures < this.pool.clients.length
            ? 0
            : backoffDelay(failures - this.pool.clients.length, this.opts.backoffBaseMs, this.opts.backoffMaxMs);
        await this.#sleep(delay);
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

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function readMeta(res: Response, agent: string): QueryMeta {
  let index = 0n;
  try {
    index = BigInt(header(res, 'x-consul-index') ?? '0');
  } catch {
    index = 0n;
  }
  return {
    agent,
    index,
    knownLeader: header(res, 'x-consul-knownleader') !== 'false',
    lastContactMs: Number(header(res, 'x-consul-lastcontact') ?? 0) || 0,
    at: Date.now(),
  };
}
