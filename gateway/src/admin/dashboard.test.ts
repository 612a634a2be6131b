import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, emptyTable, type Instance, instanceKey, setService } from '@stack/shared';
import { createApp } from './app.js';
import { ConsulServers } from './consul-servers.js';
import { EventFeed } from './events.js';
import { OutlierDetector } from '../balancing/outlier.js';
import { PAGE_CSP } from './page.js';
import { SseHub } from './sse.js';
import { assertErrorBody, consulOk, request } from '../testing/harness.js';

const HOSTILE = '<script>alert(1)</script>';
const inst = (id: string, port: number): Instance => ({ id, service: 'web', address: '10.0.0.1', port, node: 'n1', tags: [], key: instanceKey('n1', id) });
const W1 = inst('web-1', 8081);
const EVIL = inst(HOSTILE, 8082);

const state = { table: setService(emptyTable, 'web', [W1, EVIL]) };
const outliers = new OutlierDetector({ consecutiveFailures: 1, baseEjectMs: 60_000, maxEjectMs: 60_000, maxEjectPercent: 100 });
const events = new EventFeed({ table: () => state.table, state: () => consulOk, ejectedUntil: (k) => outliers.ejectedUntil(k) });
const hub = new SseHub(events, { max: 2, heartbeatMs: 60_000, retryMs: 2_000 });
const servers = new ConsulServers(
  () => ({ leader: async () => '10.0.0.9:8300', peers: async () => ['10.0.0.9:8300', '10.0.0.8:8300'] }),
  { intervalMs: 3_000, idleMs: 30_000 },
);

const log = createLogger('test', 'silent');
const base = { table: () => state.table, synced: () => true, syncedAt: () => new Date(), consul: () => consulOk, outliers, inflight: () => 0, log };

let server: http.Server;
let bare: http.Server;
let url = '';
let bareUrl = '';

async function listen(s: http.Server): Promise<string> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

before(async () => {
  server = http.createServer(createApp({ ...base, dashboard: { events, hub, servers } }).callback());
  bare = http.createServer(createApp(base).callback());
  url = await listen(server);
  bareUrl = await listen(bare);
});

after(async () => {
  hub.close();
  for (const s of [server, bare]) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

/** Opens an event stream and returns it once `re` was read (or its status when refused). */
function stream(re: RegExp = /retry/): Promise<{ status: number; text: string; req: http.ClientRequest; res: http.IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/_gateway/events`, (res) => {
      let text = '';
      if (res.statusCode !== 200) {
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, text, req, res }));
        return;
      }
      const t = setTimeout(() => reject(new Error(`no ${re} in ${text}`)), 2_000);
      res.on('data', (c) => {
        text += c;
        if (re.test(text)) {
          clearTimeout(t);
          resolve({ status: 200, text, req, res });
        }
      });
    });
    req.on('error', reject);
  });
}

describe('GET / for a browser: the dashboard', () => {
  test('HTML under a strict CSP, hostile ids escaped', async () => {
    const res = await request(url, '/', { headers: { accept: 'text/html' } });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.equal(res.headers['content-security-policy'], PAGE_CSP);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.ok(!res.text.includes(HOSTILE));
    assert.ok(res.text.includes('&#60;script&#62;alert(1)&#60;/script&#62;'));
    assert.equal((res.text.match(/<script/g) ?? []).length, 1);
  });

  test('JSON when asked, as before', async () => {
    const res = await request(url, '/', { headers: { accept: 'application/json' } });
    assert.match(String(res.headers['content-type']), /application\/json/);
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), ['changedAt', 'consul', 'services', 'synced', 'version']);
    assert.deepEqual(body.services.web.map((i: { id: string }) => i.id), ['web-1', HOSTILE]);
  });

  test('the script and the stylesheet, as files of the gateway', async () => {
    const js = await request(url, '/_gateway/ui/dashboard.js');
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /^application\/javascript/);
    assert.equal(js.headers['x-content-type-options'], 'nosniff');
    assert.match(js.text, /EventSource/);
    const css = await request(url, '/_gateway/ui/dashboard.css');
    assert.match(String(css.headers['content-type']), /^text\/css/);
    assertErrorBody(await request(url, '/_gateway/ui/nope.js'), 404, 'not_found', null);
  });
});

describe('GET /_gateway/dashboard and /_gateway/consul', () => {
  test('the snapshot: instances with join times and ejections, Consul and its servers', async () => {
    outliers.failure(W1.key, [W1, EVIL].map((i) => i.key));
    try {
      const first = (await request(url, '/_gateway/dashboard')).json();
      assert.equal(first.synced, true);
      assert.equal(first.boot, events.boot);
      assert.deepEqual(first.consul, consulOk);
      const [w1, evil] = first.services.web;
      assert.equal(w1.id, 'web-1');
      assert.match(w1.ejectedUntil, /^\d{4}-\d\d-\d\dT/);
      assert.equal(evil.ejectedUntil, undefined);
      assert.match(w1.joinedAt, /^\d{4}-\d\d-\d\dT/);
      // The servers are read in the background on first interest; the next snapshot has them.
      await new Promise((r) => setTimeout(r, 20));
      const body = (await request(url, '/_gateway/consul')).json();
      assert.equal(body.reachable, true);
      assert.deepEqual(body.servers.peers, ['10.0.0.8:8300', '10.0.0.9:8300']);
      assert.equal(body.servers.leader, '10.0.0.9:8300');
    } finally {
      outliers.retain(new Set());
    }
  });

  test('without the live parts (tests of other endpoints): no servers, no join times', async () => {
    const body = (await request(bareUrl, '/_gateway/dashboard')).json();
    assert.equal(body.servers, null);
    assert.equal(body.services.web[0].joinedAt, null);
    assertErrorBody(await request(bareUrl, '/_gateway/events'), 404, 'not_found', null);
    assert.equal((await request(bareUrl, '/', { headers: { accept: 'text/html' } })).status, 200);
  });
});

describe('GET /_gateway/events', () => {
  test('?format=json: the recent events', async () => {
    events.record({ type: 'synced', detail: 'json list' });
    const body = (await request(url, '/_gateway/events?format=json')).json();
    assert.equal(body.boot, events.boot);
    assert.ok(Array.isArray(body.events));
    assert.equal(body.events.at(-1).detail, 'json list');
    assert.deepEqual(body.events.map((e: { type: string }) => e.type).slice(0, 3), ['service-added', 'instance-added', 'instance-added']);
  });

  test('an event stream with the history, then live events; capped with a JSON 503', async () => {
    const a = await stream(/json list/);
    assert.match(a.text, /^retry: 2000\n\n/);
    assert.equal(a.res.headers['content-type'], 'text/event-stream; charset=utf-8');
    const b = await stream();
    const refused = await stream();
    assert.equal(refused.status, 503);
    const body = JSON.parse(refused.text);
    assert.equal(body.error, 'overloaded');
    assert.match(body.message, /too many event streams/);
    const live = new Promise<string>((resolve) => a.res.on('data', (c) => String(c).includes('live one') && resolve(String(c))));
    events.record({ type: 'instance-ejected', service: 'web', instance: 'web-1', detail: 'live one' });
    assert.match(await live, new RegExp(`^id: ${events.boot}\\.\\d+\\ndata: \\{.*"type":"instance-ejected"`));
    a.req.destroy();
    b.req.destroy();
  });
});
