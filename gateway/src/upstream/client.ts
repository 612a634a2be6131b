import { ignore } from './connection.js';
import { OriginPool } from './origin-pool.js';
import { UpstreamError, type UpstreamClientOptions, type UpstreamHandler, type UpstreamRequest } from './request.js';

export { UpstreamError, type UpstreamClientOptions, type UpstreamHandler, type UpstreamRequest } from './request.js';

/**
 * The gateway's HTTP/1.1 client to its instances: kept-alive sockets per
 * instance, one request at a time on each, the request head written in one
 * call and the response parsed by response-parser.ts. It replaces undici on
 * the hot path because the bench measured undici's general machinery as the
 * larger part of the proxy's CPU (README, Performance); the callbacks are the
 * ones the exchange had with undici's dispatch API, so exchange.ts kept its
 * logic.
 */

/** A request the client won't send: the handler hears of it in the usual order. */
function refuse(handler: UpstreamHandler, err: UpstreamError): void {
  handler.onConnect(ignore);
  handler.onError(err);
}

// Bytes that could end a request line or header early: never in anything we build from Consul data.
const UNSAFE_ORIGIN = /[\s\0/?#@]/;

export class UpstreamClient {
  closing = false;
  readonly #pools = new Map<string, OriginPool>();
  readonly #sweeper: NodeJS.Timeout;
  #closed: (() => void) | null = null;

  constructor(readonly options: UpstreamClientOptions) {
    // Idle sockets are checked when picked, so this only frees the ones nobody picks.
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(1_000, options.keepAliveMs)).unref();
  }

  /** Sends one request; everything after is told to the handler, never thrown. */
  dispatch(req: UpstreamRequest, handler: UpstreamHandler): void {
    if (this.closing) return refuse(handler, new UpstreamError('UPSTREAM_CLIENT_CLOSED', 'the upstream client is closing'));
    const key = `${req.host}:${req.port}`;
    let pool = this.#pools.get(key);
    if (!pool) {
      if (UNSAFE_ORIGIN.test(req.host) || !Number.isInteger(req.port) || req.port < 1 || req.port > 65_535) {
        return refuse(handler, new UpstreamError('UPSTREAM_INVALID_ADDRESS', `not a valid upstream address: ${JSON.stringify(key)}`));
      }
      pool = new OriginPool(this, key, req.host.startsWith('[') ? req.host.slice(1, -1) : req.host, req.port);
      this.#pools.set(key, pool);
    }
    pool.acquire().start(req, handler);
  }

  /** Open sockets (idle and busy), for tests and shutdown. */
  get connections(): number {
    let n = 0;
    for (const p of this.#pools.values()) n += p.all.size;
    return n;
  }

  checkClosed(): void {
    if (this.#closed && this.connections === 0) this.#closed();
  }

  #sweep(): void {
    const now = performance.now();
    for (const [key, p] of this.#pools) {
      p.sweep(now);
      // Instances come and go: a pool with no socket left is not kept.
      if (p.all.size === 0) this.#pools.delete(key);
    }
  }

  /** Stops taking requests, closes idle sockets and resolves once the busy ones are done. */
  close(): Promise<void> {
    this.closing = true;
    clearInterval(this.#sweeper);
    for (const p of this.#pools.values()) for (const c of [...p.idle]) c.close();
    if (this.connections === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#closed = resolve));
  }

  /** Closes every socket now, busy or not. */
  destroy(): Promise<void> {
    this.closing = true;
    clearInterval(this.#sweeper);
    for (const p of this.#pools.values()) for (const c of [...p.all]) c.close();
    this.#closed?.();
    return Promise.resolve();
  }
}
