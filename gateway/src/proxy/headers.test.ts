import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  clientResponseHeaders,
  connectionTokens,
  safeHeaderValue,
  scanRequestHeaders,
  upstreamRequestHeaders,
  type ForwardInfo,
} from './headers.js';

const info: ForwardInfo = {
  clientIp: '203.0.113.7',
  proto: 'http',
  host: 'gw.example:3000',
  requestId: 'req-1',
  upstreamHost: '10.0.0.5:8080',
  via: { protocol: '1.1', receivedBy: 'gateway' },
};

/** Flat [name, value...] as Node's rawHeaders gives them. */
const flat = (h: Record<string, string | string[]>) =>
  Object.entries(h).flatMap(([k, v]) => (Array.isArray(v) ? v.flatMap((x) => [k, x]) : [k, v]));

/** Flat list → {lower-case name: value | values}. */
function obj(list: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < list.length; i += 2) {
    const k = list[i]!.toLowerCase();
    const prev = out[k];
    out[k] = prev === undefined ? list[i + 1]! : ([] as string[]).concat(prev, list[i + 1]!);
  }
  return out;
}

const upstream = (h: Record<string, string | string[]>, i: Partial<ForwardInfo> = {}) =>
  obj(upstreamRequestHeaders(scanRequestHeaders(flat(h)), { ...info, ...i }));

const HOP_BY_HOP = {
  Connection: 'keep-alive',
  'Keep-Alive': 'timeout=5',
  TE: 'trailers',
  Trailer: 'x-checksum',
  'Transfer-Encoding': 'chunked',
  Upgrade: 'websocket',
  'Proxy-Authorization': 'Basic Zm9vOmJhcg==',
  'Proxy-Authenticate': 'Basic',
  'Proxy-Connection': 'keep-alive',
  Expect: '100-continue',
  Host: 'gw.example:3000',
  'HTTP2-Settings': 'AAMAAABkAAQAAP__',
};

describe('connectionTokens', () => {
  const cases: Array<[string | undefined, string[] | null]> = [
    [undefined, null],
    ['keep-alive', null],
    [' Close ', null],
    ['x-foo, x-bar', ['x-foo', 'x-bar']],
    ['close,X-Foo ,  X-BAR', ['close', 'x-foo', 'x-bar']],
    [',,', []],
  ];
  for (const [value, want] of cases) {
    test(JSON.stringify(value), () => assert.deepEqual(connectionTokens(value) && [...connectionTokens(value)!], want));
  }
});

describe('scanRequestHeaders', () => {
  test('reads what the proxy needs in one pass', () => {
    const h = scanRequestHeaders(flat({ Host: 'h:1', 'Content-Length': '12', 'X-Request-Id': 'r', Expect: '100-Continue' }));
    assert.equal(h.host, 'h:1');
    assert.equal(h.contentLength, 12);
    assert.equal(h.requestId, 'r');
    assert.equal(h.expectContinue, true);
    assert.equal(h.chunked, false);
    assert.equal(scanRequestHeaders(flat({ 'Transfer-Encoding': 'chunked' })).chunked, true);
  });
});

