import { CR, FIELD_VALUE, HTAB, LF, ResponseParseError, SP, TOKEN } from './syntax.js';

const enum S {
  Version,
  Minor,
  VersionSp,
  Code,
  AfterCode,
  Reason,
  StatusLf,
  LineStart,
  Name,
  ValueLead,
  Value,
  ValueLf,
  EndLf,
}

const HTTP1 = Buffer.from('HTTP/1.');

/**
 * Checks a response head (status line and field lines, RFC 9112 §4 and §5)
 * byte by byte as it arrives, resuming where the last read stopped, so a
 * malformed head fails at its first bad byte (as llhttp does) rather than when
 * the blank line or the size limit comes, and a head that arrives a byte per
 * read costs no more than one that arrives whole. It records where each
 * field's name and value are; the parser reads them once the head is whole.
 */
export class HeadScanner {
  #state = S.Version;
  #n = 0;
  #fieldStart = 0;
  #valueStart = 0;
  minor = 0;
  status = 0;
  /** Per field, offsets from the head's first byte: name start, name end, value start, value end (before the CR, OWS included). */
  readonly marks: number[] = [];

  reset(): void {
    this.#state = S.Version;
    this.#n = 0;
    this.status = 0;
    this.marks.length = 0;
  }

  /**
   * Scans buf[i, end), where buf[base] is the head's first byte (every byte
   * from there on must be in buf). Returns the index just past the blank line
   * that ends the head, or -1 once it needs more bytes; throws at a bad byte.
   */
  scan(buf: Buffer, i: number, end: number, base: number): number {
    const marks = this.marks;
    while (i < end) {
      switch (this.#state) {
        case S.Version:
          if (buf[i] !== HTTP1[this.#n]) {
            // llhttp skips empty lines before a status line; RFC 9112 §2.2 allows that to servers reading requests.
            if (this.#n === 0 && (buf[i] === CR || buf[i] === LF)) throw new ResponseParseError('empty line before the status line');
            throw new ResponseParseError(this.#n < 5 ? 'invalid status line (not HTTP)' : 'HTTP version other than 1.0 or 1.1');
          }
          i++;
          if (++this.#n === HTTP1.length) this.#state = S.Minor;
          break;
        case S.Minor: {
          const c = buf[i++]!;
          if (c !== 0x30 && c !== 0x31) throw new ResponseParseError('invalid status line (HTTP version other than 1.0 or 1.1)');
          this.minor = c - 0x30;
          this.#state = S.VersionSp;
          break;
        }
        case S.VersionSp:
          if (buf[i++] !== SP) throw new ResponseParseError('invalid status line');
          this.#state = S.Code;
          this.#n = 0;
          break;
        case S.Code: {
          const d = buf[i++]! - 0x30;
          if (d < 0 || d > 9) throw new ResponseParseError('invalid status code');
          if (this.#n === 0 && d === 0) throw new ResponseParseError('status code under 100');
          this.status = this.status * 10 + d;
          if (++this.#n === 3) this.#state = S.AfterCode;
          break;
        }
        case S.AfterCode: {
          const c = buf[i++];
          if (c === SP) this.#state = S.Reason;
          else if (c === CR) this.#state = S.StatusLf;
          else throw new ResponseParseError('invalid status code');
          break;
        }
        case S.Reason:
          // reason-phrase: HTAB, SP, VCHAR, obs-text (never forwarded: the client gets Node's).
          while (i < end && FIELD_VALUE[buf[i]!]) i++;
          if (i === end) return -1;
          if (buf[i] === LF) throw new ResponseParseError('bare LF in the status line');
          if (buf[i++] !== CR) throw new ResponseParseError('control character in the reason phrase');
          this.#state = S.StatusLf;
          break;
        case S.StatusLf:
          // llhttp reads "\r\r" here as a line end; a bare CR is one to RFC 9112 §2.2.
          if (buf[i++] !== LF) throw new ResponseParseError('bare CR after the status line');
          this.#state = S.LineStart;
          break;
        case S.ValueLf:
          if (buf[i++] !== LF) throw new ResponseParseError('CR not followed by LF in the response head');
          this.#state = S.LineStart;
          break;
        case S.LineStart: {
          const c = buf[i]!;
          if (c === CR) {
            i++;
            this.#state = S.EndLf;
          } else if (TOKEN[c]) {
            this.#fieldStart = i - base;
            this.#state = S.Name;
          } else if (c === SP || c === HTAB) {
            // obs-fold (RFC 9112 §5.2): a proxy answers 502 or unfolds; we refuse.
            throw new ResponseParseError('obsolete line folding in the response head');
          } else {
            throw new ResponseParseError('invalid header line');
          }
          break;
        }
        case S.Name:
          while (i < end && TOKEN[buf[i]!]) i++;
          if (i === end) return -1;
          // No whitespace between name and colon (RFC 9112 §5.1), and nothing else either.
          if (buf[i] !== 0x3a) throw new ResponseParseError('invalid header name');
          marks.push(this.#fieldStart, i - base);
          i++;
          this.#state = S.ValueLead;
          break;
        case S.ValueLead:
          while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
          if (i === end) return -1;
          this.#valueStart = i - base;
          this.#state = S.Value;
          break;
        case S.Value:
          while (i < end && FIELD_VALUE[buf[i]!]) i++;
          if (i === end) return -1;
          if (buf[i] !== CR) throw new ResponseParseError('invalid character in a header value');
          marks.push(this.#valueStart, i - base);
          i++;
          this.#state = S.ValueLf;
          break;
        case S.EndLf:
          if (buf[i++] !== LF) throw new ResponseParseError('CR not followed by LF in the response head');
          return i;
      }
    }
    return -1;
  }
}
