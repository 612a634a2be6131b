import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { ServerResponse } from 'node:http';
import { assertErrorBody, deadPort, request, sleep, startHarness, startUpstream, until, type HarnessOptions } from '../testing/harness.js';

// The proxy in-process against real upstream servers on loopback: every
// decision it makes per attempt, with the sockets it leaves behind.

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

async function harness(opts: HarnessOptions = {}) {
  const h = await startHarness(opts);
  cleanup.push(() => h.close());
  return h;
}

async function upstream(handler: Parameters<typeof startUpstream>[0]) {
  const u = await startUpstream(handler);
  cleanup.push(() => u.close());
  return u;
}

const ok = (body = 'ok') => (_req: http.IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(body);
};
const hang = () => () => undefined;
/** Reads the whole body, then answers with its size. */
const counting = () => (req: http.IncomingMessage, res: ServerResponse) => {
  let n = 0;
  req.on('data', (c: Buffer) => (n += c.length));
  req.on('end', () => res.end(JSON.stringify({ bytes: n })));
};

/** Sends a request whose body the test writes by hand. */
function manual(url: string, path: string, headers: Record<string, string | number>, method = 'POST') {
  const u = new URL(url);
  const req = http.request({ host: u.hostname, port: u.port, path, method, headers: { connection: 'close', ...headers } });
  const response = new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  response.catch(() => undefined);
  return { req, response };
}

describe('proxy: answers', () => {
  test('X-Upstream-Instance names the instance; X-Request-Id is the gateway\'s', async () => {
    const up = await upstream(ok());
    const h = await harness();
    h.setService('svc', [up.instance('web-1')]);
    const res = await request(h.url, '/svc/', { headers: { 'x-request-id': 'rid-1' } });
    assert.equal(res.status, 200);
    assert.equal(res.text, 'ok');
    assert.equal(res.headers['x-upstream-instance'], 'web-1');
    assert.equal(res.headers['x-request-id'], 'rid-1');
  });

  test('bodies arrive byte for byte: every byte value, UTF-8, at and around the size sent as one string with the head', async () => {
    const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) % 256));
    const bodies = [Buffer.from('é→✓ {"x":"ü"}'), pattern(1), pattern(300), pattern(16 * 1024), pattern(16 * 1024 + 1), pattern(200_000)];
    const up = await upstream((req, res) => {
      const body = bodies[Number(req.url!.split('/').pop())]!;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      res.end(body);
    });
    const h = await harness();
    h.setService('svc', [up.instance('web-1')]);
    for (let i = 0; i < bodies.length; i++) {
      const got = await new Promise<{ length: string | undefined; body: Buffer }>((resolve, reject) => {
        http
          .get(`${h.url}/svc/${i}`, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ length: res.headers['content-length'], body: Buffer.concat(chunks) }));
          })
          .on('error', reject);
      });
      assert.equal(got.length, String(bodies[i]!.length), `body ${i}: Content-Length`);
      assert.ok(got.body.equals(bodies[i]!), `body ${i} (${bodies[i]!.length} bytes) changed on the way`);
    }
  });

  test('an instance id no header may carry (any UTF-8 from Consul) is percent-encoded, and the answer still arrives', async () => {
    const up = await upstream(ok());
    const h = await harness();
    h.setService('svc', [up.instance('caf\u00e9-\u{1F680}\r\nx: y')]);
    const res = await request(h.url, '/svc/');
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-upstream-instance'], 'caf%C3%A9-%F0%9F%9A%80%0D%0Ax%3A%20y');
    assert.equal(res.headers['x'], undefined);
  });

  test('a failure before the first byte still gets a JSON 502, and the upstream socket is released at once', async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial'); // and never ends: only an abort frees this socket
    });
    let failed = false;
    const h = await harness({
      upstream: { bodyTimeoutMs: 60_000 },
      wrapResponse: (res) => {
        const real = res.writeHead.bind(res);
        res.writeHead = ((...args: Parameters<typeof real>) => {
          if (!failed) {
            failed = true;
            throw new TypeError('Invalid character in header content');
          }
          return real(...args);
        }) as typeof res.writeHead;
      },
    });
    h.setService('svc', [up.instance()]);
    const t0 = performance.now();
    const res = await request(h.url, '/svc/');
    assertErrorBody(res, 502, 'upstream_unreachable', 'svc');
    await until('the upstream socket to close', () => up.sockets.size === 0, 1_000);
    assert.ok(performance.now() - t0 < 1_000);
    assert.equal(h.proxy.inflight(), 0);
  });

  test('an upstream 5xx passes through untouched and never counts against the instance', async () => {
    const up = await upstream((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":"app says no"}');
    });
    const other = await upstream(ok());
    const h = await harness({ outliers: { consecutiveFailures: 1, maxEjectPercent: 100 } });
    h.setService('svc', [up.instance('a'), other.instance('b')]);
    for (let i = 0; i < 10; i++) await request(h.url, '/svc/');
    assert.equal(h.outliers.isEjected(up.instance('a').key), false);
    assert.equal(up.seen.length, 5);
  });
});

