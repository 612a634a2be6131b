import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { createLogger } from '@stack/shared';
import { createIdentity } from './identity.js';
import { attachEcho, WS_MAX_PAYLOAD } from './ws.js';

describe('GET /ws: the WebSocket echo', () => {
  let server: http.Server;
  let base: string;
  let echo: ReturnType<typeof attachEcho>;
  const identity = createIdentity({ service: 'service-web', serviceAddress: '127.0.0.1', port: 0, suffix: 'abc' });

  before(async () => {
    server = http.createServer((_req, res) => res.end('plain'));
    echo = attachEcho(server, { identity, log: createLogger('test', 'silent') });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const connect = (path: string, headers: Record<string, string> = {}) => {
    const ws = new WebSocket(`${base}${path}`, { headers });
    const got: Array<{ data: Buffer; binary: boolean }> = [];
    ws.on('message', (data, binary) => got.push({ data: data as Buffer, binary }));
    return { ws, got, open: new Promise<void>((r, j) => (ws.once('open', () => r()), ws.once('error', j))) };
  };
  const until = async (f: () => boolean) => {
    for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(f());
  };

  test('says which instance answered, then echoes text as text and binary as binary', async () => {
    const c = connect('/ws?x=1', { 'x-request-id': 'req-1' });
    await c.open;
    await until(() => c.got.length === 1);
    const hello = JSON.parse(String(c.got[0]!.data));
    assert.deepEqual(
      { ...hello },
      { type: 'hello', service: 'service-web', instance: identity.instance, hostname: identity.hostname, ip: identity.ip, requestId: 'req-1' },
    );
    c.ws.send('héllo');
    c.ws.send(Buffer.from([0, 1, 2]));
    await until(() => c.got.length === 3);
    assert.deepEqual([String(c.got[1]!.data), c.got[1]!.binary], ['héllo', false]);
    assert.deepEqual([[...c.got[2]!.data], c.got[2]!.binary], [[0, 1, 2], true]);
    c.ws.close();
  });

  test('a message over the limit closes with 1009', async () => {
    const c = connect('/ws');
    await c.open;
    const code = new Promise<number>((r) => c.ws.once('close', (n) => r(n)));
    c.ws.send(Buffer.alloc(WS_MAX_PAYLOAD + 1));
    assert.equal(await code, 1009);
  });

  test('another path is a JSON 404', async () => {
    const c = connect('/nope');
    c.open.catch(() => undefined);
    const res = await new Promise<http.IncomingMessage>((r) => c.ws.once('unexpected-response', (_q, s) => r(s)));
    assert.equal(res.statusCode, 404);
    c.ws.terminate();
  });

  test('shutdown closes every socket with 1001', async () => {
    const c = connect('/ws');
    await c.open;
    const code = new Promise<number>((r) => c.ws.once('close', (n) => r(n)));
    echo.close();
    assert.equal(await code, 1001);
  });
});
