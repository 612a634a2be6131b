import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { request, startHarness, startUpstream, until, type Harness } from '../testing/harness.js';
import { instanceKey } from '@stack/shared';

/** A real ws server on port 0: hello with its name, then echo. */
async function wsUpstream(name: string) {
  const server = http.createServer((req, res) => res.end(JSON.stringify({ name, upgrade: req.headers.upgrade ?? null, url: req.url })));
  const wss = new WebSocketServer({ server });
  const seen: http.IncomingHttpHeaders[] = [];
  wss.on('connection', (ws, req) => {
    seen.push(req.headers);
    ws.send(JSON.stringify({ hello: name, url: req.url }));
    ws.on('message', (d, bin) => ws.send(d, { binary: bin }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    seen,
    wss,
    instance: (id: string, service: string, tags: string[] = []) => ({ id, service, address: '127.0.0.1', port, node: 'n1', tags, key: instanceKey('n1', id) }),
    async close() {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function open(url: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(url, { headers });
  const messages: string[] = [];
  let upgradeHeaders: http.IncomingHttpHeaders = {};
  ws.on('upgrade', (res) => (upgradeHeaders = res.headers));
  ws.on('message', (d) => messages.push(String(d)));
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode, body })));
    });
  });
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  return { ws, messages, opened, closed, headers: () => upgradeHeaders };
}

