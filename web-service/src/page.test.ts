import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@stack/shared';
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { DrainState } from './drain.js';
import { createIdentity } from './identity.js';
import { formatUptime, instanceHue, renderPage, type PageView } from './page.js';

const view: PageView = {
  service: 'service-web',
  instance: 'host1-abcd',
  hostname: 'host1',
  ip: '10.9.8.7',
  port: 3000,
  pid: 42,
  startedAt: '2024-05-01T12:00:00.000Z',
  uptimeSeconds: 3725.4,
  draining: false,
  requestId: 'rid-1',
  time: '2024-05-01T13:02:05.400Z',
};

describe('page parts', () => {

  test('instanceHue: stable for an id, spread across ids', () => {
    assert.equal(instanceHue('host1-abcd'), instanceHue('host1-abcd'));
    const hues = new Set(Array.from({ length: 50 }, (_, i) => instanceHue(`web-${i}-3f2a9c1d`)));
    for (const h of hues) assert.ok(Number.isInteger(h) && h >= 0 && h < 360);
    assert.ok(hues.size >= 40, `50 ids, ${hues.size} hues`);
    // Ids that differ in one character (two replicas of a container) look different.
    assert.notEqual(instanceHue('e289f85cea00-22aca509'), instanceHue('e289f85cea00-22aca508'));
  });

  const uptimes: Array<[number, string]> = [
    [0, '0s'],
    [59.9, '59s'],
    [60, '1m 0s'],
    [3725.4, '1h 2m 5s'],
    [90_061, '1d 1h 1m 1s'],
    [-5, '0s'],
  ];
  for (const [s, text] of uptimes) test(`formatUptime(${s}) = ${text}`, () => assert.equal(formatUptime(s), text));

  test('renderPage: the facts, a colour from the id, no script and nothing external', () => {
    const html = renderPage(view);
    assert.match(html, /^<!doctype html>/);
    for (const fact of ['host1-abcd', 'host1', '10.9.8.7:3000', '1h 2m 5s', 'service-web', 'rid-1', 'serving'])
      assert.ok(html.includes(fact), fact);
    assert.ok(html.includes(`background: hsl(${instanceHue('host1-abcd')} 70% 85%)`));
    assert.ok(!/<script|src=|href=|url\(/i.test(html));
    assert.match(renderPage({ ...view, draining: true }), /class="draining">draining/);
  });

  test('renderPage escapes every value', () => {
    const evil = '<script>alert(1)</script>"\'&';
    const html = renderPage({ ...view, instance: evil, hostname: evil, ip: evil, service: evil, requestId: evil, startedAt: evil, time: evil });
    assert.ok(!html.includes('<script>'));
    assert.ok(!html.includes('"\'&'));
    assert.ok(html.includes('&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#39;&#38;'));
  });
});

describe('GET /: a page for browsers, the same JSON for everyone else', () => {
  const servers: http.Server[] = [];
  after(() => {
    for (const s of servers) s.closeAllConnections(), s.close();
  });

  async function start() {
    const app = createApp({
      config: loadConfig({}),
      identity: createIdentity({ service: 'service-web', serviceAddress: '10.9.8.7', port: 3000, hostname: 'h<1>', suffix: 'x"y' }),
      log: createLogger('web-service', 'silent'),
      drain: new DrainState(),
      caller: { call: async () => assert.fail('not expected'), close() {} },
    });
    const server = http.createServer(app.callback());
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** node:http, which sends no Accept unless told to (fetch always sends one). */
  function get(url: string, accept?: string): Promise<{ status: number; type: string; text: string }> {
    return new Promise((resolve, reject) => {
      http
        .get(url, { agent: false, headers: accept === undefined ? {} : { accept } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), text }));
        })
        .on('error', reject);
    });
  }

  const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

  test('a browser gets the HTML page, escaped, not cached, scripts forbidden', async () => {
    const base = await start();
    const res = await fetch(`${base}/`, { headers: { accept: BROWSER } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.match(res.headers.get('vary') ?? '', /Accept/);
    const html = await res.text();
    assert.ok(html.includes('h&#60;1&#62;-x&#34;y'), 'the instance id, escaped');
    assert.ok(!html.includes('h<1>'));
    assert.equal(res.headers.get('x-instance-id'), 'h<1>-x"y');
  });

  test('curl (*/*), no Accept and application/json get the JSON, identical in shape', async () => {
    const base = await start();
    const bodies = [];
    for (const accept of ['*/*', undefined, 'application/json', 'application/json, text/html;q=0.5']) {
      const res = await get(`${base}/`, accept);
      assert.equal(res.status, 200, String(accept));
      assert.match(res.type, /^application\/json/, String(accept));
      const text = res.text;
      assert.ok(text.startsWith('{\n  "service": "service-web",\n  "instance": "h<1>-x\\"y"'), text.slice(0, 80));
      bodies.push(JSON.parse(text) as Record<string, unknown>);
    }
    for (const b of bodies)
      assert.deepEqual(Object.keys(b), ['service', 'instance', 'hostname', 'ip', 'addresses', 'port', 'pid', 'startedAt', 'uptimeSeconds', 'draining', 'requestId', 'time']);
  });
});
