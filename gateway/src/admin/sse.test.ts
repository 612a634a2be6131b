import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { emptyTable, type ConsulState } from '@stack/shared';
import { EventFeed } from './events.js';
import { parseLastEventId, sseFrame, SseHub, type SseHubOptions } from './sse.js';

describe('sseFrame', () => {
  const cases: Array<[string, [string | null, string, string?], string]> = [
    ['id and data', ['b.1', '{"a":1}'], 'id: b.1\ndata: {"a":1}\n\n'],
    ['no id', [null, 'x'], 'data: x\n\n'],
    ['named event', ['7', 'x', 'table'], 'id: 7\nevent: table\ndata: x\n\n'],
    ['newlines in data become data lines (no early end of frame)', [null, 'a\nb\r\nc\rd'], 'data: a\ndata: b\ndata: c\ndata: d\n\n'],
    ['a blank line in data cannot end the frame', [null, 'a\n\nid: 666'], 'data: a\ndata: \ndata: id: 666\n\n'],
    ['newlines stripped from id and event', ['1\n\ndata: x', 'y', 'e\nid: 2'], 'id: 1data: x\nevent: eid: 2\ndata: y\n\n'],
  ];
  for (const [name, args, want] of cases) test(name, () => assert.equal(sseFrame(...args), want));
});

describe('parseLastEventId', () => {
  const cases: Array<[string | undefined, number]> = [
    ['boot1.17', 17],
    ['boot1.0', 0],
    ['other.17', -1],
    ['17', -1],
    ['boot1.x', -1],
    ['boot1.-3', -1],
    ['', -1],
    [undefined, -1],
  ];
  for (const [value, want] of cases) test(String(value), () => assert.equal(parseLastEventId(value, 'boot1'), want));
});

const consul: ConsulState = {
  reachable: true,
  agent: null,
  lastContact: null,
  lastError: null,
  knownLeader: false,
  lastContactMs: 0,
  degraded: false,
  reasons: [],
};

interface Stream {
  res: http.IncomingMessage;
  text: () => string;
  until: (re: RegExp, ms?: number) => Promise<string>;
  ended: Promise<void>;
}

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanup.splice(0)) fn();
});

async function rig(opts: Partial<SseHubOptions> = {}) {
  const feed = new EventFeed({ table: () => emptyTable, state: () => consul, ejectedUntil: () => null });
  const hub = new SseHub(feed, { max: 3, heartbeatMs: 60_000, retryMs: 1234, ...opts });
  const server = http.createServer((req, res) => {
    const refused = hub.refusal();
    if (refused) {
      res.writeHead(503);
      return void res.end(refused);
    }
    hub.open(req, res, (req.headers['last-event-id'] as string | undefined) ?? null);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  cleanup.push(() => {
    hub.close();
    server.closeAllConnections();
    server.close();
  });
  const connect = (headers: Record<string, string> = {}) =>
    new Promise<Stream>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', headers }, (res) => {
        let buf = '';
        const waiters: Array<() => void> = [];
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          for (const w of waiters.splice(0)) w();
        });
        const ended = new Promise<void>((r) => res.once('end', () => r()));
        const until = (re: RegExp, ms = 2_000) =>
          new Promise<string>((ok, fail) => {
            const t = setTimeout(() => fail(new Error(`no ${re} in ${JSON.stringify(buf)}`)), ms);
            const check = () => {
              if (re.test(buf)) {
                clearTimeout(t);
                ok(buf);
              } else waiters.push(check);
            };
            check();
          });
        resolve({ res, text: () => buf, until, ended });
      });
      req.on('error', reject);
      cleanup.push(() => req.destroy());
    });
  return { feed, hub, connect };
}

describe('SseHub', () => {
  test('an event stream: headers, a retry hint, then the recent events replayed', async () => {
    const { feed, connect } = await rig();
    feed.record({ type: 'synced', detail: 'one' });
    feed.record({ type: 'synced', detail: 'two' });
    const s = await connect();
    assert.equal(s.res.statusCode, 200);
    assert.match(String(s.res.headers['content-type']), /^text\/event-stream/);
    assert.equal(s.res.headers['cache-control'], 'no-store');
    const text = await s.until(/"two"/);
    assert.ok(text.startsWith('retry: 1234\n\n'), text);
    assert.ok(text.includes(`id: ${feed.boot}.1\ndata: {"id":1,`));
    assert.ok(text.includes(`id: ${feed.boot}.2\ndata: {"id":2,`));
  });

  test('new events reach every open stream as they happen', async () => {
    const { feed, hub, connect } = await rig();
    const a = await connect();
    const b = await connect();
    await a.until(/retry/);
    await b.until(/retry/);
    assert.equal(hub.size, 2);
    feed.record({ type: 'instance-added', service: 'web', instance: 'w9', detail: 'passing' });
    for (const s of [a, b]) {
      const text = await s.until(/"w9"/);
      const frame = text.slice(text.indexOf('id: '));
      const data = JSON.parse(/data: (.*)\n/.exec(frame)![1]!);
      assert.equal(data.type, 'instance-added');
      assert.equal(data.instance, 'w9');
    }
  });

  test('Last-Event-ID from this process replays only what came after it', async () => {
    const { feed, connect } = await rig();
    for (let i = 1; i <= 4; i++) feed.record({ type: 'synced', detail: `e${i}` });
    const s = await connect({ 'last-event-id': `${feed.boot}.2` });
    const text = await s.until(/"e4"/);
    assert.ok(!text.includes('"e1"') && !text.includes('"e2"'));
    assert.ok(text.includes('"e3"'));
    // From another process (a restarted gateway): everything.
    const t = await connect({ 'last-event-id': 'elsewhere.2' });
    assert.ok((await t.until(/"e4"/)).includes('"e1"'));
  });

  test('a comment heartbeat while nothing happens', async () => {
    const { connect } = await rig({ heartbeatMs: 30 });
    const s = await connect();
    await s.until(/\n: heartbeat\n\n: heartbeat\n\n/, 2_000);
  });

  test('capped: past `max` streams a new one is refused; a closed one frees its place', async () => {
    const { hub, connect } = await rig({ max: 2 });
    const a = await connect();
    await connect();
    await a.until(/retry/);
    assert.equal(hub.size, 2);
    assert.match(hub.refusal() ?? '', /too many event streams open \(2\)/);
    const c = await connect();
    assert.equal(c.res.statusCode, 503);
    a.res.destroy();
    const deadline = Date.now() + 2_000;
    const size = () => hub.size;
    while (size() !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(size(), 1);
    assert.equal(hub.refusal(), null);
  });

  test('close() ends every stream and refuses new ones (graceful shutdown)', async () => {
    const { hub, connect } = await rig();
    const a = await connect();
    const b = await connect();
    await a.until(/retry/);
    await b.until(/retry/);
    hub.close();
    await Promise.all([a.ended, b.ended]);
    assert.equal(hub.size, 0);
    assert.match(hub.refusal() ?? '', /shutting down/);
  });
});
