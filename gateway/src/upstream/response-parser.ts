/**
 * An incremental HTTP/1.1 response parser (RFC 9112) for the gateway's own
 * upstream client: it only has to read what an instance answers to a request
 * the gateway wrote itself, so it knows the method, sends no Upgrade and never
 * pipelines. Strict where a lenient reading could desynchronise the connection
 * (framing, line endings, header syntax); anything it rejects is a 502.
 */

/** The instance's answer can't be read as HTTP/1.1: the connection is unusable. */
export class ResponseParseError extends Error {
  override readonly name = 'ResponseParseError';
  readonly code = 'UPSTREAM_BAD_RESPONSE';
}

export interface ResponseHead {
  status: number;
  /** Flat [name, value, ...] as the instance sent them (values without surrounding whitespace). */
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
/** Largest chunk-size line (with extensions) or trailer section we wait for. */
const MAX_LINE_BYTES = 4 * 1024;

const enum State {
  Head,
  Fixed,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
  Done,
}

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** tchar (RFC 9110 §5.6.2) by char code, for header names. */
const TOKEN_CHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN_CHAR[c.charCodeAt(0)] = 1;
const isOws = (c: number) => c === 0x20 || c === 0x09;
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** A Content-Length of 1 to 15 digits as a number; -1 when it is anything else. */
function digits(s: string): number {
  if (s.length === 0 || s.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isDigit(c)) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/** The one length a Content-Length value gives ("5", or the list "5, 5"); throws when it gives none. */
function lengthOf(value: string): number {
  const n = digits(value);
  if (n >= 0) return n;
  let agreed = -1;
  for (const v of value.split(',')) {
    const m = digits(v.trim());
    if (m < 0) throw new ResponseParseError('invalid Content-Length');
    if (agreed >= 0 && m !== agreed) throw new ResponseParseError('conflicting Content-Length values');
    agreed = m;
  }
  return agreed;
}

/** The status code of an `HTTP/1.x SSS[ reason]` line ending at `eol`. */
function statusOf(text: string, eol: number): number {
  const ok =
    eol >= 12 &&
    text.startsWith('HTTP/1.') &&
    (text.charCodeAt(7) === 0x30 || text.charCodeAt(7) === 0x31) &&
    text.charCodeAt(8) === 0x20 &&
    text.charCodeAt(9) >= 0x31 &&
    isDigit(text.charCodeAt(9)) &&
    isDigit(text.charCodeAt(10)) &&
    isDigit(text.charCodeAt(11)) &&
    (eol === 12 || text.charCodeAt(12) === 0x20);
  if (!ok) throw new ResponseParseError('invalid status line');
  // The reason phrase is never used, but a bare CR or LF in it means the framing is off.
  for (let i = 13; i < eol; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0d || c === 0x0a) throw new ResponseParseError('invalid status line');
  }
  return (text.charCodeAt(9) - 0x30) * 100 + (text.charCodeAt(10) - 0x30) * 10 + (text.charCodeAt(11) - 0x30);
}
const CHUNK_SIZE = /^([0-9a-fA-F]{1,13})[ \t]*(?:;.*)?$/;
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i;

export class ResponseParser {
  #state = State.Head;
  /** Bytes of an unfinished head, size line or trailer section. */
  #pending: Buffer | null = null;
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
      buf = chunk.length ? Buffer.concat([this.#pending, chunk]) : this.#pending;
      this.#pending = null;
    }
    while (off < buf.length) {
      if (this.#paused) {
        this.#pending = Buffer.from(buf.subarray(off));
        return;
      }
      switch (this.#state) {
        case State.Head: {
          const end = buf.indexOf(CRLFCRLF, off);
          // Up to 3 bytes of the blank line may already be here: the limit is on the head itself.
          if (end < 0) return this.#wait(buf, off, MAX_HEAD_BYTES, 'response head', 3);
          if (end - off > MAX_HEAD_BYTES) throw new ResponseParseError(`response head over ${MAX_HEAD_BYTES} bytes`);
          const head = buf.toString('latin1', off, end);
          off = end + 4;
          this.#head(head);
          break;
        }
        case State.Fixed: {
          const n = Math.min(this.#remaining, buf.length - off);
          this.#remaining -= n;
          const part = off === 0 && n === buf.length ? buf : buf.subarray(off, off + n);
          off += n;
          if (this.#remaining === 0) this.#state = State.Done;
          if (!this.events.onBody(part, this.#remaining === 0)) this.#paused = true;
          break;
        }
        case State.ChunkSize: {
          const end = buf.indexOf(CRLF, off);
          if (end < 0) return this.#wait(buf, off, MAX_LINE_BYTES, 'chunk size line', 1);
          if (end - off > MAX_LINE_BYTES) throw new ResponseParseError(`chunk size line over ${MAX_LINE_BYTES} bytes`);
          const m = CHUNK_SIZE.exec(buf.toString('latin1', off, end));
          if (!m) throw new ResponseParseError('invalid chunk size line');
          off = end + 2;
          this.#remaining = parseInt(m[1]!, 16);
          this.#state = this.#remaining === 0 ? State.Trailers : State.ChunkData;
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.#remaining, buf.length - off);
          this.#remaining -= n;
          const part = buf.subarray(off, off + n);
          off += n;
          if (this.#remaining === 0) this.#state = State.ChunkDataEnd;
          if (!this.events.onBody(part, false)) this.#paused = true;
          break;
        }
        case State.ChunkDataEnd: {
          if (buf.length - off < 2) return this.#wait(buf, off, 2, 'chunk end', 0);
          if (buf[off] !== 0x0d || buf[off + 1] !== 0x0a) throw new ResponseParseError('chunk data not followed by CRLF');
          off += 2;
          this.#state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          // Trailer fields are read and dropped: the gateway forwards none (Trailer is hop-by-hop here).
          if (buf.length - off >= 2 && buf[off] === 0x0d && buf[off + 1] === 0x0a) {
            off += 2;
          } else {
            const end = buf.indexOf(CRLFCRLF, off);
            if (end < 0) return this.#wait(buf, off, MAX_LINE_BYTES, 'trailer section', 3);
            if (end - off > MAX_LINE_BYTES) throw new ResponseParseError(`trailer section over ${MAX_LINE_BYTES} bytes`);
            off = end + 4;
          }
          this.#state = State.Done;
          break;
        }
        case State.UntilClose: {
          const part = off === 0 ? buf : buf.subarray(off);
          off = buf.length;
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

  /** Keeps an unfinished head, line or section; `slack` is how much of its terminator may be here already. */
  #wait(buf: Buffer, off: number, max: number, what: string, slack: number): void {
    if (buf.length - off > max + slack) throw new ResponseParseError(`${what} over ${max} bytes`);
    // Copied: the socket may reuse the memory of the chunk it gave us.
    this.#pending = Buffer.from(buf.subarray(off));
  }

  #head(text: string): void {
    // Scanned by hand rather than split and matched with regexes: this runs once per request.
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = text.length;
    const status = statusOf(text, eol);
    const http10 = text.charCodeAt(7) === 0x30;
    const headers: string[] = [];
    let contentLength = -1;
    let chunked = false;
    let transferEncoding = false;
    let close = false;
    let keepAliveToken = false;
    let keepAliveHintMs = 0;
    for (let pos = eol + 2; pos < text.length; pos = eol + 2) {
      eol = text.indexOf('\r\n', pos);
      if (eol < 0) eol = text.length;
      const colon = text.indexOf(':', pos);
      // No colon, an empty name or a line folded onto the previous one (obs-fold, RFC 9112 §5.2).
      if (colon <= pos || colon > eol) throw new ResponseParseError('invalid header line');
      for (let i = pos; i < colon; i++) {
        const c = text.charCodeAt(i);
        if (c > 0x7f || TOKEN_CHAR[c] === 0) throw new ResponseParseError('invalid header name');
      }
      let vs = colon + 1;
      let ve = eol;
      while (vs < ve && isOws(text.charCodeAt(vs))) vs++;
      while (ve > vs && isOws(text.charCodeAt(ve - 1))) ve--;
      for (let i = vs; i < ve; i++) {
        const c = text.charCodeAt(i);
        // Field values: visible ASCII, obs-text, SP and HTAB; never CR, LF, NUL or other controls.
        if ((c < 0x20 && c !== 0x09) || c === 0x7f) throw new ResponseParseError(`invalid value in header ${text.slice(pos, colon)}`);
      }
      const name = text.slice(pos, colon);
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
            // Repeated or comma-listed values must agree (RFC 9110 §8.6); anything else is smuggling material.
            const n = lengthOf(value);
            if (contentLength >= 0 && n !== contentLength) throw new ResponseParseError('conflicting Content-Length values');
            contentLength = n;
          }
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') {
            transferEncoding = true;
            const codings = value.toLowerCase().split(',');
            chunked = codings[codings.length - 1]!.trim() === 'chunked';
          }
          break;
      }
      headers.push(name, value);
    }
    if (status < 200) {
      // 1xx is informational: the final answer follows on the same connection. 101 would switch
      // protocols, and the gateway never asks for that.
      if (status === 101) throw new ResponseParseError('unexpected 101 Switching Protocols');
      return;
    }
    this.#keepAlive = !close && (!http10 || keepAliveToken);
    const head: ResponseHead = { status, headers, keepAlive: this.#keepAlive, keepAliveHintMs };
    if (this.method === 'HEAD' || status === 204 || status === 304) {
      this.#state = State.Done;
    } else if (transferEncoding) {
      // Transfer-Encoding wins over Content-Length; a message with both is not trusted
      // for another request (RFC 9112 §6.3). Not chunked last: the body runs to the close.
      if (contentLength >= 0) this.#keepAlive = head.keepAlive = false;
      if (chunked) this.#state = State.ChunkSize;
      else this.#untilClose(head);
    } else if (contentLength >= 0) {
      this.#remaining = contentLength;
      this.#state = contentLength === 0 ? State.Done : State.Fixed;
    } else {
      this.#untilClose(head);
    }
    if (!this.events.onHead(head)) this.#paused = true;
  }

  #untilClose(head: ResponseHead): void {
    this.#keepAlive = head.keepAlive = false;
    this.#state = State.UntilClose;
  }
}
