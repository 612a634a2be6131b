import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyTable, setService, type Instance, type RouteTable } from '@stack/shared';
import { renderPage } from './page.js';

const inst = (id: string, address: string, port: number): Instance => ({ id, service: 's', address, port, node: 'n', tags: [] });
const ok = { synced: true, degraded: false, reasons: [] };

function table(entries: Record<string, Instance[]>): RouteTable {
  let t = emptyTable;
  for (const [name, list] of Object.entries(entries)) t = setService(t, name, list, new Date('2024-05-01T12:00:00.000Z'));
  return t;
}

describe('renderPage', () => {
  test('is a complete HTML document', () => {
    const html = renderPage(emptyTable, ok);
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /<\/html>$/);
    assert.match(html, /No routable services in Consul yet/);
    assert.match(html, /last changed never/);
  });

  test('links /<name>/ for every service, sorted', () => {
    const html = renderPage(table({ 'service-web': [inst('w1', '10.0.0.1', 80)], api: [inst('a1', '10.0.0.2', 81)] }), ok);
    assert.ok(html.includes('<a href="/service-web/">/service-web/</a>'));
    assert.ok(html.includes('<a href="/api/">/api/</a>'));
    assert.ok(html.indexOf('/api/') < html.indexOf('/service-web/'));
    assert.ok(html.includes('<code>w1</code> 10.0.0.1:80'));
    assert.ok(html.includes('1 passing'));
    assert.match(html, /Table version 2, last changed 2024-05-01T12:00:00.000Z/);
  });

  test('shows "no passing instance" for an empty list', () => {
    const html = renderPage(table({ lonely: [] }), ok);
    assert.match(html, /no passing instance/);
    assert.match(html, /0 passing/);
  });

  test('escapes HTML in ids and addresses', () => {
    const evil = inst('<script>alert("x")</script>', '"><img src=x onerror=alert(1)>', 8080);
    const html = renderPage(table({ web: [evil, inst("o'neil&co", '10.0.0.1', 1)] }), ok);
    assert.ok(!html.includes('<script>alert'));
    assert.ok(!html.includes('<img'));
    assert.ok(html.includes('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;'));
    assert.ok(html.includes('&#34;&#62;&#60;img src=x onerror=alert(1)&#62;:8080'));
    assert.ok(html.includes('o&#39;neil&#38;co'));
  });

  test('escapes HTML in service names', () => {
    const html = renderPage(table({ '<b>x</b>': [] }), ok);
    assert.ok(!html.includes('<b>x</b>'));
    assert.ok(html.includes('&#60;b&#62;x&#60;/b&#62;'));
  });

  const states: Array<[string, Parameters<typeof renderPage>[1], RegExp]> = [
    ['not synced', { synced: false, degraded: false, reasons: [] }, /waiting for the first sync with Consul/],
    ['in sync', ok, /in sync with Consul/],
    ['degraded, reasons escaped', { synced: true, degraded: true, reasons: ['a<b', 'stale'] }, /degraded: a&#60;b; stale/],
  ];
  for (const [name, status, re] of states) {
    test(`discovery state: ${name}`, () => {
      assert.match(renderPage(emptyTable, status), re);
    });
  }
});
