import { CR, FIELD_VALUE, HEX, LF, QDTEXT, QUOTED_PAIR, ResponseParseError, TOKEN } from './syntax.js';

/** Longest chunk-size line (extensions included) and longest trailer section, as Node's 16 KiB limits. */
const MAX_CHUNK_LINE_BYTES = 16 * 1024;
const MAX_TRAILER_BYTES = 16 * 1024;
/** Chunk sizes from 2^53 on are refused: no real body is that large, and a JS number stays exact below it. */
const MAX_SIZE_DIGITS = 13;

const enum S {
  Size,
  ExtNameStart,
  ExtName,
  ExtValueStart,
  ExtToken,
  ExtQuoted,
  ExtQuotedPair,
  ExtQuotedEnd,
  SizeLf,
  TrailerLineStart,
  TrailerName,
  TrailerValue,
  TrailerLf,
  TrailerEndLf,
}

const CONTENT_LENGTH = Buffer.from('content-length');
const TRANSFER_ENCODING = Buffer.from('transfer-encoding');

/**
 * The lines of a chunked body (RFC 9112 §7.1) other than its data, checked
 * byte by byte as they arrive and never buffered: chunk-size lines with their
 * extensions (read and dropped) and the trailer section (read, checked as a
 * head's fields are, and dropped).
 */
export class ChunkScanner {
  #state = S.Size;
  #digits = 0;
  #lineBytes = 0;
  /** The size of the chunk whose line was just read. */
  size = 0;
  // The trailer field name being read, compared on the way with the two framing fields.
  #nameLen = 0;
  #maybeCl = false;
  #maybeTe = false;

