import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo, type Socket } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { UpstreamClient, UpstreamError, type UpstreamClientOptions, type UpstreamHandler, type UpstreamRequest } from './client.js';

// The client against raw TCP servers on loopback that write crafted bytes and
// record what they received, so framing and socket reuse are seen on the wire.

const T = { timeout: 10_000 };
const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, fn: () => unknown, ms = 3_000): Promise<void> {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** One server-side connection: every byte it got, and whether it closed. */
interface Conn { socket: Socket; data: string; buf: string; closed: boolean }

/** Cuts one whole request (content-length or chunked framing) off the front of what a connection got. */
function takeRequest(c: Conn): boolean {
  const end = c.buf.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const head = c.buf.slice(0, end + 4);
  let len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
    const z = c.buf.indexOf('0\r\n\r\n', end + 4);
    if (z < 0) return false;
    len = z + 5 - head.length;
  }
  if (c.buf.length < head.length + len) return false;
  c.buf = c.buf.slice(head.length + len);
  return true;
}

/** A TCP server on 127.0.0.1:0 that calls `onRequest` for each whole request it reads. */
async function rawServer(onRequest: (c: Conn, n: number) => void = () => undefined) {
  const conns: Conn[] = [];
  let n = 0;
  const server = net.createServer((socket) => {
    const c: Conn = { socket, data: '', buf: '', closed: false };
    conns.push(c);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('close', () => (c.closed = true));
    socket.on('data', (d) => {
      c.data += d.toString('latin1');
      c.buf += d.toString('latin1');
      while (takeRequest(c)) onRequest(c, n++);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => {
    for (const c of conns) c.socket.destroy();
    return new Promise((r) => server.close(r));
  });
  return { port: (server.address() as AddressInfo).port, conns };
}

function newClient(o: Partial<UpstreamClientOptions> = {}): UpstreamClient {
  const client = new UpstreamClient({ connectTimeoutMs: 2_000, keepAliveMs: 5_000, bodyTimeoutMs: 0, ...o });
  cleanup.push(() => client.destroy());
  return client;
}

function req(port: number, o: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return { host: '127.0.0.1', port, method: 'GET', path: '/', headers: ['Host', 'h'], body: null, contentLength: null, ...o };
}

type Hooks = { onConnect?(abort: (err?: Error) => void): void; onHeaders?(log: Log): boolean; onData?(chunk: Buffer, log: Log): boolean };

/** A handler that logs every callback in order (a run of onData as one "data"). */
class Log implements UpstreamHandler {
  events: string[] = [];
  status = 0;
  headers: string[] = [];
  chunks: Buffer[] = [];
  dataCalls = 0;
  error: Error | null = null;
  abort: (err?: Error) => void = () => undefined;
  resume: () => void = () => undefined;
  #end!: () => void;
  readonly ended = new Promise<void>((r) => (this.#end = r));

  constructor(readonly hooks: Hooks = {}) {}

  get body(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }
  get bytes(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }
  #log(e: string): void {
    if (e !== 'data' || this.events.at(-1) !== 'data') this.events.push(e);
  }
  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    this.#log('connect');
    this.hooks.onConnect?.(abort);
  }
  onRequestSent(): void {
    this.#log('sent');
  }
  onHeaders(status: number, headers: string[], resume: () => void): boolean {
    Object.assign(this, { status, headers, resume });
    this.#log(`headers ${status}`);
    return this.hooks.onHeaders?.(this) ?? true;
  }
  onData(chunk: Buffer): boolean {
    this.chunks.push(Buffer.from(chunk));
    this.dataCalls++;
    this.#log('data');
    return this.hooks.onData?.(chunk, this) ?? true;
  }
  onComplete(): void {
    this.#log('complete');
    this.#end();
  }
  onError(err: Error): void {
    this.error = err;
    this.#log(`error ${(err as { code?: string }).code ?? err.name}`);
    this.#end();
  }
}

function send(client: UpstreamClient, r: UpstreamRequest, hooks?: Hooks): Log {
  const log = new Log(hooks);
  client.dispatch(r, log);
  return log;
}

/** Waits (bounded) for the request's end, then a moment more so a stray late callback shows in the log. */
async function done(log: Log, ms = 5_000): Promise<Log> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, no) => (timer = setTimeout(() => no(new Error(`no end after ${ms} ms: ${log.events.join(', ')}`)), ms)));
  await Promise.race([log.ended, timeout]).finally(() => clearTimeout(timer));
  await sleep(20);
  return log;
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
const FULL = ['connect', 'sent', 'headers 200', 'data', 'complete'];

async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** What the instance does with the first request; the second one always gets OK. */
const reuseCases: Array<[string, (c: Conn) => void, number]> = [
  ['keep-alive: one socket for both', (c) => c.socket.write(OK), 1],
  ['Connection: close in the answer', (c) => c.socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok'), 2],
  ['HTTP/1.0 answer', (c) => c.socket.write('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'), 2],
  ['the server closes the idle socket', (c) => c.socket.end(OK), 2],
  ['Keep-Alive: timeout=1 from the instance', (c) => c.socket.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok'), 2],
  ['Keep-Alive: timeout=5 from the instance', (c) => c.socket.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok'), 1],
  ['bytes after the response, same read', (c) => c.socket.write(OK + OK), 2],
  ['bytes after the response, later', (c) => (c.socket.write(OK), setTimeout(() => c.socket.write(OK), 30)), 2],
];

for (const [name, first, sockets] of reuseCases) {
  test(`socket reuse: ${name} → ${sockets} socket(s) for two requests`, T, async () => {
    const srv = await rawServer((c, n) => (n === 0 ? first(c) : c.socket.write(OK)));
    const client = newClient({ keepAliveMs: 10_000 });
    const a = await done(send(client, req(srv.port, { path: '/a' })));
    assert.deepEqual(a.events, FULL);
    assert.equal(a.body, 'ok');
    if (sockets === 2) {
      await until('the first socket to close', () => srv.conns[0]!.closed);
      assert.equal(client.connections, 0);
    }
    assert.deepEqual((await done(send(client, req(srv.port, { path: '/b' })))).events, FULL);
    assert.equal(srv.conns.length, sockets);
    assert.match(srv.conns.map((c) => c.data).join(''), /^GET \/a HTTP\/1\.1\r\n[^]*GET \/b HTTP\/1\.1\r\n/);
    assert.equal(client.connections, 1);
  });
}

test('the request as written: request line, headers in order, content-length: 0 for a POST without body', T, async () => {
  const srv = await rawServer((c) => c.socket.write(OK));
  const client = newClient();
  await done(send(client, req(srv.port, { path: '/p?q=1', headers: ['Host', 'h.example', 'X-B', '2', 'x-a', '1, 1'] })));
  await done(send(client, req(srv.port, { method: 'POST', path: '/f' })));
  assert.equal(srv.conns[0]!.data, 'GET /p?q=1 HTTP/1.1\r\nHost: h.example\r\nX-B: 2\r\nx-a: 1, 1\r\n\r\nPOST /f HTTP/1.1\r\nHost: h\r\ncontent-length: 0\r\n\r\n');
});

test('a body of known length goes out as it comes, framed by the Content-Length the caller forwards', T, async () => {
  const srv = await rawServer((c) => c.socket.write(OK));
  const client = newClient();
  const body = Readable.from([Buffer.from('hel'), Buffer.from('lo')]);
  const headers = ['Host', 'h', 'content-length', '5'];
  const log = await done(send(client, req(srv.port, { method: 'PUT', path: '/u', headers, body, contentLength: 5 })));
  // UpstreamRequest.headers: "Host and a body's Content-Length included" (exchange.ts forwards the client's).
  assert.equal(srv.conns[0]!.data, 'PUT /u HTTP/1.1\r\nHost: h\r\ncontent-length: 5\r\n\r\nhello');
  assert.deepEqual(log.events, FULL);
});

test('a body of unknown length goes out chunked; onRequestSent only after the last chunk', T, async () => {
  const srv = await rawServer((c) => c.socket.write(OK));
  const client = newClient();
  const body = new PassThrough();
  const log = send(client, req(srv.port, { method: 'POST', path: '/c', body }));
  body.write('part1');
  await until('the first chunk', () => srv.conns[0]?.data.endsWith('5\r\npart1\r\n'));
  await sleep(20);
  assert.deepEqual(log.events, ['connect'], 'not sent before the body ended');
  body.end('second');
  await done(log);
  assert.equal(srv.conns[0]!.data, 'POST /c HTTP/1.1\r\nHost: h\r\ntransfer-encoding: chunked\r\n\r\n5\r\npart1\r\n6\r\nsecond\r\n0\r\n\r\n');
  assert.deepEqual(log.events, FULL);
  assert.equal(client.connections, 1, 'kept alive');
});

test('connection refused: ECONNREFUSED, and the body was never read', T, async () => {
  const client = newClient();
  let reads = 0;
  const body = new Readable({ read: () => void reads++ });
  const log = await done(send(client, req(await deadPort(), { method: 'POST', body })));
  assert.deepEqual(log.events, ['connect', 'error ECONNREFUSED']);
  assert.equal(reads, 0);
  assert.equal(client.connections, 0);
});

/** How an attempt breaks once the request is out: what the handler hears, in order. */
const failures: Array<[string, (c: Conn) => void, string[]]> = [
  ['the server closes without answering', (c) => c.socket.end(), ['connect', 'sent', 'error ECONNRESET']],
  ['an answer that is not HTTP', (c) => c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n'), ['connect', 'sent', 'error UPSTREAM_BAD_RESPONSE']],
  ['the server closes inside the body', (c) => c.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort'), ['connect', 'sent', 'headers 200', 'data', 'error UPSTREAM_BAD_RESPONSE']],
  // Refused at once, with the connection left open by the server: the client closes it (and never reuses it).
  ['Transfer-Encoding with Content-Length', (c) => c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'), ['connect', 'sent', 'error UPSTREAM_BAD_RESPONSE']],
  ['a bare LF in a head that never ends', (c) => c.socket.write('HTTP/1.1 200 OK\r\nX-A: 1\nX-B'), ['connect', 'sent', 'error UPSTREAM_BAD_RESPONSE']],
  ['garbage that never ends', (c) => c.socket.write('garbage, no line end'), ['connect', 'sent', 'error UPSTREAM_BAD_RESPONSE']],
  ['a NUL in a head that never ends', (c) => c.socket.write('HTTP/1.1 200 OK\r\nX-A: \x00'), ['connect', 'sent', 'error UPSTREAM_BAD_RESPONSE']],
  ['the body stalls (bodyTimeoutMs 200)', (c) => c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), ['connect', 'sent', 'headers 200', 'data', 'error UPSTREAM_BODY_TIMEOUT']],
];

for (const [name, answer, events] of failures) {
  test(`failure: ${name}`, T, async () => {
    const srv = await rawServer(answer);
    const client = newClient({ bodyTimeoutMs: 200 });
    const t0 = Date.now();
    const log = await done(send(client, req(srv.port)));
    assert.deepEqual(log.events, events);
    if (events.at(-1) === 'error ECONNRESET') assert.ok(log.error instanceof UpstreamError && log.error.code === 'ECONNRESET');
    if (events.at(-1) === 'error UPSTREAM_BODY_TIMEOUT') assert.ok(Date.now() - t0 >= 190, `timed out after ${Date.now() - t0} ms`);
    await until('the server to see the close', () => srv.conns[0]!.closed);
    assert.equal(client.connections, 0);
  });
}

test('keepAliveMs: an idle socket past it is closed by the sweeper and not reused', T, async () => {
  const srv = await rawServer((c) => c.socket.write(OK));
  const client = newClient({ keepAliveMs: 200 });
  await done(send(client, req(srv.port)));
  const idleAt = Date.now();
  await until('the sweeper to close the idle socket', () => srv.conns[0]!.closed, 3_000);
  assert.ok(Date.now() - idleAt >= 150, 'not closed before keepAliveMs');
  assert.equal(client.connections, 0);
  assert.deepEqual((await done(send(client, req(srv.port)))).events, FULL);
  assert.equal(srv.conns.length, 2);
});

const BIG = 8 * 1024 * 1024;
const bigAnswer = (c: Conn) => {
  c.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG}\r\n\r\n`);
  c.socket.write(Buffer.alloc(BIG, 'x'));
};

/** A request whose handler returns false from `at`, waits `ms`, then resumes: the log, and what it held before resume(). */
async function holdThenResume(client: UpstreamClient, port: number, at: 'headers' | 'data', ms: number) {
  let holding = true;
  const log = send(client, req(port), at === 'headers' ? { onHeaders: () => false } : { onData: () => !holding });
  await until(`the ${at}`, () => (at === 'headers' ? log.status : log.dataCalls));
  await sleep(ms);
  const before = { events: [...log.events], calls: log.dataCalls, bytes: log.bytes };
  holding = false;
  log.resume();
  await done(log);
  return { log, before };
}

test('backpressure: onData returning false stops reading until resume()', T, async () => {
  const srv = await rawServer(bigAnswer);
  const { log, before } = await holdThenResume(newClient(), srv.port, 'data', 300);
  assert.equal(before.calls, 1, 'nothing more while held');
  assert.ok(before.bytes < BIG);
  assert.deepEqual(log.events, FULL);
  assert.equal(log.bytes, BIG);
});

test('backpressure: onData returning false holds back the rest of the same read too', T, async () => {
  // Twenty chunks in one write arrive in one read: after the first `false`, none until resume().
  const chunks = Array.from({ length: 20 }, (_, i) => `2\r\n${String(i).padStart(2, '0')}\r\n`).join('');
  const srv = await rawServer((c) => c.socket.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`));
  const { log, before } = await holdThenResume(newClient(), srv.port, 'data', 100);
  assert.equal(log.body.length, 40);
  assert.equal(before.calls, 1, 'onData calls before resume()');
});

test('backpressure: onHeaders returning false holds back the body until resume()', T, async () => {
  const srv = await rawServer((c) => c.socket.write(OK));
  const { log, before } = await holdThenResume(newClient(), srv.port, 'headers', 100);
  assert.deepEqual(log.events, FULL);
  assert.deepEqual(before.events, ['connect', 'sent', 'headers 200'], 'events before resume()');
});

test('bodyTimeoutMs: no timeout while the handler holds reading back', T, async () => {
  const srv = await rawServer(bigAnswer);
  const { log } = await holdThenResume(newClient({ bodyTimeoutMs: 200 }), srv.port, 'data', 500);
  assert.deepEqual(log.events, FULL, 'the instance was never silent: the handler was not reading');
  assert.equal(log.bytes, BIG);
});

test('abort from onConnect: onError once with that error, no socket, nothing sent', T, async () => {
  const srv = await rawServer();
  const client = newClient();
  const why = new Error('client gone');
  const log = await done(send(client, req(srv.port), { onConnect: (abort) => (abort(why), abort(new Error('again'))) }));
  assert.deepEqual(log.events, ['connect', 'error Error']);
  assert.equal(log.error, why);
  assert.equal(client.connections, 0);
  await sleep(50);
  assert.ok(srv.conns.every((c) => c.data === ''), 'no request reached the server');
});

test('abort mid-response: onError once with that error, the socket closes', T, async () => {
  const srv = await rawServer((c) => c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart'));
  const client = newClient();
  const why = new Error('enough');
  const log = await done(send(client, req(srv.port), { onData: (_c, l) => (l.abort(why), l.abort(), false) }));
  assert.deepEqual(log.events, ['connect', 'sent', 'headers 200', 'data', 'error Error']);
  assert.equal(log.error, why);
  await until('the server to see the close', () => srv.conns[0]!.closed);
  assert.equal(client.connections, 0);
});

test("a finished request's abort does not touch the next request on the reused socket", T, async () => {
  const srv = await rawServer((c, n) => setTimeout(() => c.socket.write(OK), n === 0 ? 0 : 50));
  const client = newClient();
  const first = await done(send(client, req(srv.port)));
  const second = send(client, req(srv.port));
  first.abort(new Error('stale abort'));
  await done(second);
  assert.deepEqual(second.events, FULL);
  assert.equal(srv.conns.length, 1);
});

test('1xx interim answers: the handler sees only the final 200', T, async () => {
  const srv = await rawServer((c) => {
    c.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
    setTimeout(() => c.socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n'), 20);
    setTimeout(() => c.socket.write('HTTP/1.1 200 OK\r\nX-Final: 1\r\nContent-Length: 2\r\n\r\nok'), 40);
  });
  const client = newClient();
  const log = await done(send(client, req(srv.port)));
  assert.deepEqual(log.events, FULL);
  assert.deepEqual(log.headers, ['X-Final', '1', 'content-length', '2']);
  assert.equal(log.body, 'ok');
});

test('an invalid address: onError (a connect failure to the retry logic), no socket opened', T, async () => {
  const client = newClient();
  for (const [host, port] of [['a b', 80], ['x\r\ny', 80], ['h/x', 80], ['127.0.0.1', 0], ['127.0.0.1', 70_000]] as const) {
    const log = await done(send(client, req(port, { host })), 1_000);
    assert.deepEqual(log.events, ['connect', 'error UPSTREAM_INVALID_ADDRESS'], JSON.stringify(host));
    assert.equal(client.connections, 0);
  }
});

test('close(): idle sockets close, a busy request finishes first, then dispatch is refused', T, async () => {
  const idle = await rawServer((c) => c.socket.write(OK));
  const busy = await rawServer((c) => setTimeout(() => c.socket.write(OK), 150));
  const client = newClient();
  await done(send(client, req(idle.port)));
  const log = send(client, req(busy.port));
  await until('the busy request to arrive', () => busy.conns[0]?.data);
  let closed = false;
  const closing = client.close().then(() => (closed = true));
  await until('the idle socket to close', () => idle.conns[0]!.closed);
  assert.equal(closed, false, 'not closed while a request is busy');
  await done(log);
  assert.deepEqual(log.events, FULL);
  await until('close() to resolve', () => closed);
  await closing;
  assert.equal(client.connections, 0);
  await until('the busy socket to close', () => busy.conns[0]!.closed);
  const late = await done(send(client, req(busy.port)));
  assert.deepEqual(late.events, ['connect', 'error UPSTREAM_CLIENT_CLOSED']);
  assert.equal(busy.conns.length, 1);
});

test('destroy(): busy sockets close at once and their requests fail', T, async () => {
  const srv = await rawServer();
  const client = newClient();
  const log = send(client, req(srv.port));
  await until('the request to arrive', () => srv.conns[0]?.data);
  await client.destroy();
  await done(log);
  assert.deepEqual(log.events, ['connect', 'sent', 'error ECONNRESET']);
  await until('the server to see the close', () => srv.conns[0]!.closed);
  assert.equal(client.connections, 0);
});

test('a response written byte by byte: same result, socket reused', T, async () => {
  const answer = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-A: b\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n';
  const srv = await rawServer((c) => {
    let i = 0;
    const next = () => {
      if (c.socket.destroyed || i >= answer.length) return;
      c.socket.write(answer[i++]!, 'latin1');
      setImmediate(next);
    };
    next();
  });
  const client = newClient();
  for (let n = 0; n < 2; n++) {
    const log = await done(send(client, req(srv.port)));
    assert.deepEqual(log.events, FULL);
    assert.deepEqual(log.headers, ['X-A', 'b']);
    assert.equal(log.body, 'hello world');
  }
  assert.equal(srv.conns.length, 1);
});
