import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { clientResponseHeaders, upstreamRequestHeaders, type ForwardInfo } from './headers.js';

const info: ForwardInfo = {
  clientIp: '203.0.113.7',
  proto: 'http',
  host: 'gw.example:3000',
  requestId: 'req-1',
  upstreamHost: '10.0.0.5:8080',
};

const HOP_BY_HOP: IncomingHttpHeaders = {
  connection: 'keep-alive',
  'keep-alive': 'timeout=5',
  te: 'trailers',
  trailer: 'x-checksum',
  'transfer-encoding': 'chunked',
  upgrade: 'websocket',
  'proxy-authorization': 'Basic Zm9vOmJhcg==',
  'proxy-authenticate': 'Basic',
  'proxy-connection': 'keep-alive',
  expect: '100-continue',
  host: 'gw.example:3000',
  'http2-settings': 'AAMAAABkAAQAAP__',
};

describe('upstreamRequestHeaders', () => {
  test('strips every hop-by-hop header', () => {
    const out = upstreamRequestHeaders({ ...HOP_BY_HOP }, info);
    for (const name of Object.keys(HOP_BY_HOP)) {
      if (name === 'host') continue;
      assert.ok(!(name in out), `${name} forwarded`);
    }
    assert.equal(out['host'], info.upstreamHost);
  });

  const connectionCases: Array<[string, string | string[]]> = [
    ['a comma list', 'x-foo, x-bar'],
    ['mixed case and odd spacing', 'close,X-Foo ,  X-BAR'],
    ['an array of values', ['x-foo', 'keep-alive, x-bar']],
  ];
  for (const [name, connection] of connectionCases) {
    test(`strips headers named in Connection (${name})`, () => {
      const out = upstreamRequestHeaders(
        { connection: connection as string, 'x-foo': '1', 'x-bar': '2', 'x-baz': '3' },
        info,
      );
      assert.equal(out['x-foo'], undefined);
      assert.equal(out['x-bar'], undefined);
      assert.equal(out['connection'], undefined);
      assert.equal(out['x-baz'], '3');
    });
  }

  test('keeps end-to-end headers as they are, including multi-value arrays', () => {
    const headers: IncomingHttpHeaders = {
      accept: 'application/json',
      'accept-encoding': 'gzip',
      authorization: 'Bearer t',
      cookie: 'a=1; b=2',
      'content-type': 'application/json',
      'content-length': '12',
      'user-agent': 'curl/8',
      'x-custom': ['one', 'two'],
      'cache-control': 'no-cache',
    };
    const out = upstreamRequestHeaders(headers, info);
    for (const [k, v] of Object.entries(headers)) assert.deepEqual(out[k], v, k);
  });

  test('does not mutate the incoming headers', () => {
    const headers: IncomingHttpHeaders = { connection: 'x-foo', 'x-foo': '1', 'x-forwarded-for': '203.0.113.7', host: 'h' };
    const copy = structuredClone(headers);
    upstreamRequestHeaders(headers, info);
    assert.deepEqual(headers, copy);
  });

  const xffCases: Array<[string, string | string[] | undefined, string]> = [
    ['none → client ip', undefined, '203.0.113.7'],
    ['empty → client ip', '', '203.0.113.7'],
    ['blank → client ip', '   ', '203.0.113.7'],
    ['string → appended', '198.51.100.1', '198.51.100.1, 203.0.113.7'],
    ['chain → appended', '198.51.100.1, 10.1.1.1', '198.51.100.1, 10.1.1.1, 203.0.113.7'],
    ['array → joined and appended', ['198.51.100.1', '10.1.1.1'], '198.51.100.1, 10.1.1.1, 203.0.113.7'],
  ];
  for (const [name, prior, expected] of xffCases) {
    test(`X-Forwarded-For: ${name}`, () => {
      const headers: IncomingHttpHeaders = prior === undefined ? {} : { 'x-forwarded-for': prior as string };
      assert.equal(upstreamRequestHeaders(headers, info)['x-forwarded-for'], expected);
    });
  }

  test('sets X-Forwarded-Proto/Host, X-Request-Id and host, replacing client values', () => {
    const out = upstreamRequestHeaders(
      {
        host: 'gw.example:3000',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'spoofed.example',
        'x-request-id': 'client-supplied',
      },
      { ...info, proto: 'http' },
    );
    assert.equal(out['x-forwarded-proto'], 'http');
    assert.equal(out['x-forwarded-host'], 'gw.example:3000');
    assert.equal(out['x-request-id'], 'req-1');
    assert.equal(out['host'], '10.0.0.5:8080');
  });

  test('no X-Forwarded-Host when the request had no host', () => {
    const out = upstreamRequestHeaders({}, { ...info, host: undefined });
    assert.equal(out['x-forwarded-host'], undefined);
    assert.equal(out['host'], '10.0.0.5:8080');
  });

  test('a Connection header cannot remove the headers the gateway sets', () => {
    const out = upstreamRequestHeaders(
      { connection: 'x-request-id, host, x-forwarded-proto', 'x-forwarded-for': '203.0.113.7' },
      info,
    );
    assert.equal(out['x-request-id'], 'req-1');
    assert.equal(out['host'], '10.0.0.5:8080');
    assert.equal(out['x-forwarded-proto'], 'http');
    assert.equal(out['x-forwarded-for'], '203.0.113.7, 203.0.113.7');
  });
});

describe('clientResponseHeaders', () => {
  test('strips hop-by-hop headers', () => {
    const out = clientResponseHeaders({ ...HOP_BY_HOP });
    for (const name of Object.keys(HOP_BY_HOP)) assert.ok(!(name in out), `${name} forwarded`);
  });

  test('strips headers named in Connection', () => {
    const out = clientResponseHeaders({ connection: 'x-internal', 'x-internal': 'secret', 'x-public': 'ok' });
    assert.deepEqual(out, { 'x-public': 'ok' });
  });

  test('keeps set-cookie arrays, content-length, content-encoding and other end-to-end headers', () => {
    const headers = {
      'set-cookie': ['a=1; Path=/', 'b=2; HttpOnly'],
      'content-length': '123',
      'content-encoding': 'gzip',
      'content-type': 'text/plain',
      etag: '"abc"',
      vary: 'accept-encoding',
      location: '/elsewhere',
    };
    assert.deepEqual(clientResponseHeaders({ ...headers }), headers);
  });

  test('skips undefined values', () => {
    assert.deepEqual(clientResponseHeaders({ a: undefined, b: '1' }), { b: '1' });
  });
});
