import net, { type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { ResponseParseError, ResponseParser, type ResponseEvents, type ResponseHead } from './response-parser.js';

/**
 * The gateway's HTTP/1.1 client to its instances: kept-alive sockets per
 * instance, one request at a time on each, the request head written in one
 * call and the response parsed by response-parser.ts. It replaces undici on
 * the hot path because the bench measured undici's general machinery as the
 * larger part of the proxy's CPU (README, Performance); the callbacks are the
 * ones the exchange had with undici's dispatch API, so exchange.ts kept its
 * logic.
 */

export interface UpstreamClientOptions {
  /** Time to open a connection (Envoy's connect_timeout, fabio's proxy.dialtimeout). */
  connectTimeoutMs: number;
  /** Idle time after which a kept-alive socket is not used again, and closed. */
  keepAliveMs: number;
  /** Longest gap between two chunks of a response body, 0 = none. */
  bodyTimeoutMs: number;
}

export interface UpstreamRequest {
  host: string;
  port: number;
  method: string;
  /** Path and query, as they go on the request line. */
  path: string;
  /** Flat [name, value, ...], Host and a body's Content-Length included; Transfer-Encoding is the client's to add. */
  headers: readonly string[];
  /** The request body, read only once the connection is open; null for none. */
  body: Readable | null;
  /** The body's length when the client gave one; null sends it chunked. */
  contentLength: number | null;
}

/** What an attempt hears from the client, in this order (any may end early with onError). */
export interface UpstreamHandler {
  /** Right away: how to abandon the request (the socket is then closed, not reused). */
  onConnect(abort: (err?: Error) => void): void;
  /** The whole request, body included, is written. */
  onRequestSent(): void;
  /** The final head. Return false to stop reading until `resume` is called. */
  onHeaders(status: number, headers: string[], resume: () => void): boolean;
  /**
   * A piece of the body; `last` when it ends a body of known length (onComplete
   * follows at once). Return false to stop reading until `resume` is called.
   */
  onData(chunk: Buffer, last: boolean): boolean;
  onComplete(): void;
  onError(err: Error): void;
}

/**
 * Every failure the client reports. `code` is what shared/upstream-failure.ts
 * classifies: ECONNRESET (the connection broke before the response ended) is a
 * reset, UPSTREAM_CONNECT_TIMEOUT and UPSTREAM_INVALID_ADDRESS (nothing reached
 * the instance) connect failures, UPSTREAM_BODY_TIMEOUT a timeout.
 */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(
    readonly code: 'ECONNRESET' | 'UPSTREAM_CONNECT_TIMEOUT' | 'UPSTREAM_INVALID_ADDRESS' | 'UPSTREAM_BODY_TIMEOUT' | 'UPSTREAM_ABORTED' | 'UPSTREAM_CLIENT_CLOSED',
    message: string,
  ) {
    super(message);
  }
}

const ignore = () => undefined;

/** A request the client won't send: the handler hears of it in the usual order. */
function refuse(handler: UpstreamHandler, err: UpstreamError): void {
  handler.onConnect(ignore);
  handler.onError(err);
}
const EMPTY = Buffer.alloc(0);

