import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { consulOk } from '../testing/harness.js';
import { type ConsulState, emptyTable, type Instance, instanceKey, type RouteTable, setService } from '@stack/shared';
import type { GatewayEvent } from './events.js';
import { dashboardView, PAGE_CSP, PAGE_HEADERS, renderPage, type DashboardInputs } from './page.js';
import { dashboardScript } from './ui/script.js';
import { DASHBOARD_CSS } from './ui/style.js';

const inst = (id: string, address: string, port: number, node = 'n'): Instance => ({ id, service: 's', address, port, node, tags: [], key: instanceKey(node, id) });
const CHANGED = new Date('2024-05-01T12:00:00.000Z');

const consul: ConsulState = consulOk;

function table(entries: Record<string, Instance[]>): RouteTable {
  let t = emptyTable;
  for (const [name, list] of Object.entries(entries)) t = setService(t, name, list, CHANGED);
  return t;
}

function view(t: RouteTable, over: Partial<DashboardInputs> = {}) {
  return dashboardView({
    table: t,
    synced: true,
    consul,
    ejectedUntil: () => null,
    joinedAt: () => null,
    servers: null,
    boot: 'b',
    now: Date.parse('2024-05-01T12:01:00.000Z'),
    ...over,
  });
}

const HOSTILE = '<script>alert("x")</script>';

describe('dashboardView', () => {
  test('services sorted, with ejections and join times', () => {
    const w1 = inst('w1', '10.0.0.1', 80);
    const w2 = inst('w2', '10.0.0.2', 80);
    const v = view(table({ web: [w1, w2], api: [] }), {
      ejectedUntil: (i) => (i.id === 'w2' ? Date.parse('2024-05-01T12:01:30.000Z') : null),
      joinedAt: (s, i) => `${s}:${i.id}`,
      servers: { leader: '10.0.0.9:8300', peers: ['10.0.0.9:8300'], checkedAt: null, error: null },
    });
    assert.deepEqual(Object.keys(v.services), ['api', 'web']);
    assert.deepEqual(v.services.web, [
      { id: 'w1', key: 'n/w1', address: '10.0.0.1', port: 80, node: 'n', joinedAt: 'web:w1' },
      { id: 'w2', key: 'n/w2', address: '10.0.0.2', port: 80, node: 'n', ejectedUntil: '2024-05-01T12:01:30.000Z', joinedAt: 'web:w2' },
    ]);
    assert.equal(v.version, 2);
    assert.equal(v.changedAt, CHANGED.toISOString());
    assert.equal(v.at, '2024-05-01T12:01:00.000Z');
    assert.equal(v.servers?.leader, '10.0.0.9:8300');
    assert.equal(v.boot, 'b');
  });
});