describe('WebSocket through the gateway', () => {
  let gw: Harness;
  let up: Awaited<ReturnType<typeof wsUpstream>>;
  let wsBase: string;

  before(async () => {
    up = await wsUpstream('chat-1');
    gw = await startHarness({ upgrade: { max: 3, idleMs: 60_000 } });
    gw.setService('chat', [up.instance('chat-1', 'chat', ['gateway.route=/live strip=/live'])]);
    wsBase = `ws://127.0.0.1:${gw.port}`;
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  test('the 101 comes back and messages go both ways, on the default and a declared route', async () => {
    for (const [path, upstreamUrl] of [['/chat/room?x=1', '/room?x=1'], ['/live/room', '/room']] as const) {
      const c = open(`${wsBase}${path}`);
      await c.opened;
      assert.equal(c.headers()['x-upstream-instance'], 'chat-1');
      assert.match(String(c.headers()['x-request-id']), /.+/);
      await until('hello', () => c.messages.length === 1);
      assert.deepEqual(JSON.parse(c.messages[0]!), { hello: 'chat-1', url: upstreamUrl });
      c.ws.send('ping ✓');
      await until('echo', () => c.messages.length === 2);
      assert.equal(c.messages[1], 'ping ✓');
      c.ws.close();
      assert.equal(await c.closed, 1005);
    }
    const h = up.seen.at(-1)!;
    assert.equal(h.upgrade, 'websocket');
    assert.match(String(h['x-forwarded-for']), /127\.0\.0\.1/);
    assert.match(String(h.via), /gateway/);
  });

  test('1 MB each way arrives intact', async () => {
    const c = open(`${wsBase}/chat/`);
    await c.opened;
    const big = Buffer.alloc(1024 * 1024, 7);
    const got = new Promise<Buffer>((r) => c.ws.on('message', (d, bin) => bin && r(d as Buffer)));
    c.ws.send(big);
    assert.ok((await got).equals(big));
    c.ws.close();
    await c.closed;
  });

  test('refusals are the gateway\'s JSON errors', async () => {
    const unknown = open(`${wsBase}/nope/`);
    await assert.rejects(unknown.opened, (e: { status: number; body: string }) => e.status === 404 && JSON.parse(e.body).error === 'unknown_service');
    gw.setService('empty', []);
    const none = open(`${wsBase}/empty/`);
    await assert.rejects(none.opened, (e: { status: number; body: string }) => e.status === 503 && JSON.parse(e.body).error === 'no_instance');
  });

  test('an instance that answers the handshake with a 404 has its answer passed on', async () => {
    const plain = await startUpstream((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"no ws here"}');
    });
    gw.setService('plain', [plain.instance('p1', 'plain')]);
    const c = open(`${wsBase}/plain/`);
    await assert.rejects(c.opened, (e: { status: number; body: string }) => e.status === 404 && e.body === '{"error":"no ws here"}');
    await plain.close();
  });

  test('at most `max` upgraded connections: the next gets a 503 with Retry-After; metrics count them per service', async () => {
    const cs = [open(`${wsBase}/chat/`), open(`${wsBase}/chat/`), open(`${wsBase}/chat/`)];
    await Promise.all(cs.map((c) => c.opened));
    assert.equal(gw.upgrades.perService().get('chat'), 3);
    const extra = await request(gw.url, '/chat/', { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    assert.equal(extra.status, 503);
    assert.equal(extra.json().error, 'overloaded');
    assert.equal(extra.headers['retry-after'], '1');
    for (const c of cs) c.ws.close();
    await Promise.all(cs.map((c) => c.closed));
    await until('tunnels closed', () => gw.upgrades.size() === 0);
    assert.equal(gw.upgrades.perService().get('chat'), undefined);
  });

  test('h2c is not tunnelled: the request is served as plain HTTP/1.1 with Upgrade dropped', async () => {
    const r = await request(gw.url, '/chat/x', { headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQCAAAAAAIAAAAA' } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { name: 'chat-1', upgrade: null, url: '/x' });
  });

  test('a WebSocket to the gateway\'s own pages is not tunnelled', async () => {
    const r = await request(gw.url, '/_gateway/health', { headers: { connection: 'Upgrade', upgrade: 'websocket' } });
    assert.equal(r.status, 200);
    assert.equal(r.json().status, 'ok');
  });

  test('shutdown: open tunnels get the grace, then are cut; new ones are refused', async () => {
    const c = open(`${wsBase}/chat/`);
    await c.opened;
    const t0 = Date.now();
    const drained = gw.upgrades.drain(300);
    const late = open(`${wsBase}/chat/`);
    await assert.rejects(late.opened, (e: { status: number }) => e.status === 503);
    await drained;
    await c.closed;
    const ms = Date.now() - t0;
    assert.ok(ms >= 280 && ms < 2_000, `closed after ${ms} ms`);
  });
});

describe('WebSocket limits', () => {
  test('an idle tunnel is closed after the idle timeout; traffic keeps it open', async () => {
    const up = await wsUpstream('idle');
    const gw = await startHarness({ upgrade: { idleMs: 400 } });
    gw.setService('idle', [up.instance('i1', 'idle')]);
    try {
      const c = open(`ws://127.0.0.1:${gw.port}/idle/`);
      await c.opened;
      const t0 = Date.now();
      // Talking every 150 ms for 900 ms: longer than the idle timeout, never idle that long.
      let last = 0;
      for (let i = 0; i < 6; i++) {
        c.ws.send('x');
        last = Date.now();
        await new Promise((r) => setTimeout(r, 150));
      }
      assert.equal(c.ws.readyState, WebSocket.OPEN, 'closed while busy');
      await c.closed;
      const idle = Date.now() - last;
      assert.ok(Date.now() - t0 > 700, 'open for as long as it talked');
      assert.ok(idle >= 350 && idle < 2_000, `closed ${idle} ms after the last message`);
    } finally {
      await gw.close();
      await up.close();
    }
  });

  test('backpressure: a client that stops reading stops the instance\'s writes', async () => {
    // A raw upstream: answers 101, then writes as fast as the tunnel takes it.
    let written = 0;
    let upSock: Socket | undefined;
    const raw = net.createServer((s) => {
      upSock = s;
      s.once('data', () => {
        s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        const chunk = Buffer.alloc(64 * 1024, 1);
        const pump = () => {
          while (written < 200 * 1024 * 1024) {
            written += chunk.length;
            if (!s.write(chunk)) return void s.once('drain', pump);
          }
        };
        pump();
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    const port = (raw.address() as AddressInfo).port;
    const gw = await startHarness();
    gw.setService('raw', [{ id: 'r1', service: 'raw', address: '127.0.0.1', port, node: 'n1', tags: [], key: instanceKey('n1', 'r1') }]);
    try {
      const client = net.connect(gw.port, '127.0.0.1');
      client.write('GET /raw/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      await new Promise((r) => client.once('data', r));
      client.pause();
      await new Promise((r) => setTimeout(r, 1_000));
      const stalled = written;
      await new Promise((r) => setTimeout(r, 500));
      // Kernel buffers on three sockets hold some MB; without backpressure it would be all 200 MB.
      assert.equal(written, stalled, 'the instance kept writing into a paused client');
      assert.ok(written < 64 * 1024 * 1024, `${written} bytes buffered`);
      client.resume();
      await until('writes resume', () => written > stalled, 5_000);
      client.destroy();
    } finally {
      upSock?.destroy();
      await gw.close();
      await new Promise<void>((r) => raw.close(() => r()));
    }
  });
});