describe('proxy: the upstream connection', () => {
  /** A raw TCP upstream that answers every request with `answer` (bytes as written) and counts connections. */
  async function rawUpstream(answer: string) {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('data', () => s.write(answer, 'latin1'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    cleanup.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    });
    return { sockets, instance: { id: 'raw', service: 'svc', address: '127.0.0.1', port, node: 'n1', tags: [], key: 'n1/raw' } };
  }

  test('a malformed response (two different Content-Lengths): JSON 502, and the socket is not kept', async () => {
    const up = await rawUpstream('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!');
    const h = await harness({ outliers: { consecutiveFailures: 1000 } });
    h.setService('svc', [up.instance]);
    const res = await request(h.url, '/svc/');
    assertErrorBody(res, 502, 'upstream_unreachable', 'svc');
    await until('the upstream socket to close', () => up.sockets.size === 0, 1_000);
    assert.equal(h.upstream.connections, 0);
  });

  test('a kept-alive socket is reused; one the instance closed while idle is not, and no request fails for it', async () => {
    let closeAfter = false;
    const up = await upstream((req, res) => {
      res.end('ok');
      // The instance drops the connection a little after answering, as a short keep-alive timeout does.
      if (closeAfter) setTimeout(() => req.socket.destroy(), 20);
    });
    const h = await harness();
    h.setService('svc', [up.instance()]);
    for (let i = 0; i < 3; i++) assert.equal((await request(h.url, '/svc/')).status, 200);
    assert.equal(up.sockets.size, 1, 'three requests, one upstream connection');
    closeAfter = true;
    for (let i = 0; i < 3; i++) {
      assert.equal((await request(h.url, '/svc/')).status, 200);
      await sleep(80);
    }
    assert.ok(h.done.every((d) => d.attempts === 1), 'no request needed a retry');
  });

  test('a large chunked answer arrives whole, and its socket is reused after', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const up = await upstream((_req, res) => {
      let n = 0;
      const more = () => {
        while (n < 32) {
          n++;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    const h = await harness();
    h.setService('svc', [up.instance()]);
    for (let i = 0; i < 2; i++) {
      const res = await request(h.url, '/svc/big');
      assert.equal(res.status, 200);
      assert.equal(res.headers['transfer-encoding'], 'chunked');
      assert.equal(res.text.length, 32 * chunk.length);
    }
    assert.equal(up.sockets.size, 1);
  });
});

describe('proxy: retries', () => {
  test('a refused connection is retried on another instance, POST body intact', async () => {
    const up = await upstream(counting());
    const h = await harness({ outliers: { consecutiveFailures: 1000 } });
    h.setService('svc', [{ ...up.instance('dead'), port: await deadPort() }, up.instance('live')]);
    for (let i = 0; i < 4; i++) {
      const body = `payload-${i}`;
      const res = await request(h.url, '/svc/x', { method: 'POST', body, headers: { 'content-length': body.length } });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json(), { bytes: body.length });
    }
    assert.ok(h.done.some((d) => d.attempts === 2), 'some requests took a second attempt');
  });

  test('refused connections go on to every untried instance, past UPSTREAM_RETRIES: 4 dead of 5, no request fails', async () => {
    const up = await upstream(ok());
    const h = await harness({ proxy: { retries: 2 }, outliers: { consecutiveFailures: 1000 } });
    const dead = await Promise.all([1, 2, 3, 4].map(async (i) => ({ ...up.instance(`dead${i}`), port: await deadPort() })));
    h.setService('svc', [...dead, up.instance('live')]);
    for (let i = 0; i < 10; i++) {
      const res = await request(h.url, '/svc/');
      assert.equal(res.status, 200, res.text);
    }
    assert.ok(h.done.some((d) => d.attempts === 5), `attempts: ${h.done.map((d) => d.attempts)}`);
    assert.ok(h.done.every((d) => d.attempts <= 5), 'each instance at most once');
  });

  test('a retry goes to another Consul node first: 3 dead instances on one node, 1 live on another, 2 attempts at most', async () => {
    const up = await upstream(ok());
    const h = await harness({ outliers: { consecutiveFailures: 1000 } });
    const dead = await Promise.all([1, 2, 3].map(async (i) => ({ ...up.instance(`dead${i}`), port: await deadPort(), node: 'gone' })));
    h.setService('svc', [...dead, { ...up.instance('live'), node: 'alive', key: 'alive/live' }]);
    for (let i = 0; i < 8; i++) assert.equal((await request(h.url, '/svc/')).status, 200);
    assert.ok(h.done.some((d) => d.attempts === 2), 'some requests met a dead instance first');
    assert.ok(h.done.every((d) => d.attempts <= 2), `attempts: ${h.done.map((d) => d.attempts)}`);
  });

  test('resets stop at UPSTREAM_RETRIES: 3 attempts at most, then 502', async () => {
    const resetting = await Promise.all([1, 2, 3, 4, 5].map(() => upstream((req) => req.socket.destroy())));
    const h = await harness({ proxy: { retries: 2 }, outliers: { consecutiveFailures: 1000 } });
    h.setService('svc', resetting.map((r) => r.instance()));
    const res = await request(h.url, '/svc/');
    assertErrorBody(res, 502, 'upstream_unreachable', 'svc');
    assert.deepEqual(h.done.map((d) => d.attempts), [3]);
    assert.equal(resetting.reduce((n, r) => n + r.seen.length, 0), 3);
  });

  test('UPSTREAM_RETRIES=0: a refused connection is not retried either', async () => {
    const up = await upstream(ok());
    const h = await harness({ proxy: { retries: 0 }, outliers: { consecutiveFailures: 1000 } });
    h.setService('svc', [{ ...up.instance('dead'), port: await deadPort() }, up.instance('live')]);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await request(h.url, '/svc/')).status);
    assert.deepEqual(statuses.sort(), [200, 200, 502, 502]);
    assert.ok(h.done.every((d) => d.attempts === 1));
  });

  test('with the retry budget spent, a refused connection is not retried even with a healthy instance left', async () => {
    const up = await upstream(ok());
    const h = await harness({ budget: { percent: 0, minPerSecond: 0 }, outliers: { consecutiveFailures: 1000 } });
    const dead = { ...up.instance('dead'), port: await deadPort() };
    h.setService('svc', [dead, up.instance('live')]);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await request(h.url, '/svc/')).status);
    assert.deepEqual(statuses.sort(), [200, 200, 502, 502]);
    assert.ok(h.done.every((d) => d.attempts === 1));
  });

  test('a timeout after the request was sent: 504, counted against the instance', async () => {
    const up = await upstream(hang());
    const h = await harness({ proxy: { upstreamTimeoutMs: 200 }, outliers: { consecutiveFailures: 1, maxEjectPercent: 100 } });
    h.setService('svc', [up.instance()]);
    const t0 = performance.now();
    const res = await request(h.url, '/svc/');
    assertErrorBody(res, 504, 'upstream_timeout', 'svc');
    assert.ok(performance.now() - t0 >= 200);
    assert.equal(h.outliers.isEjected(up.instance().key), true);
  });
});

