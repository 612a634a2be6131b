/**
 * An incremental HTTP/1.1 response parser (RFC 9112) for the gateway's own
 * upstream client: it only has to read what an instance answers to a request
 * the gateway wrote itself, so it knows the method, sends no Upgrade and never
 * pipelines. At least as strict as llhttp (Node's parser) wherever a lenient
 * reading could put a connection out of step; anything it refuses is a 502.
 * docs/upstream-client.md lists what it refuses and where it is stricter.
 *
 * Work is linear in the bytes received however they are split: the head is
 * checked byte by byte as it comes (head-scanner.ts) and only its own bytes
 * are kept between reads; chunk-size lines and trailers are checked and
 * dropped as they come (chunk-scanner.ts), never kept.
 */
import { ChunkScanner } from './chunk-scanner.js';
import { framingOf } from './framing.js';
import { HeadScanner } from './head-scanner.js';
import { CR, LF, ResponseParseError } from './syntax.js';

export { ResponseParseError } from './syntax.js';

export interface ResponseHead {
  status: number;
  /**
   * Flat [name, value, ...] as the instance sent them (values without
   * surrounding whitespace), except the framing fields: Content-Length and
   * Transfer-Encoding are left out, and one `content-length` the parser wrote
   * from the length it checked is added where the client should get one (a
   * body of known length, and the answer to a HEAD or a 304 that gave one).
   */
  headers: string[];
  /** Whether the connection may carry another request once this response is read. */
  keepAlive: boolean;
  /** The instance's `Keep-Alive: timeout=N`, in ms; 0 when it sent none. */
  keepAliveHintMs: number;
}

/** What the parser reports; false from either stops it (the rest is kept) until `resume()`. */
export interface ResponseEvents {
  /** The final (non-1xx) head. */
  onHead(head: ResponseHead): boolean;
  /** `last`: this piece ends a body of known length (a chunked or read-to-close body never says so). */
  onBody(chunk: Buffer, last: boolean): boolean;
}

/** Largest response head (status line + headers), as Node's and undici's default. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** The same with the CRLFs that end the last line and the head, which the limit does not count. */
const HEAD_LIMIT = MAX_HEAD_BYTES + 4;

const enum State {
  Head,
  Fixed,
  ChunkSize,
  ChunkData,
  ChunkCr,
  ChunkLf,
  Trailers,
  UntilClose,
  Done,
}

const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i;
const NONE: readonly string[] = [];
const isOws = (c: number) => c === 0x20 || c === 0x09;

export class ResponseParser {
  #state = State.Head;
  /** Bytes kept while paused. */
  #pending: Buffer | null = null;
  /** An unfinished head's bytes so far (its first #headLen bytes). */
  #headBuf: Buffer | null = null;
  #headLen = 0;
  readonly #scanner = new HeadScanner();
  #chunks: ChunkScanner | null = null;
  #remaining = 0;
  #keepAlive = false;
  #paused = false;
  #trailing = false;

  constructor(
    /** The request's method: a HEAD response has no body whatever it says. */
    private readonly method: string,
    private readonly events: ResponseEvents,
  ) {}

  get done(): boolean {
    return this.#state === State.Done;
  }

  /** Whether the response is read and the connection may carry another request. */
  get reusable(): boolean {
    return this.#state === State.Done && this.#keepAlive && !this.#trailing;
  }