describe('upstreamRequestHeaders', () => {
  test('strips every hop-by-hop header', () => {
    const out = upstream({ ...HOP_BY_HOP });
    for (const name of Object.keys(HOP_BY_HOP)) {
      if (name === 'Host') continue;
      assert.ok(!(name.toLowerCase() in out), `${name} forwarded`);
    }
    assert.equal(out['host'], info.upstreamHost);
  });

  const connectionCases: Array<[string, string | string[]]> = [
    ['a comma list', 'x-foo, x-bar'],
    ['mixed case and odd spacing', 'close,X-Foo ,  X-BAR'],
    ['two Connection headers', ['x-foo', 'keep-alive, x-bar']],
  ];
  for (const [name, connection] of connectionCases) {
    test(`strips headers named in Connection (${name})`, () => {
      const out = upstream({ Connection: connection, 'X-Foo': '1', 'X-Bar': '2', 'X-Baz': '3' });
      assert.equal(out['x-foo'], undefined);
      assert.equal(out['x-bar'], undefined);
      assert.equal(out['connection'], undefined);
      assert.equal(out['x-baz'], '3');
    });
  }

  test('keeps end-to-end headers as they are, repeated ones included', () => {
    const headers = {
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
    const out = upstream(headers);
    for (const [k, v] of Object.entries(headers)) assert.deepEqual(out[k], v, k);
  });

  const xffCases: Array<[string, string | string[] | undefined, string]> = [
    ['none → client ip', undefined, '203.0.113.7'],
    ['empty → client ip', '', '203.0.113.7'],
    ['blank → client ip', '   ', '203.0.113.7'],
    ['string → appended', '198.51.100.1', '198.51.100.1, 203.0.113.7'],
    ['chain → appended', '198.51.100.1, 10.1.1.1', '198.51.100.1, 10.1.1.1, 203.0.113.7'],
    ['repeated header → joined and appended', ['198.51.100.1', '10.1.1.1'], '198.51.100.1, 10.1.1.1, 203.0.113.7'],
  ];
  for (const [name, prior, expected] of xffCases) {
    test(`X-Forwarded-For: ${name}`, () => {
      assert.equal(upstream(prior === undefined ? {} : { 'X-Forwarded-For': prior })['x-forwarded-for'], expected);
    });
  }

  test('an X-Forwarded-For named in Connection is dropped, not prepended', () => {
    assert.equal(upstream({ Connection: 'x-forwarded-for', 'X-Forwarded-For': '6.6.6.6' })['x-forwarded-for'], '203.0.113.7');
  });

  test('X-Forwarded-Proto/Host, X-Real-IP, X-Request-Id and Host are the gateway\'s, whatever the client sent', () => {
    const out = upstream({
      Host: 'gw.example:3000',
      'X-Forwarded-Proto': 'https',
      'X-Forwarded-Host': 'spoofed.example',
      'X-Forwarded-Port': '443',
      'X-Real-IP': '6.6.6.6',
      'X-Request-Id': 'client-supplied',
    });
    assert.equal(out['x-forwarded-proto'], 'http');
    assert.equal(out['x-forwarded-host'], 'gw.example:3000');
    assert.equal(out['x-forwarded-port'], undefined);
    assert.equal(out['x-real-ip'], '203.0.113.7');
    assert.equal(out['x-request-id'], 'req-1');
    assert.equal(out['host'], '10.0.0.5:8080');
  });

  test('Forwarded (RFC 7239) is removed', () => {
    assert.equal(upstream({ Forwarded: 'for=6.6.6.6;proto=https' })['forwarded'], undefined);
  });

  test('Via gets this hop appended', () => {
    assert.equal(upstream({})['via'], '1.1 gateway');
    assert.equal(upstream({ Via: '1.0 edge' })['via'], '1.0 edge, 1.1 gateway');
  });

  test("a malformed Via (an unclosed comment) can't swallow this hop's entry", () => {
    const via = String(upstream({ Via: '1.1 x (' })['via']);
    assert.match(via, /(^|, )1\.1 gateway$/);
  });

  test('a Connection header cannot remove the headers the gateway sets', () => {
    const out = upstream({ Connection: 'x-request-id, host, x-forwarded-proto, x-real-ip, via', 'X-Forwarded-For': '198.51.100.1' });
    assert.equal(out['x-request-id'], 'req-1');
    assert.equal(out['host'], '10.0.0.5:8080');
    assert.equal(out['x-forwarded-proto'], 'http');
    assert.equal(out['x-real-ip'], '203.0.113.7');
    assert.equal(out['via'], '1.1 gateway');
    assert.equal(out['x-forwarded-for'], '198.51.100.1, 203.0.113.7');
  });

  test('does not change the scanned request (each attempt builds its own list)', () => {
    const head = scanRequestHeaders(flat({ 'X-A': '1' }));
    const before = [...head.forward];
    upstreamRequestHeaders(head, info);
    upstreamRequestHeaders(head, { ...info, upstreamHost: 'other:1' });
    assert.deepEqual(head.forward, before);
  });
});

describe('clientResponseHeaders', () => {

  test('strips hop-by-hop headers, adds the gateway\'s own', () => {
    const out = obj(clientResponseHeaders(flat({ ...HOP_BY_HOP, 'Content-Type': 'text/plain' }), ['x-request-id', 'r1']));
    for (const name of Object.keys(HOP_BY_HOP)) assert.ok(!(name.toLowerCase() in out), `${name} forwarded`);
    assert.deepEqual(out, { 'content-type': 'text/plain', 'x-request-id': 'r1' });
  });

  test('strips headers named in Connection', () => {
    assert.deepEqual(obj(clientResponseHeaders(flat({ Connection: 'x-internal', 'X-Internal': 'secret', 'X-Public': 'ok' }), [])), { 'x-public': 'ok' });
  });

  test('strips headers named in every Connection header, comma lists included', () => {
    const raw = ['Connection', 'keep-alive', 'X-Public', 'ok', 'Connection', 'x-one', 'connection', ' X-Two ,x-three', 'X-One', 's1', 'X-Two', 's2', 'x-three', 's3'];
    assert.deepEqual(clientResponseHeaders(raw, []), ['X-Public', 'ok']);
  });

  test("an upstream's own X-Request-Id / X-Upstream-Instance never shadow the gateway's", () => {
    const out = obj(clientResponseHeaders(flat({ 'X-Request-Id': 'up', 'X-Upstream-Instance': 'lie' }), ['x-request-id', 'r1', 'x-upstream-instance', 'i1']));
    assert.deepEqual(out, { 'x-request-id': 'r1', 'x-upstream-instance': 'i1' });
  });

  test('keeps repeated Set-Cookie, content-length, content-encoding and other end-to-end headers', () => {
    const headers = {
      'set-cookie': ['a=1; Path=/', 'b=2; HttpOnly'],
      'content-length': '123',
      'content-encoding': 'gzip',
      etag: '"abc"',
      location: '/elsewhere',
    };
    assert.deepEqual(obj(clientResponseHeaders(flat(headers), [])), headers);
  });

  test('bytes above 0x7f pass through as they came (the parser reads them as latin1)', () => {
    const out = clientResponseHeaders(['x-name', Buffer.from([0x63, 0xe9]).toString('latin1')], []);
    assert.deepEqual(out, ['x-name', 'c\u00e9']);
  });
});

describe('safeHeaderValue', () => {
  const cases: Array<[string, string]> = [
    ['web-1', 'web-1'],
    ['registrator:abc:3000', 'registrator:abc:3000'],
    ['caf\u00e9', 'caf%C3%A9'],
    ['\u{1F680}-1', '%F0%9F%9A%80-1'],
    ['a b', 'a%20b'],
    ['line\r\nX-Evil: 1', 'line%0D%0AX-Evil%3A%201'],
    ['', ''],
  ];
  for (const [id, want] of cases) {
    test(JSON.stringify(id), () => {
      const v = safeHeaderValue(id);
      assert.equal(v, want);
      assert.match(v, /^[\x21-\x7e]*$/);
    });
  }
});