// Bytes that could end a request line or header early: never in anything we build from Consul data.
const UNSAFE_ORIGIN = /[\s\0/?#@]/;

/** One socket to one instance, carrying one request at a time. */
class Connection implements ResponseEvents {
  handler: UpstreamHandler | null = null;
  parser: ResponseParser | null = null;
  /** When it went idle (performance.now()), and for how long it may stay so. */
  idleSince = 0;
  idleLimitMs: number;
  connected = false;
  dead = false;
  /** Counts requests, so a callback kept from an earlier one can't touch the current one. */
  #gen = 0;
  #queued: UpstreamRequest | null = null;
  #connectTimer: NodeJS.Timeout | undefined;
  #bodyTimer: NodeJS.Timeout | undefined;
  #head: ResponseHead | null = null;
  #body: Readable | null = null;
  #bodySent = true;
  #chunked = false;
  /** The instance closed its side while the parser was paused with bytes still to read. */
  #eof = false;

  constructor(
    readonly socket: Socket,
    readonly pool: OriginPool,
  ) {
    this.idleLimitMs = pool.client.options.keepAliveMs;
    socket.setNoDelay(true);
    socket.on('data', this.#onData);
    socket.on('error', this.#onSocketError);
    socket.on('close', this.#onClose);
    socket.on('end', this.#onEnd);
    socket.once('connect', this.#onConnected);
    this.#connectTimer = setTimeout(this.#onConnectTimeout, pool.client.options.connectTimeoutMs);
  }

  start(req: UpstreamRequest, handler: UpstreamHandler): void {
    const gen = ++this.#gen;
    this.handler = handler;
    this.#head = null;
    this.parser = new ResponseParser(req.method, this);
    handler.onConnect((err) => {
      if (gen === this.#gen && this.handler) this.#fail(err ?? new UpstreamError('UPSTREAM_ABORTED', 'request aborted'));
    });
    if (this.handler !== handler) return; // aborted at once
    if (this.connected) this.#write(req);
    else this.#queued = req;
  }

  #onConnected = () => {
    clearTimeout(this.#connectTimer);
    this.connected = true;
    const req = this.#queued;
    this.#queued = null;
    if (req && this.handler) this.#write(req);
  };

  #onConnectTimeout = () => this.#fail(new UpstreamError('UPSTREAM_CONNECT_TIMEOUT', `no connection to ${this.pool.key} within ${this.pool.client.options.connectTimeoutMs} ms`));

  #write(req: UpstreamRequest): void {
    let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
    const h = req.headers;
    for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`;
    const body = req.body;
    if (!body) {
      // A body-less request that would usually carry one says so, as undici and browsers do.
      if (req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') head += 'content-length: 0\r\n';
      this.socket.write(`${head}\r\n`, 'latin1');
      this.#bodySent = true;
      this.handler?.onRequestSent();
      return;
    }
    this.#chunked = req.contentLength === null;
    this.socket.write(`${head}${this.#chunked ? 'transfer-encoding: chunked\r\n' : ''}\r\n`, 'latin1');
    this.#bodySent = false;
    this.#body = body;
    body.on('data', this.#onBodyData);
    body.on('end', this.#onBodyEnd);
    body.on('error', this.#onBodyError);
  }

  #onBodyData = (chunk: Buffer) => {
    let ok: boolean;
    if (this.#chunked) {
      this.socket.cork();
      this.socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      this.socket.write(chunk);
      ok = this.socket.write('\r\n', 'latin1');
      this.socket.uncork();
    } else {
      ok = this.socket.write(chunk);
    }
    // The instance isn't taking the body as fast as the client sends it: stop pulling.
    if (!ok) {
      this.#body!.pause();
      this.socket.once('drain', this.#onSocketDrain);
    }
  };

  #onSocketDrain = () => this.#body?.resume();

  #onBodyEnd = () => {
    if (this.#chunked) this.socket.write('0\r\n\r\n', 'latin1');
    this.#unhookBody();
    this.#bodySent = true;
    this.handler?.onRequestSent();
  };

  #onBodyError = (err: Error) => this.#fail(err);

  #unhookBody(): void {
    const body = this.#body;
    if (!body) return;
    this.#body = null;
    body.off('data', this.#onBodyData);
    body.off('end', this.#onBodyEnd);
    body.off('error', this.#onBodyError);
    this.socket.off('drain', this.#onSocketDrain);
    if (this.#bodySent) return;
    // What the client still sends is read and dropped (its connection stays in step), and
    // a late failure of that body is nobody's business any more.
    body.on('error', ignore);
    body.resume();
  }

  #onData = (chunk: Buffer) => {
    if (!this.handler) {
      // Bytes nobody asked for: the connection is out of step with us.
      this.#destroy();
      return;
    }
    this.#feed(chunk);
  };

  /** Runs the parser over new (or kept) bytes and acts on where it got to. */
  #feed(chunk: Buffer): void {
    const parser = this.parser!;
    const gen = this.#gen;
    try {
      parser.execute(chunk);
    } catch (err) {
      if (gen === this.#gen) this.#fail(err as Error);
      return;
    }
    // A callback may have aborted this request (and the socket) on the way.
    if (gen !== this.#gen || !this.handler) return;
    if (parser.done) return this.#complete(parser);
    if (parser.paused) {
      this.#pause();
      return;
    }
    if (this.#eof) return this.#onEnd();
    // A body still coming: the instance must keep it flowing.
    if (this.#head) this.#armBodyTimer();
  }

  #armBodyTimer(): void {
    const ms = this.pool.client.options.bodyTimeoutMs;
    if (ms <= 0) return;
    if (this.#bodyTimer) this.#bodyTimer.refresh();
    else this.#bodyTimer = setTimeout(this.#onBodyTimeout, ms);
  }

  #onBodyTimeout = () => this.#fail(new UpstreamError('UPSTREAM_BODY_TIMEOUT', `no response data from ${this.pool.key} for ${this.pool.client.options.bodyTimeoutMs} ms`));

  onHead(head: ResponseHead): boolean {
    this.#head = head;
    if (head.keepAliveHintMs > 0) this.idleLimitMs = Math.min(this.pool.client.options.keepAliveMs, head.keepAliveHintMs - 1_000);
    return this.handler?.onHeaders(head.status, head.headers, this.#resumer()) !== false;
  }

  onBody(chunk: Buffer, last: boolean): boolean {
    return this.handler?.onData(chunk, last) !== false;
  }

  /** A resume bound to the current request: called late, after the request is over, it does nothing. */
  #resumer(): () => void {
    const gen = this.#gen;
    return () => {
      if (gen !== this.#gen || !this.handler || !this.parser?.paused) return;
      this.parser.resume();
      this.socket.resume();
      this.#feed(EMPTY);
    };
  }

  #pause(): void {
    // The client is the slow one now: the instance is not on the body clock while we don't read.
    this.#clearBodyTimer();
    this.socket.pause();
  }

  #complete(parser: ResponseParser): void {
    const handler = this.handler!;
    this.#clearBodyTimer();
    this.handler = null;
    this.parser = null;
    // An answer before the whole request body went out leaves the connection mid-request.
    if (parser.reusable && this.#bodySent && !this.#eof && !this.pool.client.closing) {
      this.socket.resume();
      this.pool.release(this);
    } else {
      this.#unhookBody();
      this.#destroy();
    }
    handler.onComplete();
  }

  /** Ends the current request with an error; the socket is never reused after one. */
  #fail(err: Error): void {
    const handler = this.handler;
    this.handler = null;
    this.parser = null;
    this.#unhookBody();
    this.#destroy();
    handler?.onError(err);
  }

  #onSocketError = (err: Error) => {
    // With a request on it, the error is that request's; an idle socket just goes.
    if (this.handler) this.#fail(err);
    else this.#destroy();
  };

  #onEnd = () => {
    // The instance closed its side: the end of a read-until-close body, or a break.
    const parser = this.parser;
    if (!parser || !this.handler) return this.#destroy();
    this.#eof = true;
    if (parser.paused) return; // the kept bytes come first; #feed comes back here
    try {
      parser.finish();
    } catch (err) {
      this.#fail(err instanceof ResponseParseError && !parser.headRead ? new UpstreamError('ECONNRESET', `${this.pool.key} closed the connection before answering`) : (err as Error));
      return;
    }
    this.#complete(parser);
  };

  #onClose = () => {
    if (this.handler && !this.parser?.paused) this.#fail(new UpstreamError('ECONNRESET', `the connection to ${this.pool.key} closed`));
    else if (!this.handler) this.#destroy();
  };

  #clearBodyTimer(): void {
    if (this.#bodyTimer) clearTimeout(this.#bodyTimer);
    this.#bodyTimer = undefined;
  }

  #destroy(): void {
    if (this.dead) return;
    this.dead = true;
    this.#gen++;
    clearTimeout(this.#connectTimer);
    this.#clearBodyTimer();
    this.socket.destroy();
    this.pool.remove(this);
  }

  close(): void {
    this.#destroy();
  }
}

/** The sockets to one instance (host:port). */
class OriginPool {
  readonly idle: Connection[] = [];
  readonly all = new Set<Connection>();

  constructor(
    readonly client: UpstreamClient,
    readonly key: string,
    readonly host: string,
    readonly port: number,
  ) {}

  /** The most recently used idle socket still fresh enough (LIFO keeps few sockets warm), or a new one. */
  acquire(): Connection {
    const now = performance.now();
    for (let c = this.idle.pop(); c; c = this.idle.pop()) {
      if (!c.dead && now - c.idleSince < c.idleLimitMs) return c;
      c.close();
    }
    const c = new Connection(net.connect({ host: this.host, port: this.port }), this);
    this.all.add(c);
    return c;
  }

  release(c: Connection): void {
    c.idleSince = performance.now();
    this.idle.push(c);
  }

  remove(c: Connection): void {
    this.all.delete(c);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.client.closing) this.client.checkClosed();
  }

  /** Closes the sockets idle past their limit. */
  sweep(now: number): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const c = this.idle[i]!;
      if (now - c.idleSince >= c.idleLimitMs) c.close();
    }
  }
}

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