  /** Bytes came after the end of the response: the connection is out of step. */
  get trailing(): boolean {
    return this.#trailing;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Lets `execute` go on with the bytes it kept (call it with an empty buffer). */
  resume(): void {
    this.#paused = false;
  }

  /** Whether the head is read (from then on, a broken response is the client's to see). */
  get headRead(): boolean {
    return this.#state !== State.Head;
  }

  /**
   * Feeds bytes from the socket; throws ResponseParseError. Stops early when an event returns
   * false (keeping the rest) or once the response is read (bytes after it set `trailing`).
   */
  execute(chunk: Buffer): void {
    let buf = chunk;
    let off = 0;
    if (this.#pending) {
      // Only after a pause, and the socket is paused with it: this joins at most two reads.
      buf = chunk.length ? Buffer.concat([this.#pending, chunk]) : this.#pending;
      this.#pending = null;
    }
    const len = buf.length;
    while (off < len) {
      if (this.#paused) {
        // Copied: the socket may reuse the memory of the chunk it gave us.
        this.#pending = Buffer.from(buf.subarray(off));
        return;
      }
      switch (this.#state) {
        case State.Head:
          off = this.#readHead(buf, off);
          if (off < 0) return;
          break;
        case State.Fixed: {
          const n = Math.min(this.#remaining, len - off);
          this.#remaining -= n;
          const part = off === 0 && n === len ? buf : buf.subarray(off, off + n);
          off += n;
          if (this.#remaining === 0) this.#state = State.Done;
          if (!this.events.onBody(part, this.#remaining === 0)) this.#paused = true;
          break;
        }
        case State.ChunkSize: {
          const chunks = this.#chunks!;
          const next = chunks.sizeLine(buf, off, len);
          if (next < 0) return;
          off = next;
          this.#remaining = chunks.size;
          this.#state = chunks.size === 0 ? State.Trailers : State.ChunkData;
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.#remaining, len - off);
          this.#remaining -= n;
          const part = buf.subarray(off, off + n);
          off += n;
          if (this.#remaining === 0) this.#state = State.ChunkCr;
          if (!this.events.onBody(part, false)) this.#paused = true;
          break;
        }
        case State.ChunkCr:
          if (buf[off++] !== CR) throw new ResponseParseError('chunk data not followed by CRLF');
          this.#state = State.ChunkLf;
          break;
        case State.ChunkLf:
          if (buf[off++] !== LF) throw new ResponseParseError('chunk data not followed by CRLF');
          this.#state = State.ChunkSize;
          break;
        case State.Trailers: {
          // Trailer fields are checked and dropped: the gateway forwards none (Trailer is hop-by-hop here).
          const next = this.#chunks!.trailers(buf, off, len);
          if (next < 0) return;
          off = next;
          this.#state = State.Done;
          break;
        }
        case State.UntilClose: {
          const part = off === 0 ? buf : buf.subarray(off);
          off = len;
          if (!this.events.onBody(part, false)) this.#paused = true;
          break;
        }
        case State.Done:
          this.#trailing = true;
          return;
      }
    }
  }

  /** The instance closed the connection: the end of a read-until-close body, else an error. */
  finish(): void {
    if (this.#state === State.UntilClose && !this.#pending) {
      this.#state = State.Done;
      return;
    }
    if (this.#state !== State.Done) throw new ResponseParseError('the connection closed before the response ended');
  }

  /**
   * Reads (more of) a head from buf[off..]: the offset past it once it is whole and handled,
   * -1 when the read ended first (its bytes are kept: each byte is copied at most once).
   */
  #readHead(buf: Buffer, off: number): number {
    const scanner = this.#scanner;
    const end = buf.length;
    if (this.#headLen === 0) {
      // The common case: the head starts in this read; checked where it lies.
      const stop = Math.min(end, off + HEAD_LIMIT);
      const headEnd = scanner.scan(buf, off, stop, off);
      if (headEnd >= 0) {
        this.#head(buf, off, headEnd);
        return headEnd;
      }
      if (stop < end) throw new ResponseParseError(`response head over ${MAX_HEAD_BYTES} bytes`);
      this.#keepHead(buf, off, end);
      return -1;
    }
    // The head started in an earlier read: its bytes so far are in #headBuf, the new ones join them.
    const had = this.#headLen;
    const take = Math.min(end - off, HEAD_LIMIT - had);
    this.#keepHead(buf, off, off + take);
    const head = this.#headBuf!;
    const headEnd = scanner.scan(head, had, this.#headLen, 0);
    if (headEnd < 0) {
      if (this.#headLen >= HEAD_LIMIT) throw new ResponseParseError(`response head over ${MAX_HEAD_BYTES} bytes`);
      return -1;
    }
    this.#headLen = 0;
    // Where the head ended in this read (the bytes after it stay in `buf`).
    const next = off + (headEnd - had);
    this.#head(head, 0, headEnd);
    return next;
  }

  #keepHead(buf: Buffer, from: number, to: number): void {
    const need = this.#headLen + (to - from);
    let head = this.#headBuf;
    if (!head || head.length < need) {
      const grown = Buffer.allocUnsafe(Math.min(HEAD_LIMIT, Math.max(need, (head?.length ?? 256) * 2)));
      if (head) head.copy(grown, 0, 0, this.#headLen);
      this.#headBuf = head = grown;
    }
    buf.copy(head, this.#headLen, from, to);
    this.#headLen = need;
  }

  /** A whole head, checked by the scanner, in buf[start, end): read its fields and framing. */
  #head(buf: Buffer, start: number, end: number): void {
    const scanner = this.#scanner;
    const status = scanner.status;
    const http10 = scanner.minor === 0;
    const marks = scanner.marks;
    // One string for the head; names and values are slices of it (no copy each).
    const text = buf.toString('latin1', start, end);
    const headers: string[] = [];
    let lengths: string[] | null = null;
    let encodings: string[] | null = null;
    let close = false;
    let keepAliveToken = false;
    let keepAliveHintMs = 0;
    for (let m = 0; m < marks.length; m += 4) {
      const name = text.slice(marks[m], marks[m + 1]);
      const vs = marks[m + 2]!;
      const rawEnd = marks[m + 3]!;
      let ve = rawEnd;
      while (ve > vs && isOws(text.charCodeAt(ve - 1))) ve--;
      const value = text.slice(vs, ve);
      switch (name.length) {
        case 10: {
          const lower = name.toLowerCase();
          if (lower === 'connection') {
            const v = value.toLowerCase();
            if (v === 'keep-alive') keepAliveToken = true;
            else if (v === 'close') close = true;
            else {
              for (const t of v.split(',')) {
                const token = t.trim();
                if (token === 'close') close = true;
                else if (token === 'keep-alive') keepAliveToken = true;
              }
            }
          } else if (lower === 'keep-alive') {
            const k = KEEP_ALIVE_TIMEOUT.exec(value);
            if (k) keepAliveHintMs = Number(k[1]) * 1000;
          }
          break;
        }
        case 14:
          if (name.toLowerCase() === 'content-length') {
            // Read with what follows the digits: llhttp refuses a tab there, so we do too.
            (lengths ??= []).push(text.slice(vs, rawEnd));
            continue;
          }
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') {
            (encodings ??= []).push(value);
            continue;
          }
          break;
      }
      headers.push(name, value);
    }
    scanner.reset();
    const framing = framingOf(status, this.method, lengths ?? NONE, encodings ?? NONE);
    this.#keepAlive = !close && (!http10 || keepAliveToken);
    if (status < 200) {
      // 1xx is informational: the final answer follows on the same connection, so one that
      // closes it leaves nothing to read (llhttp: "Data after `Connection: close`").
      if (!this.#keepAlive) throw new ResponseParseError('a 1xx response that closes the connection');
      return;
    }
    // The client gets the length the parser checked, never the instance's field (not on a 204: RFC 9110 §8.6).
    if (framing.length >= 0 && status !== 204) headers.push('content-length', String(framing.length));
    switch (framing.body) {
      case 'none':
        this.#state = State.Done;
        break;
      case 'length':
        this.#remaining = framing.length;
        this.#state = framing.length === 0 ? State.Done : State.Fixed;
        break;
      case 'chunked':
        this.#chunks = new ChunkScanner();
        this.#state = State.ChunkSize;
        break;
      case 'close':
        this.#keepAlive = false;
        this.#state = State.UntilClose;
        break;
    }
    const head: ResponseHead = { status, headers, keepAlive: this.#keepAlive, keepAliveHintMs };
    if (!this.events.onHead(head)) this.#paused = true;
  }
}