describe('renderPage', () => {
  test('is a complete HTML document that loads its script and style from the gateway, nothing inline', () => {
    const html = renderPage(view(emptyTable));
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /<\/html>$/);
    assert.ok(html.includes('<script src="/_gateway/ui/dashboard.js" defer></script>'));
    assert.ok(html.includes('<link rel="stylesheet" href="/_gateway/ui/dashboard.css">'));
    // No inline script, inline style or handler attribute: the CSP would block them.
    assert.equal((html.match(/<script/g) ?? []).length, 1);
    assert.doesNotMatch(html, /<style|style=|\son[a-z]+=/i);
    assert.doesNotMatch(html, /http-equiv="refresh"/);
    assert.match(html, /No routable services in Consul yet/);
    assert.match(html, /last changed never/);
  });

  test('links /<name>/ for every service, sorted, with its instances', () => {
    const html = renderPage(view(table({ 'service-web': [inst('w1', '10.0.0.1', 80)], api: [inst('a1', '10.0.0.2', 81)] })));
    assert.ok(html.includes('<a href="/service-web/">/service-web/</a>'));
    assert.ok(html.includes('<a href="/api/">/api/</a>'));
    assert.ok(html.indexOf('/api/') < html.indexOf('/service-web/'));
    assert.ok(html.includes('<code>w1</code></td><td>10.0.0.1:80</td>'));
    assert.ok(html.includes('1 passing'));
    assert.match(html, /Table version 2, last changed 2024-05-01T12:00:00.000Z/);
  });

  test('shows "no passing instance" for an empty list', () => {
    const html = renderPage(view(table({ lonely: [] })));
    assert.match(html, /no passing instance/);
    assert.match(html, /0 passing/);
  });

  test('escapes hostile Consul data everywhere it appears', () => {
    const evil = inst(HOSTILE, '"><img src=x onerror=alert(1)>', 8080, `<b onmouseover=alert(1)>`);
    const v = view(table({ web: [evil, inst("o'neil&co", '10.0.0.1', 1)] }), {
      consul: { ...consul, agent: HOSTILE, degraded: true, reasons: [HOSTILE] },
      servers: { leader: HOSTILE, peers: [HOSTILE], checkedAt: null, error: null },
      joinedAt: () => HOSTILE,
    });
    const events: GatewayEvent[] = [{ id: 1, at: HOSTILE, type: 'instance-added', service: HOSTILE, instance: HOSTILE, detail: HOSTILE }];
    const html = renderPage(v, events);
    // The only <script> tag is the dashboard's own; no attribute was opened by data.
    assert.equal((html.match(/<script/gi) ?? []).length, 1);
    assert.ok(!html.includes('<img'));
    assert.ok(!html.includes('<b onmouseover'));
    assert.ok(html.includes('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;'));
    assert.ok(html.includes('&#34;&#62;&#60;img src&#61;x onerror&#61;alert(1)&#62;:8080'));
    assert.ok(html.includes('o&#39;neil&#38;co'));
    // data-instance attributes hold the escaped id, so the attribute can't be closed early.
    assert.ok(html.includes('data-instance="&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;"'));
  });

  test('escapes HTML in service names (also inside the href)', () => {
    const html = renderPage(view(table({ '<b>x</b>': [] })));
    assert.ok(!html.includes('<b>x</b>'));
    assert.ok(html.includes('<a href="/&#60;b&#62;x&#60;/b&#62;/">'));
  });

  test('server-renders the recent events, newest first', () => {
    const events: GatewayEvent[] = [
      { id: 1, at: '2024-05-01T12:00:00.000Z', type: 'instance-added', service: 'web', instance: 'w1', detail: 'passing at 10.0.0.1:80' },
      { id: 2, at: '2024-05-01T12:00:01.000Z', type: 'instance-ejected', service: 'web', instance: 'w1', detail: 'ejected' },
    ];
    const html = renderPage(view(emptyTable), events);
    assert.ok(html.indexOf('instance-ejected') < html.indexOf('instance-added'));
    assert.ok(html.includes('<li data-type="instance-added">'));
  });

  test('the Consul panel marks the leader among the servers', () => {
    const html = renderPage(view(emptyTable, { servers: { leader: '10.0.0.2:8300', peers: ['10.0.0.1:8300', '10.0.0.2:8300'], checkedAt: null, error: null } }));
    assert.ok(html.includes('<li><code>10.0.0.1:8300</code></li>'));
    assert.ok(html.includes('<li><code>10.0.0.2:8300</code> <strong>leader</strong></li>'));
  });

  const states: Array<[string, Partial<DashboardInputs>, RegExp]> = [
    ['not synced', { synced: false }, /waiting for the first sync with Consul/],
    ['in sync', {}, /in sync with Consul/],
    ['degraded, reasons escaped', { consul: { ...consul, degraded: true, reasons: ['a<b', 'stale'] } }, /degraded: a&#60;b; stale/],
  ];
  for (const [name, over, re] of states) {
    test(`discovery state: ${name}`, () => {
      assert.match(renderPage(view(emptyTable, over)), re);
    });
  }
});

describe('page headers and assets', () => {
  test('a strict CSP: nothing from elsewhere, nothing inline, no framing', () => {
    assert.equal(PAGE_HEADERS['content-security-policy'], PAGE_CSP);
    for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"])
      assert.ok(PAGE_CSP.includes(d), d);
    assert.doesNotMatch(PAGE_CSP, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(PAGE_HEADERS['x-content-type-options'], 'nosniff');
  });

  test('the client script parses, and never writes markup from data', () => {
    const DASHBOARD_JS = dashboardScript();
    // Compiles without running: a syntax error in the served file fails here.
    assert.doesNotThrow(() => new Function(DASHBOARD_JS));
    assert.doesNotMatch(DASHBOARD_JS, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
    assert.match(DASHBOARD_JS, /textContent/);
    assert.match(DASHBOARD_JS, /new EventSource\(/);
    assert.ok(DASHBOARD_CSS.length > 100);
  });
});