describe('proxy: clients that leave', () => {
  test('a client that leaves mid-attempt: the attempt is cut at once, no other instance is tried', async () => {
    const slow = await upstream(hang());
    const other = await upstream(ok());
    const h = await harness({ proxy: { upstreamTimeoutMs: 5_000 }, outliers: { consecutiveFailures: 1, maxEjectPercent: 100 } });
    h.setService('svc', [slow.instance('slow')]);
    const { req } = manual(h.url, '/svc/', {}, 'GET');
    req.end();
    await until('the request to reach the slow instance', () => slow.seen.length === 1);
    h.setService('svc', [slow.instance('slow'), other.instance('other')]);
    req.destroy();
    await until('the proxy to let go', () => h.proxy.inflight() === 0, 1_000);
    await until('the upstream socket to close', () => slow.sockets.size === 0, 1_000);
    assert.equal(other.seen.length, 0);
    assert.deepEqual(h.done.map((d) => d.status), [499]);
    assert.equal(h.outliers.isEjected(slow.instance('slow').key), false);
  });

  test('a client that leaves while its first attempt fails: no second attempt runs to its timeout', async () => {
    // The first instance resets every request (retryable for GET); the
    // second would hang for the whole upstream timeout if it were tried.
    const resetting = await upstream((req) => req.socket.destroy());
    const hanging = await upstream(hang());
    const h = await harness({ proxy: { upstreamTimeoutMs: 5_000 }, outliers: { consecutiveFailures: 1000 } });
    h.setService('svc', [resetting.instance('r'), hanging.instance('h')]);
    for (let i = 0; i < 5; i++) {
      const { req } = manual(h.url, '/svc/', {}, 'GET');
      req.end();
      await until('the request to reach an instance', () => resetting.seen.length + hanging.seen.length > i);
      req.destroy();
    }
    await until('the proxy to let go of every request', () => h.proxy.inflight() === 0, 1_000);
    await until('every hanging upstream socket to close', () => hanging.sockets.size === 0, 1_000);
    assert.ok(h.done.every((d) => d.status === 499));
  });

  test('an upload the client aborts: 499, not counted against the instance', async () => {
    const up = await upstream(counting());
    const h = await harness({ outliers: { consecutiveFailures: 1, maxEjectPercent: 100 } });
    h.setService('svc', [up.instance()]);
    for (let i = 0; i < 3; i++) {
      const { req } = manual(h.url, '/svc/upload', { 'content-length': 1_000_000 });
      req.write(Buffer.alloc(1000));
      await until('the upload to reach the instance', () => up.seen.length > i);
      req.destroy();
    }
    await until('the proxy to let go', () => h.done.length === 3 && h.proxy.inflight() === 0);
    assert.deepEqual(h.done.map((d) => d.status), [499, 499, 499]);
    assert.equal(h.outliers.isEjected(up.instance().key), false);
  });
});

