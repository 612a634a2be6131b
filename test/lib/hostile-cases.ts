import type { HostileCase } from './differential.js';
import type { Script } from './hostile-upstream.js';

// The hostile answers of the differential suite: each what a buggy or
// compromised instance could send. `keep`: the instance leaves the connection
// open after its bytes (the gateway must close it or read on correctly);
// `close`: it closes after them.

const keep = (...pieces: string[]): Script => ({ pieces, then: 'keep' });
const close = (...pieces: string[]): Script => ({ pieces, then: 'close' });
const bytewise = (raw: string, then: Script['then'] = 'keep'): Script => ({ pieces: [raw], then, bytewise: true });

const FAKE = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nX-Injected: yes\r\n\r\nINJECTED BODY';
const ok = (headers: string, body = '') => `HTTP/1.1 200 OK\r\n${headers}\r\n${body}`;
const chunked = 'Transfer-Encoding: chunked\r\n';
/** A chunk that carries a whole fake response, as in the example. */
const fakeChunk = `${FAKE.length.toString(16)}\r\n${FAKE}\r\n`;

export const HOSTILE_CASES: HostileCase[] = [
  // Framing: Transfer-Encoding with Content-Length (the response splitting).
  { cls: 'framing', name: 'CL 5 + TE chunked, a chunk carrying a fake response', script: keep(ok('Content-Length: 5\r\n' + chunked, `5\r\nhello\r\n${fakeChunk}0\r\n\r\n`)) },
  { cls: 'framing', name: 'TE chunked + CL 5 (TE first)', script: keep(ok(chunked + 'Content-Length: 5\r\n', '5\r\nhello\r\n0\r\n\r\n')) },
  { cls: 'framing', name: 'CL larger than the chunked body, connection closed', script: close(ok('Content-Length: 500\r\n' + chunked, '5\r\nhello\r\n0\r\n\r\n')) },
  { cls: 'framing', name: 'CL 0 + TE chunked', script: keep(ok('Content-Length: 0\r\n' + chunked, `${fakeChunk}0\r\n\r\n`)) },
  { cls: 'framing', name: 'TE + CL on a 304', script: keep('HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n' + chunked + '\r\n') },
  { cls: 'framing', name: 'TE + CL on a 103 before a good 200', script: keep('HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n' + chunked + '\r\n' + ok('Content-Length: 2\r\n', 'ok')) },
  // Transfer-Encoding variants
  { cls: 'te', name: 'TE gzip, read to close', script: close(ok('Transfer-Encoding: gzip\r\n', 'abcdef')), stricter: 'not chunked' },
  { cls: 'te', name: 'TE gzip + CL', script: keep(ok('Transfer-Encoding: gzip\r\nContent-Length: 3\r\n', 'abc')) },
  { cls: 'te', name: 'TE empty, read to close', script: close(ok('Transfer-Encoding: \r\n', 'abc')), stricter: 'empty' },
  { cls: 'te', name: 'TE empty + CL 3, fake response after', script: keep(ok('Transfer-Encoding:\r\nContent-Length: 3\r\n', `abc${FAKE}`)), stricter: 'empty with CL' },
  { cls: 'te', name: 'TE gzip, chunked', script: keep(ok('Transfer-Encoding: gzip, chunked\r\n', '3\r\nabc\r\n0\r\n\r\n')), stricter: 'coding before chunked' },
  { cls: 'te', name: 'TE chunked, gzip, read to close', script: close(ok('Transfer-Encoding: chunked, gzip\r\n', '3\r\nabc\r\n0\r\n\r\n')), stricter: 'chunked not last' },
  { cls: 'te', name: 'TE chunked twice in one field', script: keep(ok('Transfer-Encoding: chunked, chunked\r\n', '3\r\nabc\r\n0\r\n\r\n')), stricter: 'chunked twice' },
  { cls: 'te', name: 'TE chunked in two fields', script: keep(ok(chunked + chunked, '3\r\nabc\r\n0\r\n\r\n')), stricter: 'chunked twice' },
  { cls: 'te', name: 'TE chunked then TE gzip fields, read to close', script: close(ok(chunked + 'Transfer-Encoding: gzip\r\n', '3\r\nabc\r\n0\r\n\r\n')), stricter: 'chunked not last' },
  { cls: 'te', name: 'TE "chunked," (a trailing comma)', script: close(ok('Transfer-Encoding: chunked,\r\n', '3\r\nabc\r\n0\r\n\r\n')), stricter: 'empty list element' },
  { cls: 'te', name: 'TE ",chunked" (a leading comma)', script: keep(ok('Transfer-Encoding: ,chunked\r\n', '3\r\nabc\r\n0\r\n\r\n')), stricter: 'empty list element' },
  { cls: 'te', name: 'TE identity', script: close(ok('Transfer-Encoding: identity\r\n', 'abc')), stricter: 'identity' },
  { cls: 'te', name: 'TE CHUNKED (upper case), with spaces', script: keep(ok('Transfer-Encoding:  CHUNKED \r\n', '3\r\nabc\r\n0\r\n\r\n')) },
  { cls: 'te', name: 'TE xchunked', script: close(ok('Transfer-Encoding: xchunked\r\n', 'abc')), stricter: 'unknown coding' },
  // Content-Length
  { cls: 'lengths', name: 'CL 3 twice (equal)', script: keep(ok('Content-Length: 3\r\nContent-Length: 3\r\n', 'abc')) },
  { cls: 'lengths', name: 'CL 3 then 40 (the longer one would swallow the next answer)', script: keep(ok('Content-Length: 3\r\nContent-Length: 40\r\n', `abc${FAKE}`)) },
  { cls: 'lengths', name: 'CL list "3, 3"', script: keep(ok('Content-Length: 3, 3\r\n', 'abc')) },
  { cls: 'lengths', name: 'CL list "3,40"', script: keep(ok('Content-Length: 3,40\r\n', `abc${FAKE}`)) },
  { cls: 'lengths', name: 'CL with a sign', script: keep(ok('Content-Length: +3\r\n', 'abc')) },
  { cls: 'lengths', name: 'CL hex', script: keep(ok('Content-Length: 0x3\r\n', 'abc')) },
  { cls: 'lengths', name: 'CL with a tab after', script: keep(ok('Content-Length: 3\t\r\n', 'abc')) },
  { cls: 'lengths', name: 'CL with a tab before and spaces after', script: keep(ok('Content-Length:\t3  \r\n', 'abc')) },
  { cls: 'lengths', name: 'CL empty', script: keep(ok('Content-Length:\r\n', 'abc')) },
  { cls: 'lengths', name: 'CL with leading zeros', script: keep(ok('Content-Length: 000003\r\n', 'abc')) },
  { cls: 'lengths', name: 'CL over 2^64', script: keep(ok('Content-Length: 99999999999999999999999\r\n', 'abc')) },
  { cls: 'lengths', name: 'CL smaller than the body: the rest is a fake response', script: keep(ok('Content-Length: 3\r\n', `abc${FAKE}`)) },
  { cls: 'lengths', name: 'CL larger than the body, connection closed', script: close(ok('Content-Length: 40\r\n', 'abc')) },
  // Heads
  { cls: 'head', name: 'bare LF after the status line, never ends', script: keep('HTTP/1.1 200 OK\nContent-Length: 3\n'), fast: true },
  { cls: 'head', name: 'bare LF after a header', script: keep(ok('Content-Length: 3\nX-A: 1\r\n', 'abc')), fast: true },
  { cls: 'head', name: 'bare CR in a value', script: keep(ok('X-A: a\rb\r\nContent-Length: 3\r\n', 'abc')), fast: true },
  { cls: 'head', name: 'bare CR ending the head', script: keep('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\rabc'), fast: true },
  { cls: 'head', name: 'a header line without a colon', script: keep(ok('X-No-Colon\r\nContent-Length: 3\r\n', 'abc')), fast: true },
  { cls: 'head', name: 'space before the colon', script: keep(ok('Content-Length : 40\r\nContent-Length: 3\r\n', 'abc')), fast: true },
  { cls: 'head', name: 'empty header name', script: keep(ok(': x\r\nContent-Length: 3\r\n', 'abc')), fast: true },
  { cls: 'head', name: 'invalid token character in a name', script: keep(ok('X(A): 1\r\nContent-Length: 3\r\n', 'abc')), fast: true },
  { cls: 'head', name: 'obs-fold', script: keep(ok('X-A: 1\r\n 2\r\nContent-Length: 3\r\n', 'abc')), fast: true },
  { cls: 'head', name: 'obs-fold hiding a Transfer-Encoding', script: keep(ok('X-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 3\r\n', 'abc')), fast: true },
  { cls: 'head', name: 'NUL in a value, never ends', script: keep('HTTP/1.1 200 OK\r\nX-A: a\x00'), fast: true },
  { cls: 'head', name: 'control character in a value', script: keep(ok('X-A: a\x01b\r\nContent-Length: 3\r\n', 'abc')), fast: true },
  { cls: 'head', name: 'DEL in a value', script: keep(ok('X-A: a\x7f\r\nContent-Length: 3\r\n', 'abc')), fast: true },
  { cls: 'head', name: 'obs-text in a value (passed on)', script: keep(ok('X-A: caf\xe9\r\nContent-Length: 3\r\n', 'abc')) },
  { cls: 'head', name: 'garbage that never ends', script: keep('this is not HTTP at all and it goes on'), fast: true },
  { cls: 'head', name: 'lower-case http', script: keep('http/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc'), fast: true },
  { cls: 'head', name: 'HTTP/1.2', script: keep('HTTP/1.2 200 OK\r\nContent-Length: 3\r\n\r\nabc'), fast: true },
  { cls: 'head', name: 'HTTP/2.0 status line', script: keep('HTTP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nabc'), stricter: 'version' },
  { cls: 'head', name: 'status of two digits', script: keep('HTTP/1.1 20 OK\r\nContent-Length: 3\r\n\r\nabc'), fast: true },
  { cls: 'head', name: 'status of four digits', script: keep('HTTP/1.1 2000 OK\r\nContent-Length: 3\r\n\r\nabc'), fast: true },
  { cls: 'head', name: 'status 099', script: keep('HTTP/1.1 099 OK\r\nContent-Length: 3\r\n\r\nabc'), stricter: 'status under 100' },
  { cls: 'head', name: 'NUL in the reason phrase', script: keep('HTTP/1.1 200 O\x00K\r\nContent-Length: 3\r\n\r\nabc'), stricter: 'control in reason' },
  { cls: 'head', name: 'CR CR after the status line', script: keep('HTTP/1.1 200 OK\r\rContent-Length: 3\r\n\r\nabc'), stricter: 'bare CR' },
  { cls: 'head', name: 'no reason phrase', script: keep('HTTP/1.1 200\r\nContent-Length: 3\r\n\r\nabc') },
  { cls: 'head', name: 'a head over 16 KiB', script: keep(ok(`X-Pad: ${'a'.repeat(17_000)}\r\nContent-Length: 3\r\n`, 'abc')), fast: true },
  { cls: 'head', name: 'a head of 12 KiB (passed on)', script: keep(ok(`X-Pad: ${'a'.repeat(12_000)}\r\nContent-Length: 3\r\n`, 'abc')) },
  // 1xx
  { cls: '1xx', name: '100 then 200', script: keep('HTTP/1.1 100 Continue\r\n\r\n' + ok('Content-Length: 3\r\n', 'abc')) },
  { cls: '1xx', name: '103 with a Content-Length, then 200', script: keep('HTTP/1.1 103 Early Hints\r\nContent-Length: 40\r\nLink: </a>\r\n\r\n' + ok('Content-Length: 3\r\n', 'abc')) },
  { cls: '1xx', name: '100 carrying a fake body', script: keep(`HTTP/1.1 100 Continue\r\nContent-Length: ${FAKE.length}\r\n\r\n${FAKE}`) },
  { cls: '1xx', name: '101 Switching Protocols unasked', script: keep('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n' + FAKE) },
  { cls: '1xx', name: '1xx then garbage', script: keep('HTTP/1.1 100 Continue\r\n\r\ngarbage\r\n\r\n'), fast: true },
  // No body whatever the head says
  { cls: 'no-body', name: 'HEAD with CL 40, no body', method: 'HEAD', script: keep(ok('Content-Length: 40\r\n')) },
  { cls: 'no-body', name: 'HEAD with CL 40 and a body anyway (a fake response)', method: 'HEAD', script: keep(ok(`Content-Length: ${FAKE.length}\r\n`, FAKE)) },
  { cls: 'no-body', name: 'HEAD with TE chunked', method: 'HEAD', script: keep(ok(chunked)) },
  { cls: 'no-body', name: '204 with CL and a body anyway', script: keep(`HTTP/1.1 204 No Content\r\nContent-Length: ${FAKE.length}\r\n\r\n${FAKE}`) },
  { cls: 'no-body', name: '204 with TE chunked', script: keep('HTTP/1.1 204 No Content\r\n' + chunked + '\r\n') },
  { cls: 'no-body', name: '304 with CL and a body anyway', script: keep(`HTTP/1.1 304 Not Modified\r\nContent-Length: ${FAKE.length}\r\n\r\n${FAKE}`) },
  { cls: 'no-body', name: '204 with CL twice', script: keep('HTTP/1.1 204 No Content\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n') },
  // Bytes after the response
  { cls: 'after', name: 'a fake response right after a good one', script: keep(ok('Content-Length: 3\r\n', `abc${FAKE}`)) },
  { cls: 'after', name: 'a fake response after the last chunk', script: keep(ok(chunked, `3\r\nabc\r\n0\r\n\r\n${FAKE}`)) },
  { cls: 'after', name: 'a fake response a moment after a good one', script: keep(ok('Content-Length: 3\r\n', 'abc'), FAKE) },
  { cls: 'after', name: 'garbage after a good response, then close', script: close(ok('Content-Length: 3\r\n', 'abc'), '\x00\x01garbage') },
  // Closes mid-body
  { cls: 'mid-body', name: 'close inside a fixed body', script: close(ok('Content-Length: 10\r\n', 'abc')) },
  { cls: 'mid-body', name: 'close inside a chunk', script: close(ok(chunked, '10\r\nabc')) },
  { cls: 'mid-body', name: 'close before the last chunk', script: close(ok(chunked, '3\r\nabc\r\n')) },
  { cls: 'mid-body', name: 'close inside the trailers', script: close(ok(chunked, '3\r\nabc\r\n0\r\nX-T: 1\r\n')) },
  { cls: 'mid-body', name: 'close inside the head', script: close('HTTP/1.1 200 OK\r\nContent-Len') },
  { cls: 'mid-body', name: 'close before any byte', script: close() },
  { cls: 'mid-body', name: 'read to close: the close ends it', script: close('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it') },
  { cls: 'mid-body', name: 'a fixed body that stalls (the instance keeps the connection)', script: keep(ok('Content-Length: 10\r\n', 'abc')) },
  // Chunked: sizes, extensions, trailers
  { cls: 'chunked', name: 'extensions, a quoted one included', script: keep(ok(chunked, '3;a=b;c="d \\" e"\r\nabc\r\n0;last\r\n\r\n')) },
  { cls: 'chunked', name: 'space after the size', script: keep(ok(chunked, '3 \r\nabc\r\n0\r\n\r\n')) },
  { cls: 'chunked', name: 'space before an extension', script: keep(ok(chunked, '3 ;a=b\r\nabc\r\n0\r\n\r\n')) },
  { cls: 'chunked', name: 'NUL in an extension', script: keep(ok(chunked, '3;a=\x00\r\nabc\r\n0\r\n\r\n')) },
  { cls: 'chunked', name: 'bare LF in an extension', script: keep(ok(chunked, '3;a\nb\r\nabc\r\n0\r\n\r\n')) },
  { cls: 'chunked', name: 'empty extension value', script: keep(ok(chunked, '3;a=\r\nabc\r\n0\r\n\r\n')), stricter: 'empty ext value' },
  { cls: 'chunked', name: 'a token then a quoted string as an extension value', script: keep(ok(chunked, '3;q=x"y z"\r\nabc\r\n0\r\n\r\n')), stricter: 'token then quoted' },
  { cls: 'chunked', name: 'size with 0x', script: keep(ok(chunked, '0x3\r\nabc\r\n0\r\n\r\n')) },
  { cls: 'chunked', name: 'negative size', script: keep(ok(chunked, '-3\r\nabc\r\n0\r\n\r\n')) },
  { cls: 'chunked', name: 'size over 2^64', script: keep(ok(chunked, 'fffffffffffffffff\r\nabc\r\n0\r\n\r\n')) },
  { cls: 'chunked', name: 'size of 2^56', script: keep(ok(chunked, '100000000000000\r\nabc\r\n0\r\n\r\n')), stricter: 'huge chunk' },
  { cls: 'chunked', name: 'chunk data longer than its size', script: keep(ok(chunked, '3\r\nabcdef\r\n0\r\n\r\n')) },
  { cls: 'chunked', name: 'bare LF after the data', script: keep(ok(chunked, '3\r\nabc\n0\r\n\r\n')) },
  { cls: 'chunked', name: 'trailers (dropped)', script: keep(ok(chunked, '3\r\nabc\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n')) },
  { cls: 'chunked', name: 'trailer with obs-fold', script: keep(ok(chunked, '3\r\nabc\r\n0\r\nX-T: 1\r\n 2\r\n\r\n')) },
  { cls: 'chunked', name: 'trailer without a colon', script: keep(ok(chunked, '3\r\nabc\r\n0\r\nX-T\r\n\r\n')) },
  { cls: 'chunked', name: 'trailer with NUL', script: keep(ok(chunked, '3\r\nabc\r\n0\r\nX-T: \x00\r\n\r\n')) },
  { cls: 'chunked', name: 'Content-Length as a trailer', script: keep(ok(chunked, '3\r\nabc\r\n0\r\nContent-Length: 40\r\n\r\n')) },
  { cls: 'chunked', name: 'Transfer-Encoding as a trailer', script: keep(ok(chunked, '3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n')), stricter: 'TE trailer' },
  // Connection and hop-by-hop headers
  { cls: 'connection', name: 'two Connection headers naming headers', script: keep(ok('Connection: keep-alive\r\nConnection: x-secret, x-other\r\nX-Secret: 1\r\nX-Other: 2\r\nContent-Length: 3\r\n', 'abc')), dropped: ['x-secret', 'x-other'] },
  { cls: 'connection', name: 'Connection: close with a body of known length', script: keep(ok('Connection: close\r\nContent-Length: 3\r\n', 'abc')) },
  { cls: 'connection', name: 'Connection naming Content-Length', script: keep(ok('Connection: content-length\r\nContent-Length: 3\r\n', 'abc')) },
  { cls: 'connection', name: 'three Connection fields, one with a list', script: keep(ok('Connection: x-a\r\nX-A: 1\r\nconnection:  X-B ,x-c\r\nX-B: 2\r\nX-C: 3\r\nCONNECTION: keep-alive\r\nContent-Length: 3\r\n', 'abc')), dropped: ['x-a', 'x-b', 'x-c'] },
  { cls: 'connection', name: 'HTTP/1.0 without keep-alive, read to close', script: close('HTTP/1.0 200 OK\r\n\r\nabc') },
  // Pipelined garbage: several answers to one request
  { cls: 'pipelined', name: 'two whole responses at once', script: keep(ok('Content-Length: 3\r\n', 'abc') + ok('Content-Length: 3\r\n', 'xyz')) },
  { cls: 'pipelined', name: 'a good response then a truncated one', script: keep(ok('Content-Length: 3\r\n', 'abc') + 'HTTP/1.1 200 OK\r\nContent-Le') },
  { cls: 'pipelined', name: 'a response with CL + TE then a fake one', script: keep(ok('Content-Length: 3\r\n' + chunked, '0\r\n\r\n') + FAKE) },
  // A byte per read: the same rules, whatever the reads
  { cls: 'slow', name: 'a good chunked response, a byte per read', script: bytewise('HTTP/1.1 100 Continue\r\n\r\n' + ok('X-A: 1\r\n' + chunked, '3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n')) },
  { cls: 'slow', name: 'CL + TE, a byte per read', script: bytewise(ok('Content-Length: 5\r\n' + chunked, `5\r\nhello\r\n${fakeChunk}0\r\n\r\n`)) },
  { cls: 'slow', name: 'bare LF in the head, a byte per read', script: bytewise('HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 3\r\n\r\nabc'), fast: true },
];
