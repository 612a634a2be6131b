import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { MAX_HEAD_BYTES, ResponseParseError, ResponseParser, type ResponseHead } from './response-parser.js';

// Every case is fed whole, byte by byte and in seeded random pieces: an
// incremental parser breaks where a token straddles two socket reads.

interface Expected {
  status?: number;
  headers?: string[];
  body?: string;
  reusable?: boolean;
  hintMs?: number;
  /** Bytes came after the end of the response. */
  trailing?: boolean;
  /** The parse fails with a ResponseParseError whose message matches. */
  error?: RegExp;
}

interface Case {
  name: string;
  /** The bytes, one char per byte (latin1). */
  raw: string;
  method?: string;
  /** The instance closes the connection after the bytes: finish() is called. */
  eof?: boolean;
  want: Expected;
}

interface Outcome {
  heads: ResponseHead[];
  body: string;
  trailing: boolean;
  done: boolean;
  reusable: boolean;
  error: unknown;
}

function parse(pieces: Buffer[], method: string, eof: boolean): Outcome {
  const out: Outcome = { heads: [], body: '', trailing: false, done: false, reusable: false, error: null };
  const p = new ResponseParser(method, {
    onHead: (h) => (out.heads.push(h), true),
    // Copied at once: the chunk is a view of the socket's buffer.
    onBody: (c) => ((out.body += Buffer.from(c).toString('latin1')), true),
  });
  try {
    for (const piece of pieces) {
      p.execute(piece);
      // Like a socket reusing its memory: the parser must have copied what it kept.
      piece.fill(0xee);
    }
    if (eof) p.finish();
  } catch (err) {
    out.error = err;
  }
  out.done = p.done;
  out.reusable = p.reusable;
  out.trailing = p.trailing;
  return out;
}

/** mulberry32: reproducible "random" cuts, so a failure names its pieces. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Ways to cut `raw` into socket reads: [label, cut offsets]. */
function splittings(raw: string, seed: number): Array<[string, number[]]> {
  const n = raw.length;
  const ways: Array<[string, number[]]> = [['whole', []]];
  if (n > 1) ways.push(['byte by byte', Array.from({ length: n - 1 }, (_, i) => i + 1)]);
  const r = rng(seed);
  for (let k = 0; k < 2 && n > 2; k++) {
    const cuts = [...new Set([1 + Math.floor(r() * (n - 1)), 1 + Math.floor(r() * (n - 1))])].sort((a, b) => a - b);
    ways.push([`cut at ${cuts.join(',')}`, cuts]);
  }
  return ways;
}

function pieces(raw: string, cuts: number[]): Buffer[] {
  const bounds = [0, ...cuts, raw.length];
  return bounds.slice(1).map((end, i) => Buffer.from(raw.slice(bounds[i], end), 'latin1'));
}

const ok = (headers: string, body = '') => `HTTP/1.1 200 OK\r\n${headers}\r\n${body}`;
const chunkedHead = 'Transfer-Encoding: chunked\r\n';
const bigHead = (bytes: number) => {
  const start = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: ';
  return `${start}${'a'.repeat(bytes - start.length)}\r\n\r\n`;
};

