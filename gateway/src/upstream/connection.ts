import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { OriginPool } from './origin-pool.js';
import { UpstreamError, type UpstreamHandler, type UpstreamRequest } from './request.js';
import { ResponseParseError, ResponseParser, type ResponseEvents, type ResponseHead } from './response-parser.js';

export const ignore = () => undefined;

const EMPTY = Buffer.alloc(0);

/** One socket to one instance, carrying one request at a time. */
export class Connection implements ResponseEvents {
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
