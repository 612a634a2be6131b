import { ResponseParseError } from './syntax.js';

/**
 * How a response's body is delimited (RFC 9112 §6.3), decided from its
 * framing fields, and refused when they can't be trusted. The gateway passes
 * a response on only when the framing it sends the client describes exactly
 * the bytes it sends: it writes that framing itself from this decision, so
 * every case the decision can't make with certainty is an error (a 502),
 * never a guess.
 */
export type Body =
  /** No body: 1xx, 204, 304, or the answer to a HEAD. */
  | 'none'
  /** Content-Length bytes. */
  | 'length'
  /** Transfer-Encoding: chunked. */
  | 'chunked'
  /** Neither: the body runs until the instance closes the connection. */
  | 'close';

export interface Framing {
  body: Body;
  /** The Content-Length the instance sent (checked), or -1. */
  length: number;
}

/**
 * One Content-Length value as llhttp reads it: digits with spaces after (the
 * head scanner already skipped leading whitespace); a list ("5, 5"), a sign, a
 * tab after or an empty value are errors. Lengths from 2^53 on are refused (no
 * body is that large, and the count stays an exact number).
 */
function contentLength(raw: string): number {
  let n = 0;
  let i = 0;
  for (; i < raw.length; i++) {
    const d = raw.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) break;
    n = n * 10 + d;
  }
  if (i === 0) throw new ResponseParseError('invalid Content-Length');
  for (let j = i; j < raw.length; j++) if (raw.charCodeAt(j) !== 0x20) throw new ResponseParseError('invalid Content-Length');
  if (n > Number.MAX_SAFE_INTEGER) throw new ResponseParseError('Content-Length too large');
  return n;
}

/**
 * Whether Transfer-Encoding values (every field, in order) say exactly `chunked`, once. An
 * empty list element ("chunked,", ",chunked") makes it false: RFC 9110 §5.6.1 would skip it,
 * llhttp does not (it reads "chunked," as not chunked), and a field two parsers read apart
 * is what smuggling is made of.
 */
function onlyChunked(values: readonly string[]): boolean {
  if (values.length !== 1) return false;
  return values[0]!.trim().toLowerCase() === 'chunked';
}

/**
 * The framing of a response head.
 * - More than one Content-Length (even equal ones, or a list) is an error, as llhttp.
 * - Transfer-Encoding with Content-Length is an error on any response, as llhttp
 *   (RFC 9112 §6.3 allows a proxy to drop the Content-Length and go on; refusing
 *   is what RFC 9112 §6.1 asks of a message that could be a smuggling attempt).
 * - A body framed by Transfer-Encoding must be exactly `chunked`: an empty value,
 *   another coding, or `chunked` twice or not last are errors. Stricter than llhttp,
 *   which reads such a body until the close: the gateway would have to forward a
 *   transfer coding it doesn't decode, or strip it and change the body.
 * - 101 is an error: the gateway never asks to switch protocols.
 */
export function framingOf(status: number, method: string, contentLengths: readonly string[], transferEncodings: readonly string[]): Framing {
  if (contentLengths.length > 1) throw new ResponseParseError('more than one Content-Length');
  const length = contentLengths.length === 1 ? contentLength(contentLengths[0]!) : -1;
  const te = transferEncodings.length > 0;
  if (te && length >= 0) {
    // llhttp ignores an empty Transfer-Encoding (and frames by the Content-Length); RFC 9112 §6.1 has no empty one.
    if (transferEncodings.every((v) => v.trim() === '')) throw new ResponseParseError('empty Transfer-Encoding with Content-Length');
    throw new ResponseParseError('both Transfer-Encoding and Content-Length');
  }
  if (status === 101) throw new ResponseParseError('unexpected 101 Switching Protocols');
  if (status < 200 || status === 204 || status === 304 || method === 'HEAD') return { body: 'none', length };
  if (te) {
    if (!onlyChunked(transferEncodings)) throw new ResponseParseError('Transfer-Encoding other than chunked');
    return { body: 'chunked', length: -1 };
  }
  return length >= 0 ? { body: 'length', length } : { body: 'close', length: -1 };
}