describe('proxy: request bodies', () => {
  test('a body slower than the upstream timeout is fine: the clock starts once it is sent', async () => {
    const up = await upstream(counting());
    const h = await harness({ proxy: { upstreamTimeoutMs: 300, body: { maxBytes: 1e6, idleMs: 2_000, stallMs: 2_000 } }, outliers: { consecutiveFailures: 1 } });
    h.setService('svc', [up.instance()]);
    const { req, response } = manual(h.url, '/svc/upload', { 'content-length': 5 });
    for (const c of 'abcde') {
      req.write(c);
      await sleep(150);
    }
    req.end();
    const res = await response;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(JSON.parse(res.text), { bytes: 5 });
  });

  test('a withheld body: 408 after the body idle timeout, connection closed, never counted against the instance', async () => {
    const up = await upstream(counting());
    const h = await harness({ proxy: { upstreamTimeoutMs: 100, body: { maxBytes: 1e6, idleMs: 300, stallMs: 2_000 } }, outliers: { consecutiveFailures: 1, maxEjectPercent: 100 } });
    h.setService('svc', [up.instance()]);
    for (let i = 0; i < 3; i++) {
      const { req, response } = manual(h.url, '/svc/upload', { 'content-length': 100 });
      req.write('0123456789');
      const res = await response;
      assert.equal(res.status, 408, res.text);
      assert.equal(JSON.parse(res.text).error, 'request_timeout');
      assert.equal(res.headers.connection, 'close');
      req.destroy();
    }
    assert.equal(h.outliers.isEjected(up.instance().key), false);
  });

  test('Content-Length over the limit: 413 at once, the instance never contacted', async () => {
    const up = await upstream(counting());
    const h = await harness({ proxy: { body: { maxBytes: 1000, idleMs: 2_000, stallMs: 2_000 } } });
    h.setService('svc', [up.instance()]);
    const { req, response } = manual(h.url, '/svc/upload', { 'content-length': 1_073_741_824 });
    req.write('x');
    const res = await response;
    assert.equal(res.status, 413);
    assert.equal(JSON.parse(res.text).error, 'body_too_large');
    assert.equal(up.seen.length, 0);
    req.destroy();
  });

  test('a chunked body that grows over the limit: 413 mid-stream, the upstream request aborted', async () => {
    const up = await upstream(counting());
    const h = await harness({ proxy: { body: { maxBytes: 1000, idleMs: 2_000, stallMs: 2_000 } }, outliers: { consecutiveFailures: 1, maxEjectPercent: 100 } });
    h.setService('svc', [up.instance()]);
    const { req, response } = manual(h.url, '/svc/upload', { 'transfer-encoding': 'chunked' });
    req.write(Buffer.alloc(600));
    await until('the upload to reach the instance', () => up.seen.length === 1);
    req.write(Buffer.alloc(600));
    const res = await response;
    assert.equal(res.status, 413);
    await until('the upstream socket to close', () => up.sockets.size === 0, 1_000);
    assert.equal(h.outliers.isEjected(up.instance().key), false);
    req.destroy();
  });

  test('Expect: 100-continue with a too-large length gets 413 and no 100 Continue', async () => {
    const h = await harness({ proxy: { body: { maxBytes: 1000, idleMs: 2_000, stallMs: 2_000 } } });
    const up = await upstream(counting());
    h.setService('svc', [up.instance()]);
    const raw = await rawExchange(h.port, 'POST /svc/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n');
    assert.match(raw, /^HTTP\/1\.1 413 /);
    assert.doesNotMatch(raw, /100 Continue/);
  });

  test('Expect: 100-continue within the limit gets 100 Continue, then the answer', async () => {
    const h = await harness();
    const up = await upstream(counting());
    h.setService('svc', [up.instance()]);
    const sock = net.connect(h.port, '127.0.0.1');
    let got = '';
    sock.on('data', (b) => (got += b.toString()));
    sock.write('POST /svc/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
    await until('100 Continue', () => got.includes('100 Continue'));
    sock.write('abc');
    await new Promise((r) => sock.once('close', r));
    assert.match(got, /HTTP\/1\.1 200 OK[\s\S]*\{"bytes":3\}/);
  });
});

describe('proxy: refusals', () => {
  test('in-flight cap: the request over it gets 503 overloaded with Retry-After, at once', async () => {
    const slow = await upstream(hang());
    const h = await harness({ proxy: { maxInflight: 1, upstreamTimeoutMs: 5_000 } });
    h.setService('svc', [slow.instance()]);
    const { req } = manual(h.url, '/svc/', {}, 'GET');
    req.end();
    await until('the first request in flight', () => h.proxy.inflight() === 1);
    const res = await request(h.url, '/svc/');
    assertErrorBody(res, 503, 'overloaded', 'svc');
    assert.equal(res.headers['retry-after'], '1');
    req.destroy();
  });

  for (const method of ['TRACE', 'CONNECT']) {
    test(`${method} → 405 with Allow, never forwarded`, async () => {
      const up = await upstream(ok());
      const h = await harness();
      h.setService('svc', [up.instance()]);
      const raw = await rawExchange(h.port, method === 'CONNECT' ? 'CONNECT svc:80 HTTP/1.1\r\nHost: svc:80\r\n\r\n' : 'TRACE /svc/echo HTTP/1.1\r\nHost: x\r\nCookie: secret=1\r\n\r\n');
      assert.match(raw, /^HTTP\/1\.1 405 /);
      assert.match(raw, /\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/i);
      assert.match(raw, /"error":"method_not_allowed"/);
      assert.doesNotMatch(raw, /secret/);
      assert.equal(up.seen.length, 0);
    });
  }

  test('a request that already passed through the gateway → 508 loop_detected', async () => {
    const up = await upstream(ok());
    const h = await harness();
    h.setService('svc', [up.instance()]);
    for (const via of ['1.1 gateway', '1.0 edge, 1.1 Gateway', '1.1 gateway:3000']) {
      assertErrorBody(await request(h.url, '/svc/', { headers: { via } }), 508, 'loop_detected', 'svc');
    }
    assert.equal((await request(h.url, '/svc/', { headers: { via: '1.1 other-proxy' } })).status, 200);
    assert.equal(up.seen.length, 1);
    assert.equal(up.seen[0]!.headers.via, '1.1 other-proxy, 1.1 gateway');
  });

  test('a request target over the limit → 414', async () => {
    const up = await upstream(ok());
    const h = await harness({ proxy: { maxUrlBytes: 100 } });
    h.setService('svc', [up.instance()]);
    assertErrorBody(await request(h.url, `/svc/${'a'.repeat(100)}`), 414, 'uri_too_long', null);
    assert.equal((await request(h.url, `/svc/${'a'.repeat(90)}`)).status, 200);
  });
});

/** Writes raw bytes, returns everything the server sent until it closed (or 2 s). */
function rawExchange(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => sock.destroy(), 2_000);
    sock.on('data', (b) => (got += b.toString()));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    sock.on('error', () => undefined);
    sock.write(data);
  });
}