const cases: Case[] = [
  // Content-Length
  { name: 'Content-Length: 0', raw: ok('Content-Length: 0\r\n'), want: { status: 200, headers: ['content-length', '0'], body: '', reusable: true } },
  {
    name: 'Content-Length: n',
    raw: ok('Content-Type: text/plain\r\nContent-Length: 11\r\n', 'hello world'),
    want: { status: 200, headers: ['Content-Type', 'text/plain', 'content-length', '11'], body: 'hello world', reusable: true },
  },
  { name: 'Content-Length with OWS', raw: ok('content-length: \t3 \r\n', 'abc'), want: { headers: ['content-length', '3'], body: 'abc', reusable: true } },
  // Duplicates and lists are refused even when equal, as llhttp: the client would get two or a list otherwise.
  { name: 'Content-Length repeated, equal', raw: ok('Content-Length: 3\r\nContent-Length: 3\r\n', 'abc'), want: { error: /more than one Content-Length/ } },
  { name: 'Content-Length repeated, other case', raw: ok('content-length: 3\r\nCONTENT-LENGTH: 3\r\n', 'abc'), want: { error: /more than one Content-Length/ } },
  { name: 'Content-Length list "1,1"', raw: ok('Content-Length: 1,1\r\n', 'x'), want: { error: /invalid Content-Length/ } },
  { name: 'Content-Length conflicting', raw: ok('Content-Length: 3\r\nContent-Length: 4\r\n', 'abcd'), want: { error: /more than one Content-Length/ } },
  { name: 'Content-Length list "1, 2"', raw: ok('Content-Length: 1, 2\r\n', 'xy'), want: { error: /invalid Content-Length/ } },
  { name: 'Content-Length with a tab after', raw: ok('Content-Length: 3\t\r\n', 'abc'), want: { error: /invalid Content-Length/ } },
  { name: 'Content-Length with a sign', raw: ok('Content-Length: +3\r\n', 'abc'), want: { error: /invalid Content-Length/ } },
  { name: 'Content-Length with leading zeros', raw: ok('Content-Length: 0003\r\n', 'abc'), want: { headers: ['content-length', '3'], body: 'abc', reusable: true } },
  { name: 'Content-Length of 2^53', raw: ok('Content-Length: 9007199254740992\r\n', 'abc'), want: { error: /Content-Length too large/ } },
  { name: 'Content-Length non-digit', raw: ok('Content-Length: 3a\r\n', 'abc'), want: { error: /invalid Content-Length/ } },
  { name: 'Content-Length negative', raw: ok('Content-Length: -1\r\n'), want: { error: /invalid Content-Length/ } },
  { name: 'Content-Length empty', raw: ok('Content-Length:\r\n'), want: { error: /invalid Content-Length/ } },
  // chunked
  {
    name: 'chunked, several chunks',
    raw: ok(chunkedHead, '5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n'),
    want: { status: 200, headers: [], body: 'hello world', reusable: true },
  },
  { name: 'chunked with extensions', raw: ok(chunkedHead, '5;name=value\r\nhello\r\n3;q="a;\\"b";x\r\nabc\r\n0;last\r\n\r\n'), want: { body: 'helloabc', reusable: true } },
  { name: 'chunked, uppercase hex', raw: ok(chunkedHead, `A\r\n0123456789\r\n1B\r\n${'z'.repeat(27)}\r\n0\r\n\r\n`), want: { body: `0123456789${'z'.repeat(27)}`, reusable: true } },
  {
    name: 'chunked with trailers (read, not reported)',
    raw: ok('Trailer: X-Checksum\r\n' + chunkedHead, '2\r\nok\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n'),
    want: { headers: ['Trailer', 'X-Checksum'], body: 'ok', reusable: true },
  },
  { name: 'chunked, empty body', raw: ok(chunkedHead, '0\r\n\r\n'), want: { body: '', reusable: true } },
  { name: 'chunked, size not hex', raw: ok(chunkedHead, 'zz\r\nhello\r\n0\r\n\r\n'), want: { error: /invalid chunk size/ } },
  { name: 'chunked, 0x prefix', raw: ok(chunkedHead, '0x5\r\nhello\r\n0\r\n\r\n'), want: { error: /invalid chunk size/ } },
  { name: 'chunked, empty size line', raw: ok(chunkedHead, '\r\nhello\r\n0\r\n\r\n'), want: { error: /invalid chunk size/ } },
  { name: 'chunked, data not followed by CRLF', raw: ok(chunkedHead, '5\r\nhelloXY0\r\n\r\n'), want: { error: /chunk data not followed by CRLF/ } },
  { name: 'chunk size then a space', raw: ok(chunkedHead, '3 \r\nabc\r\n0\r\n\r\n'), want: { error: /invalid chunk size/ } },
  { name: 'chunk size, space, extension', raw: ok(chunkedHead, '3 ;a=b\r\nabc\r\n0\r\n\r\n'), want: { error: /invalid chunk size/ } },
  { name: 'chunk size of 2^56', raw: ok(chunkedHead, '100000000000000\r\nabc\r\n0\r\n\r\n'), want: { error: /chunk size too large/ } },
  { name: 'chunk size with leading zeros', raw: ok(chunkedHead, '00000000000000000003\r\nabc\r\n0\r\n\r\n'), want: { body: 'abc', reusable: true } },
  { name: 'chunk extension: empty', raw: ok(chunkedHead, '3;\r\nabc\r\n0\r\n\r\n'), want: { error: /invalid chunk extension/ } },
  { name: 'chunk extension: ";;"', raw: ok(chunkedHead, '3;;a\r\nabc\r\n0\r\n\r\n'), want: { error: /empty chunk extension/ } },
  { name: 'chunk extension: "=" without a value', raw: ok(chunkedHead, '3;a=\r\nabc\r\n0\r\n\r\n'), want: { error: /empty chunk extension value/ } },
  { name: 'chunk extension: space in a value', raw: ok(chunkedHead, '3;a=b c\r\nabc\r\n0\r\n\r\n'), want: { error: /invalid chunk extension/ } },
  { name: 'chunk extension: NUL', raw: ok(chunkedHead, '3;a=\x00\r\nabc\r\n0\r\n\r\n'), want: { error: /invalid chunk extension value/ } },
  { name: 'chunk extension: control in a quoted value', raw: ok(chunkedHead, '3;a="\x01"\r\nabc\r\n0\r\n\r\n'), want: { error: /invalid chunk extension value/ } },
  { name: 'chunk extension: a token then a quoted string (llhttp reads it)', raw: ok(chunkedHead, '3;q=x"y z"\r\nabc\r\n0\r\n\r\n'), want: { error: /quote inside a chunk extension token/ } },
  { name: 'chunk extension: text after a quoted value', raw: ok(chunkedHead, '3;a="b"c\r\nabc\r\n0\r\n\r\n'), want: { error: /invalid chunk extension value/ } },
  { name: 'chunk extension: bare LF', raw: ok(chunkedHead, '3;a\nb\r\nabc\r\n0\r\n\r\n'), want: { error: /invalid chunk extension/ } },
  { name: 'chunk size line: bare LF', raw: ok(chunkedHead, '3\nabc\r\n0\r\n\r\n'), want: { error: /invalid chunk size/ } },
  { name: 'chunk data then bare LF', raw: ok(chunkedHead, '3\r\nabc\n0\r\n\r\n'), want: { error: /chunk data not followed by CRLF/ } },
  { name: 'trailer: obs-fold', raw: ok(chunkedHead, '3\r\nabc\r\n0\r\nX: a\r\n b\r\n\r\n'), want: { error: /obsolete line folding in the trailer/ } },
  { name: 'trailer: no colon', raw: ok(chunkedHead, '3\r\nabc\r\n0\r\nXa\r\n\r\n'), want: { error: /invalid trailer name/ } },
  { name: 'trailer: bare LF', raw: ok(chunkedHead, '3\r\nabc\r\n0\r\nX: a\n\r\n'), want: { error: /invalid character in a trailer value/ } },
  { name: 'trailer: NUL', raw: ok(chunkedHead, '3\r\nabc\r\n0\r\nX: a\x00\r\n\r\n'), want: { error: /invalid character in a trailer value/ } },
  { name: 'trailer: Content-Length', raw: ok(chunkedHead, '3\r\nabc\r\n0\r\ncontent-LENGTH: 5\r\n\r\n'), want: { error: /Content-Length in the trailer/ } },
  { name: 'trailer: Transfer-Encoding', raw: ok(chunkedHead, '3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n'), want: { error: /Transfer-Encoding in the trailer/ } },
  { name: 'trailer: a name that starts like Content-Length', raw: ok(chunkedHead, '3\r\nabc\r\n0\r\nContent-Lengths: 5\r\n\r\n'), want: { body: 'abc', reusable: true } },
  // Framing (RFC 9112 §6.3): what the client would get must describe the bytes it gets.
  { name: 'CL + TE', raw: ok('Content-Length: 100\r\n' + chunkedHead, '3\r\nabc\r\n0\r\n\r\n'), want: { error: /both Transfer-Encoding and Content-Length/ } },
  { name: 'TE + CL', raw: ok(chunkedHead + 'Content-Length: 5\r\n', '5\r\nhello\r\n0\r\n\r\n'), want: { error: /both Transfer-Encoding and Content-Length/ } },
  { name: 'TE empty + CL', raw: ok('Transfer-Encoding:\r\nContent-Length: 3\r\n', 'abc'), want: { error: /empty Transfer-Encoding with Content-Length/ } },
  { name: 'TE empty', raw: ok('Transfer-Encoding: \r\n', 'abc'), eof: true, want: { error: /Transfer-Encoding other than chunked/ } },
  { name: 'TE gzip', raw: ok('Transfer-Encoding: gzip\r\n', '\x1f\x8b rest'), eof: true, want: { error: /Transfer-Encoding other than chunked/ } },
  { name: 'TE gzip, chunked', raw: ok('Transfer-Encoding: gzip, chunked\r\n', '3\r\nabc\r\n0\r\n\r\n'), want: { error: /Transfer-Encoding other than chunked/ } },
  { name: 'TE chunked, gzip', raw: ok('Transfer-Encoding: chunked, gzip\r\n', '3\r\nabc'), eof: true, want: { error: /Transfer-Encoding other than chunked/ } },
  { name: 'TE chunked, chunked', raw: ok('Transfer-Encoding: chunked, chunked\r\n', '3\r\nabc\r\n0\r\n\r\n'), want: { error: /Transfer-Encoding other than chunked/ } },
  { name: 'TE chunked twice', raw: ok(chunkedHead + chunkedHead, '3\r\nabc\r\n0\r\n\r\n'), want: { error: /Transfer-Encoding other than chunked/ } },
  { name: 'TE identity', raw: ok('Transfer-Encoding: identity\r\n', 'abc'), eof: true, want: { error: /Transfer-Encoding other than chunked/ } },
  { name: 'TE "chunked," (llhttp: not chunked)', raw: ok('Transfer-Encoding: chunked,\r\n', '3\r\nabc\r\n0\r\n\r\n'), want: { error: /Transfer-Encoding other than chunked/ } },
  { name: 'TE ",chunked"', raw: ok('Transfer-Encoding: ,chunked\r\n', '3\r\nabc\r\n0\r\n\r\n'), want: { error: /Transfer-Encoding other than chunked/ } },
  { name: 'TE CHUNKED with spaces', raw: ok('Transfer-Encoding:  CHUNKED \r\n', '3\r\nabc\r\n0\r\n\r\n'), want: { headers: [], body: 'abc', reusable: true } },
  { name: 'TE + CL on a 103', raw: 'HTTP/1.1 103 Early Hints\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n' + ok('Content-Length: 2\r\n', 'ok'), want: { error: /both/ } },
  { name: 'TE + CL on a 304', raw: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', want: { error: /both/ } },
  { name: 'Connection headers: any close counts', raw: ok('Connection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n'), want: { reusable: false } },
  { name: 'no length: until close', raw: ok('Content-Type: text/plain\r\n', 'all of it'), eof: true, want: { body: 'all of it', reusable: false } },
  { name: 'no length, empty body', raw: ok(''), eof: true, want: { status: 200, headers: [], body: '', reusable: false } },
  // No body whatever the head says
  { name: 'HEAD with Content-Length', method: 'HEAD', raw: ok('Content-Length: 100\r\n'), want: { headers: ['content-length', '100'], body: '', reusable: true } },
  { name: 'HEAD with chunked', method: 'HEAD', raw: ok(chunkedHead), want: { headers: [], body: '', reusable: true } },
  { name: 'HEAD with TE gzip (no body to frame)', method: 'HEAD', raw: ok('Transfer-Encoding: gzip\r\n'), want: { headers: [], body: '', reusable: true } },
  // A 204 has no Content-Length to pass on (RFC 9110 §8.6): the instance's is checked and dropped.
  { name: '204 with Content-Length', raw: 'HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n', want: { status: 204, headers: [], body: '', reusable: true } },
  { name: '204 with chunked', raw: 'HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n', want: { status: 204, headers: [], body: '', reusable: true } },
  { name: '204', raw: 'HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n', want: { status: 204, headers: ['X-A', '1'], body: '', reusable: true } },
  { name: '304 with Content-Length', raw: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n', want: { status: 304, headers: ['content-length', '50'], body: '', reusable: true } },
  // 1xx: skipped, the final head follows on the same connection
  {
    name: '100 then 200',
    raw: 'HTTP/1.1 100 Continue\r\n\r\n' + ok('Content-Length: 2\r\n', 'ok'),
    want: { status: 200, headers: ['content-length', '2'], body: 'ok', reusable: true },
  },
  {
    name: '103 and 100 then 200',
    raw: 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n' + ok('Content-Length: 2\r\n', 'ok'),
    want: { status: 200, headers: ['content-length', '2'], body: 'ok', reusable: true },
  },
  { name: '100 with a Content-Length: no body', raw: 'HTTP/1.1 100 Continue\r\nContent-Length: 3\r\n\r\n' + ok('Content-Length: 2\r\n', 'ok'), want: { body: 'ok', reusable: true } },
  { name: '100 with Connection: close, then 200', raw: 'HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\n' + ok('Content-Length: 2\r\n', 'ok'), want: { error: /1xx response that closes/ } },
  { name: 'HTTP/1.0 100, then 200', raw: 'HTTP/1.0 100 Continue\r\n\r\n' + ok('Content-Length: 2\r\n', 'ok'), want: { error: /1xx response that closes/ } },
  { name: '101', raw: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', want: { error: /101/ } },
  // HTTP/1.0 and Connection
  { name: 'HTTP/1.0', raw: 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok', want: { body: 'ok', reusable: false } },
  { name: 'HTTP/1.0 keep-alive', raw: 'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok', want: { body: 'ok', reusable: true } },
  { name: 'HTTP/1.0 keep-alive, no length', raw: 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nok', eof: true, want: { body: 'ok', reusable: false } },
  { name: 'Connection: close', raw: ok('Connection: close\r\nContent-Length: 2\r\n', 'ok'), want: { body: 'ok', reusable: false } },
  { name: 'Connection: keep-alive, Close', raw: ok('Connection: keep-alive, Close\r\nContent-Length: 0\r\n'), want: { reusable: false } },
  { name: 'Keep-Alive: timeout=5', raw: ok('Keep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n'), want: { reusable: true, hintMs: 5_000 } },
  { name: 'Keep-Alive without timeout', raw: ok('Keep-Alive: max=100\r\nContent-Length: 0\r\n'), want: { reusable: true, hintMs: 0 } },
  // Status line
  { name: 'status line without reason', raw: 'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n', want: { status: 200, reusable: true } },
  { name: 'status line with a space and no reason', raw: 'HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n', want: { status: 200, reusable: true } },
  { name: 'status 600 (Node passes 100-999 on)', raw: 'HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n', want: { status: 600, reusable: true } },
  { name: 'status 099', raw: 'HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n', want: { error: /status code under 100/ } },
  { name: 'an empty line before the status line', raw: '\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', want: { error: /empty line before the status line/ } },
  { name: 'status of 4 digits', raw: 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n', want: { error: /invalid status code/ } },
  { name: 'HTTP/1.2', raw: 'HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n', want: { error: /HTTP version/ } },
  { name: 'HTTP/0.9 status line', raw: 'HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n', want: { error: /HTTP version other than/ } },
  { name: 'reason with a tab and obs-text', raw: 'HTTP/1.1 200 O\tK\xff\r\nContent-Length: 0\r\n\r\n', want: { status: 200, reusable: true } },
  { name: 'reason with NUL', raw: 'HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n', want: { error: /control character in the reason phrase/ } },
  { name: 'two spaces before the status', raw: 'HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n', want: { error: /invalid status code/ } },
  { name: 'HTTP/2 status line', raw: 'HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n', want: { error: /HTTP version other than 1.0 or 1.1/ } },
  { name: 'lower-case protocol', raw: 'http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', want: { error: /invalid status line/ } },
  { name: 'no space after status', raw: 'HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n', want: { error: /invalid status code/ } },
  { name: 'not HTTP', raw: 'SSH-2.0-OpenSSH_9.6\r\n\r\n', want: { error: /invalid status line/ } },
  // Header syntax
  { name: 'header without colon', raw: ok('X-No-Colon\r\nContent-Length: 0\r\n'), want: { error: /invalid header name/ } },
  { name: 'obs-fold on the first field line', raw: ok(' X-A: one\r\nContent-Length: 0\r\n'), want: { error: /obsolete line folding/ } },
  { name: 'a line of spaces before the blank line', raw: ok('Content-Length: 0\r\n \r\n'), want: { error: /obsolete line folding/ } },
  { name: 'NUL in a name', raw: ok('X\x00A: v\r\nContent-Length: 0\r\n'), want: { error: /invalid header name/ } },
  { name: 'obs-text in a name', raw: ok('X\xe9: v\r\nContent-Length: 0\r\n'), want: { error: /invalid header name/ } },
  { name: 'CR CR after the status line (llhttp reads it)', raw: 'HTTP/1.1 200 OK\r\rContent-Length: 0\r\n\r\n', want: { error: /bare CR after the status line/ } },
  { name: 'bare CR in a value', raw: ok('X-A: a\rb\r\nContent-Length: 0\r\n'), want: { error: /CR not followed by LF/ } },
  { name: 'CR without LF at the end of the head', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\rx', want: { error: /CR not followed by LF/ } },
  { name: 'empty header name', raw: ok(': v\r\nContent-Length: 0\r\n'), want: { error: /invalid header line/ } },
  { name: 'obs-fold', raw: ok('X-A: one\r\n two\r\nContent-Length: 0\r\n'), want: { error: /obsolete line folding/ } },
  { name: 'obs-fold with a colon', raw: ok('X-A: one\r\n\tx: two\r\nContent-Length: 0\r\n'), want: { error: /obsolete line folding/ } },
  { name: 'space before colon', raw: ok('X-A : v\r\nContent-Length: 0\r\n'), want: { error: /invalid header name/ } },
  { name: 'bad char in name', raw: ok('X(A): v\r\nContent-Length: 0\r\n'), want: { error: /invalid header name/ } },
  { name: 'tab inside a value', raw: ok('X-A: a\tb\r\nContent-Length: 0\r\n'), want: { headers: ['X-A', 'a\tb', 'content-length', '0'], reusable: true } },
  // A UTF-8 "à" ends in byte 0xA0: obs-text, passed on untouched.
  { name: 'obs-text value ending in 0xA0', raw: ok('X-A: voil\xc3\xa0\r\nContent-Length: 0\r\n'), want: { headers: ['X-A', 'voil\xc3\xa0', 'content-length', '0'], reusable: true } },
  { name: 'NUL in value', raw: ok('X-A: a\x00b\r\nContent-Length: 0\r\n'), want: { error: /invalid character in a header value/ } },
  { name: 'SOH in value', raw: ok('X-A: a\x01b\r\nContent-Length: 0\r\n'), want: { error: /invalid character in a header value/ } },
  { name: 'DEL in value', raw: ok('X-A: ab\x7f\r\nContent-Length: 0\r\n'), want: { error: /invalid character in a header value/ } },
  { name: 'bare LF in value', raw: ok('X-A: a\nX-B: b\r\nContent-Length: 0\r\n'), want: { error: /invalid character in a header value/ } },
  { name: 'VT at the end of a value', raw: ok('X-A: ab\x0b\r\nContent-Length: 0\r\n'), want: { error: /invalid character in a header value/ } },
  // Sizes
  { name: `head of ${MAX_HEAD_BYTES} bytes`, raw: bigHead(MAX_HEAD_BYTES), want: { status: 200, body: '', reusable: true } },
  { name: 'head over 16 KiB', raw: bigHead(MAX_HEAD_BYTES + 1), want: { error: /response head over 16384 bytes/ } },
  // The end of the response
  // Bytes after the end: the response stands, the connection is not reused.
  { name: 'data after the end', raw: ok('Content-Length: 2\r\n', 'okX'), want: { body: 'ok', trailing: true, reusable: false } },
  { name: 'data after a 204', raw: 'HTTP/1.1 204 No Content\r\n\r\nX', want: { status: 204, body: '', trailing: true, reusable: false } },
  { name: 'data after the last chunk', raw: ok(chunkedHead, '0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n'), want: { body: '', trailing: true, reusable: false } },
  { name: 'close inside a fixed body', raw: ok('Content-Length: 10\r\n', 'short'), eof: true, want: { error: /closed before the response ended/ } },
  { name: 'close inside a chunk', raw: ok(chunkedHead, '5\r\nhel'), eof: true, want: { error: /closed before the response ended/ } },
  { name: 'close before the last chunk', raw: ok(chunkedHead, '5\r\nhello\r\n'), eof: true, want: { error: /closed before the response ended/ } },
  { name: 'close inside the head', raw: 'HTTP/1.1 200 OK\r\nContent-Le', eof: true, want: { error: /closed before the response ended/ } },
  { name: 'bare LF line ends: refused at the first', raw: 'HTTP/1.1 200 OK\nContent-Length: 0\n\n', want: { error: /status line/ } },
  { name: 'bare LF after a header', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n', want: { error: /invalid character in a header value/ } },
];

function check(got: Outcome, want: Expected): void {
  if (want.error) {
    assert.ok(got.error instanceof ResponseParseError, `want a ResponseParseError, got ${String(got.error)}`);
    assert.equal(got.error.code, 'UPSTREAM_BAD_RESPONSE');
    assert.match(got.error.message, want.error);
    return;
  }
  assert.equal(got.error, null, `unexpected error: ${String(got.error)}`);
  assert.equal(got.heads.length, 1, 'one final head');
  assert.equal(got.done, true);
  assert.equal(got.trailing, want.trailing ?? false, 'trailing');
  const head = got.heads[0]!;
  if (want.status !== undefined) assert.equal(head.status, want.status);
  if (want.headers) assert.deepEqual(head.headers, want.headers);
  if (want.body !== undefined) assert.equal(got.body, want.body);
  if (want.reusable !== undefined) {
    assert.equal(got.reusable, want.reusable, 'reusable');
    if (!want.trailing) assert.equal(head.keepAlive, want.reusable, 'head.keepAlive');
  }
  if (want.hintMs !== undefined) assert.equal(head.keepAliveHintMs, want.hintMs);
}

describe('ResponseParser', () => {
  cases.forEach((c, i) => {
    test(c.name, async (t) => {
      for (const [label, cuts] of splittings(c.raw, i + 1)) {
        await t.test(label, () => check(parse(pieces(c.raw, cuts), c.method ?? 'GET', c.eof ?? false), c.want));
      }
    });
  });

  test('a response across reads: headRead, done and reusable as it goes', () => {
    const events: string[] = [];
    const p = new ResponseParser('GET', {
      onHead: (h) => (events.push(`head ${h.status}`), true),
      onBody: (b) => (events.push(`body ${b.toString()}`), true),
    });
    p.execute(Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Le'));
    assert.deepEqual([p.headRead, p.done, p.reusable], [false, false, false]);
    p.execute(Buffer.from('ngth: 4\r\n\r\nab'));
    assert.deepEqual([p.headRead, p.done, p.reusable], [true, false, false]);
    p.execute(Buffer.from('cd'));
    assert.deepEqual([p.headRead, p.done, p.reusable], [true, true, true]);
    p.finish(); // the close after a complete response is no error
    assert.deepEqual(events, ['head 200', 'body ab', 'body cd']);
  });

  test('onBody says `last` on the piece that ends a body of known length, never for chunked or read-to-close', () => {
    const seen = (raw: string[], eof = false) => {
      const lasts: Array<[string, boolean]> = [];
      const p = new ResponseParser('GET', { onHead: () => true, onBody: (b, last) => (lasts.push([b.toString(), last]), true) });
      for (const piece of raw) p.execute(Buffer.from(piece));
      if (eof) p.finish();
      return lasts;
    };
    assert.deepEqual(seen(['HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd']), [['abcd', true]]);
    assert.deepEqual(seen(['HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab', 'cd']), [['ab', false], ['cd', true]]);
    assert.deepEqual(seen(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n']), [['ab', false]]);
    assert.deepEqual(seen(['HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nab'], true), [['ab', false]]);
  });

  test('false from an event stops the parser until resume(), keeping the rest of the read', () => {
    const events: string[] = [];
    let hold = true;
    const p = new ResponseParser('GET', {
      onHead: (h) => (events.push(`head ${h.status}`), !hold),
      onBody: (b) => (events.push(`body ${b.toString()}`), !hold),
    });
    const read = Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n`);
    p.execute(read);
    read.fill(0xee); // the kept bytes must be a copy
    assert.deepEqual([events, p.paused, p.done], [['head 200'], true, false]);
    p.resume();
    p.execute(Buffer.alloc(0));
    assert.deepEqual([events, p.paused, p.done], [['head 200', 'body ab'], true, false]);
    hold = false;
    p.resume();
    p.execute(Buffer.alloc(0));
    assert.deepEqual([events, p.paused, p.done, p.reusable], [['head 200', 'body ab', 'body cd'], false, true, true]);
  });

  test('finish() with nothing read is an error', () => {
    const p = new ResponseParser('GET', { onHead: () => true, onBody: () => true });
    assert.throws(() => p.finish(), (e: unknown) => e instanceof ResponseParseError && /closed before/.test(e.message));
  });
});

// llhttp, Node's parser, as the yardstick for work per byte (the parser node:http uses, from node's `_http_common`).
const { HTTPParser } = createRequire(import.meta.url)('_http_common') as {
  HTTPParser: { new (): { initialize(t: number, r: object): void; execute(b: Buffer): unknown; [k: number]: unknown }; RESPONSE: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number; kOnHeaders: number; kOnExecute: number };
};

describe('work on input that arrives a byte per read', () => {
  // A head, a chunk-size line with extensions and a trailer section of several KiB each: the old
  // parser joined the pending bytes to every new read (quadratic); now each byte is looked at once.
  const raw = Buffer.from(
    `HTTP/1.1 200 OK\r\nX-Pad: ${'a'.repeat(12_000)}\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `5;${'e=v;'.repeat(900)}z\r\nhello\r\n0\r\nX-T: ${'b'.repeat(3_000)}\r\n\r\n`,
    'latin1',
  );
  const ours = () => {
    let done = false;
    const p = new ResponseParser('GET', { onHead: () => true, onBody: () => true });
    for (let i = 0; i < raw.length; i++) p.execute(raw.subarray(i, i + 1));
    done = p.done;
    return done;
  };
  const llhttp = () => {
    let done = false;
    const p = new HTTPParser();
    p.initialize(HTTPParser.RESPONSE, {});
    p[HTTPParser.kOnHeaders] = () => undefined;
    p[HTTPParser.kOnHeadersComplete] = () => 0;
    p[HTTPParser.kOnBody] = () => undefined;
    p[HTTPParser.kOnExecute] = () => undefined;
    p[HTTPParser.kOnMessageComplete] = () => void (done = true);
    for (let i = 0; i < raw.length; i++) p.execute(raw.subarray(i, i + 1));
    return done;
  };
  const cpu = (fn: () => boolean) => {
    const t0 = process.cpuUsage();
    assert.equal(fn(), true, 'the whole response was read');
    const t = process.cpuUsage(t0);
    return t.user + t.system;
  };

  test(`${raw.length} bytes, one per read: at most 3x llhttp's CPU (side by side, best of 7)`, () => {
    let a = Infinity;
    let b = Infinity;
    for (let round = 0; round < 7; round++) {
      a = Math.min(a, cpu(ours));
      b = Math.min(b, cpu(llhttp));
    }
    console.log(`byte per read, ${raw.length} bytes: this parser ${(a / 1000).toFixed(1)} ms CPU, llhttp ${(b / 1000).toFixed(1)} ms (${(a / b).toFixed(2)}x)`);
    assert.ok(a <= 3 * b, `${(a / b).toFixed(1)}x llhttp's CPU`);
  });
});