  /** Reads a chunk-size line from buf[i, end): the index past its CRLF (size is set), or -1 for more. */
  sizeLine(buf: Buffer, i: number, end: number): number {
    while (i < end) {
      const c = buf[i++]!;
      if (++this.#lineBytes > MAX_CHUNK_LINE_BYTES) throw new ResponseParseError(`chunk size line over ${MAX_CHUNK_LINE_BYTES} bytes`);
      switch (this.#state) {
        case S.Size: {
          const h = HEX[c]!;
          if (h >= 0) {
            // Leading zeros are fine; significant digits are counted.
            if (this.#digits > 0 || h > 0) this.#digits++;
            if (this.#digits > MAX_SIZE_DIGITS) throw new ResponseParseError('chunk size too large');
            this.size = (this.#lineBytes === 1 ? 0 : this.size) * 16 + h;
            break;
          }
          // At least one digit, then an extension or the end: no whitespace anywhere on the line,
          // as llhttp ("5 \r\n" is how some smuggling attempts start).
          if (this.#lineBytes === 1) throw new ResponseParseError('invalid chunk size');
          this.#extEnd(c, 'invalid chunk size');
          break;
        }
        case S.ExtNameStart:
          // ";;" is read by llhttp, "3;" is not: both are an empty extension to RFC 9112 §7.1.1.
          if (c === 0x3b) throw new ResponseParseError('empty chunk extension');
          if (!TOKEN[c]) throw new ResponseParseError('invalid chunk extension');
          this.#state = S.ExtName;
          break;
        case S.ExtName:
          if (TOKEN[c]) break;
          if (c === 0x3d) this.#state = S.ExtValueStart;
          else this.#extEnd(c, 'invalid chunk extension');
          break;
        case S.ExtValueStart:
          if (TOKEN[c]) this.#state = S.ExtToken;
          else if (c === 0x22) this.#state = S.ExtQuoted;
          else if (c === CR || c === 0x3b) throw new ResponseParseError('empty chunk extension value');
          else throw new ResponseParseError('invalid chunk extension value');
          break;
        case S.ExtToken:
          if (TOKEN[c]) break;
          // llhttp goes on with a quoted string after a token (x"y"); RFC 9112 §7.1.1 has one or the other.
          if (c === 0x22) throw new ResponseParseError('a quote inside a chunk extension token');
          this.#extEnd(c, 'invalid chunk extension value');
          break;
        case S.ExtQuoted:
          if (c === 0x22) this.#state = S.ExtQuotedEnd;
          else if (c === 0x5c) this.#state = S.ExtQuotedPair;
          else if (!QDTEXT[c]) throw new ResponseParseError('invalid chunk extension value');
          break;
        case S.ExtQuotedPair:
          if (!QUOTED_PAIR[c]) throw new ResponseParseError('invalid chunk extension value');
          this.#state = S.ExtQuoted;
          break;
        case S.ExtQuotedEnd:
          this.#extEnd(c, 'invalid chunk extension value');
          break;
        case S.SizeLf:
          if (c !== LF) throw new ResponseParseError('chunk size line not ended by CRLF');
          this.#state = this.size === 0 ? S.TrailerLineStart : S.Size;
          this.#digits = 0;
          this.#lineBytes = 0;
          return i;
        default:
          throw new Error('chunk scanner: size line read in the trailer state');
      }
    }
    return -1;
  }

  /** After a size or an extension: another extension, or the end of the line. */
  #extEnd(c: number, what: string): void {
    if (c === 0x3b) this.#state = S.ExtNameStart;
    else if (c === CR) this.#state = S.SizeLf;
    else throw new ResponseParseError(what);
  }

  /** Reads the trailer section after the last chunk from buf[i, end): the index past its blank line, or -1 for more. */
  trailers(buf: Buffer, i: number, end: number): number {
    while (i < end) {
      const c = buf[i++]!;
      if (++this.#lineBytes > MAX_TRAILER_BYTES) throw new ResponseParseError(`trailer section over ${MAX_TRAILER_BYTES} bytes`);
      switch (this.#state) {
        case S.TrailerLineStart:
          if (c === CR) this.#state = S.TrailerEndLf;
          else if (TOKEN[c]) {
            this.#state = S.TrailerName;
            this.#nameLen = 0;
            this.#maybeCl = this.#maybeTe = true;
            this.#nameByte(c);
          } else throw new ResponseParseError(c === 0x20 || c === 0x09 ? 'obsolete line folding in the trailer section' : 'invalid trailer line');
          break;
        case S.TrailerName:
          if (TOKEN[c]) this.#nameByte(c);
          else if (c === 0x3a) {
            // Framing fields can't be trailers (RFC 9110 §6.5.1); llhttp refuses a Content-Length there too.
            if (this.#maybeCl && this.#nameLen === CONTENT_LENGTH.length) throw new ResponseParseError('Content-Length in the trailer section');
            if (this.#maybeTe && this.#nameLen === TRANSFER_ENCODING.length) throw new ResponseParseError('Transfer-Encoding in the trailer section');
            this.#state = S.TrailerValue;
          } else throw new ResponseParseError('invalid trailer name');
          break;
        case S.TrailerValue:
          if (c === CR) this.#state = S.TrailerLf;
          else if (!FIELD_VALUE[c]) throw new ResponseParseError('invalid character in a trailer value');
          break;
        case S.TrailerLf:
          if (c !== LF) throw new ResponseParseError('CR not followed by LF in the trailer section');
          this.#state = S.TrailerLineStart;
          break;
        case S.TrailerEndLf:
          if (c !== LF) throw new ResponseParseError('CR not followed by LF in the trailer section');
          return i;
        default:
          throw new Error('chunk scanner: trailers read before the last chunk');
      }
    }
    return -1;
  }

  #nameByte(c: number): void {
    const lower = c | 0x20;
    const n = this.#nameLen++;
    if (this.#maybeCl) this.#maybeCl = n < CONTENT_LENGTH.length && CONTENT_LENGTH[n] === lower;
    if (this.#maybeTe) this.#maybeTe = n < TRANSFER_ENCODING.length && TRANSFER_ENCODING[n] === lower;
  }
}
