import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventFeed, GatewayEvent } from './events.js';

/** One Server-Sent Events message. Data is split on newlines so no line can end the frame early. */
export function sseFrame(id: string | null, data: string, event?: string): string {
  let out = '';
  if (id !== null) out += `id: ${id.replace(/[\r\n]/g, '')}\n`;
  if (event) out += `event: ${event.replace(/[\r\n]/g, '')}\n`;
  for (const line of data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/** `<boot>.<id>`: the id part when the Last-Event-ID is from this process, else -1 (replay all). */
export function parseLastEventId(value: string | undefined | null, boot: string): number {
  if (!value) return -1;
  const dot = value.lastIndexOf('.');
  if (dot < 0 || value.slice(0, dot) !== boot) return -1;
  const n = Number(value.slice(dot + 1));
  return Number.isSafeInteger(n) && n >= 0 ? n : -1;
}

export interface SseHubOptions {
  /** Open streams at most; the next is refused. */
  max: number;
  heartbeatMs: number;
  /** The reconnection delay the browser is told (`retry:`). */
  retryMs: number;
  /** A client that falls this far behind (bytes buffered) is dropped. */
  maxBufferedBytes?: number;
}

/**
 * The dashboard's live feed: every EventFeed event to every open stream,
 * a comment heartbeat so proxies and browsers keep the stream open, and a
 * replay of the recent events on connect. Streams are capped and closed on
 * shutdown so they never hold the gateway up.
 */
export class SseHub {
  #clients = new Set<ServerResponse>();
  #heartbeat: NodeJS.Timeout | undefined;
  #closed = false;
  #unsubscribe: () => void;
  readonly #maxBuffered: number;

  constructor(
    private readonly feed: EventFeed,
    private readonly opts: SseHubOptions,
  ) {
    this.#maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024;
    this.#unsubscribe = feed.subscribe((e) => this.#broadcast(e));
  }

  get size(): number {
    return this.#clients.size;
  }

  /** Why a new stream can't be opened now, or null when it can. */
  refusal(): string | null {
    if (this.#closed) return 'the gateway is shutting down';
    if (this.#clients.size >= this.opts.max) return `too many event streams open (${this.opts.max}); try again shortly`;
    return null;
  }

  frame(e: GatewayEvent): string {
    return sseFrame(`${this.feed.boot}.${e.id}`, JSON.stringify(e));
  }

  /** Takes over the response as a stream; the caller checked refusal() first. */
  open(req: IncomingMessage, res: ServerResponse, lastEventId: string | null): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    req.socket.setNoDelay(true);
    // Replay what this client missed, or the recent history for a new one.
    let first = `retry: ${this.opts.retryMs}\n\n`;
    for (const e of this.feed.after(parseLastEventId(lastEventId, this.feed.boot))) first += this.frame(e);
    res.write(first);
    this.#clients.add(res);
    // 'close' on the response: it ended, or the client went away.
    res.once('close', () => this.#drop(res));
    this.#heartbeat ??= this.#startHeartbeat();
  }

  /** Ends every stream and refuses new ones (graceful shutdown). */
  close(): void {
    this.#closed = true;
    this.#unsubscribe();
    for (const res of [...this.#clients]) {
      res.end();
      this.#drop(res);
    }
  }

  #startHeartbeat(): NodeJS.Timeout {
    const t = setInterval(() => {
      for (const res of this.#clients) this.#write(res, ': heartbeat\n\n');
    }, this.opts.heartbeatMs);
    t.unref();
    return t;
  }

  #broadcast(e: GatewayEvent): void {
    if (this.#clients.size === 0) return;
    const frame = this.frame(e);
    for (const res of this.#clients) this.#write(res, frame);
  }

  #write(res: ServerResponse, chunk: string): void {
    // A client that stopped reading is let go rather than buffered without end.
    if (res.writableLength > this.#maxBuffered) {
      res.destroy();
      this.#drop(res);
      return;
    }
    res.write(chunk);
  }

  #drop(res: ServerResponse): void {
    this.#clients.delete(res);
    if (this.#clients.size === 0 && this.#heartbeat) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
    }
  }
}
