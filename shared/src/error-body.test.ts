import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ERROR_STATUS, errorBody, rawJsonResponse, sendJsonError, sendKoaJsonError } from './error-body.js';

describe('errorBody', () => {
  const cases: Array<[string, Parameters<typeof errorBody>, Record<string, unknown>]> = [
    ['plain', [404, 'not_found', 'no route', 'r1'], { error: 'not_found', message: 'no route', status: 404, requestId: 'r1' }],
    ['extra fields', [503, 'no_instance', 'none', 'r2', { service: 'svc' }], { error: 'no_instance', message: 'none', status: 503, requestId: 'r2', service: 'svc' }],
    ['no request id is null', [500, 'internal', 'x', undefined], { error: 'internal', message: 'x', status: 500, requestId: null }],
    [
      'extra cannot replace the core fields',
      [400, 'bad', 'm', 'r3', { error: 'other', status: 200, requestId: 'forged', message: 'hi', service: null }],
      { error: 'bad', message: 'm', status: 400, requestId: 'r3', service: null },
    ],
  ];
  for (const [name, args, want] of cases) test(name, () => assert.deepEqual(errorBody(...args), want));

  test('key order: error, message, status, requestId, then extras', () => {
    assert.deepEqual(Object.keys(errorBody(502, 'e', 'm', 'r', { service: 's' })), ['error', 'message', 'status', 'requestId', 'service']);
  });
});

describe('sendJsonError', () => {
  let handler: http.RequestListener = () => {};
  const server = http.createServer((req, res) => handler(req, res));
  let base = '';
  after(() => (server.closeAllConnections(), server.close()));

  const start = async () => {
    if (!base) {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    }
  };

  test('status, JSON body and the fixed headers; extra headers kept, ours win', async () => {
    await start();
    const body = errorBody(503, 'no_instance', 'none', 'r1', { service: 's' });
    handler = (_req, res) => {
      res.setHeader('X-Request-Id', 'r1');
      sendJsonError(res, 503, body, { 'Retry-After': '1', 'Content-Type': 'text/html', 'X-Skip': undefined });
    };
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('retry-after'), '1');
    assert.equal(res.headers.get('x-request-id'), 'r1');
    assert.equal(res.headers.has('x-skip'), false);
    const text = await res.text();
    assert.equal(res.headers.get('content-length'), String(Buffer.byteLength(text)));
    assert.deepEqual(JSON.parse(text), body);
  });

  test('HEAD: headers only', async () => {
    await start();
    handler = (_req, res) => sendJsonError(res, 404, errorBody(404, 'not_found', 'é', null));
    const res = await fetch(`${base}/`, { method: 'HEAD' });
    assert.equal(res.status, 404);
    assert.ok(Number(res.headers.get('content-length')) > 0);
    assert.equal(await res.text(), '');
  });

  test('headers already sent: no throw, the connection is destroyed', async () => {
    await start();
    let threw: unknown = 'not called';
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
      setTimeout(() => {
        try {
          sendJsonError(res, 502, errorBody(502, 'upstream_error', 'broke', null));
          threw = null;
        } catch (err) {
          threw = err;
        }
      }, 50);
    };
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 200);
    await assert.rejects(res.text(), 'the body is cut, not ended');
    assert.equal(threw, null);
  });

  test('already ended or destroyed: nothing happens', async () => {
    await start();
    let threw: unknown = 'not called';
    handler = (_req, res) => {
      res.end('done');
      try {
        sendJsonError(res, 500, errorBody(500, 'internal', 'x', null));
        threw = null;
      } catch (err) {
        threw = err;
      }
    };
    const res = await fetch(`${base}/`);
    assert.equal(await res.text(), 'done');
    assert.equal(threw, null);
  });

  test('a bad header value from the caller does not throw', async () => {
    await start();
    let threw: unknown = 'not called';
    handler = (_req, res) => {
      try {
        sendJsonError(res, 400, errorBody(400, 'bad', 'x', null), { 'X-Bad': 'a\r\nb' });
        threw = null;
      } catch (err) {
        threw = err;
      }
    };
    await assert.rejects(fetch(`${base}/`));
    assert.equal(threw, null);
  });
});

describe('ERROR_STATUS: one table of codes', () => {
  test('every code is an error status', () => {
    for (const [code, status] of Object.entries(ERROR_STATUS)) assert.ok(status >= 400 && status < 600, `${code}: ${status}`);
  });
  test('one code for a bad service name, as docs/design.md lists it', () => {
    assert.equal(ERROR_STATUS.invalid_service_name, 400);
    assert.equal('invalid_service' in ERROR_STATUS, false);
  });
});

describe('rawJsonResponse', () => {
  test('status line and body from the table; headers; Connection: close', () => {
    const raw = rawJsonResponse('too_many_connections', 'full', { 'Retry-After': '1' });
    const [head, body] = raw.split('\r\n\r\n') as [string, string];
    const lines = head.split('\r\n');
    assert.equal(lines[0], 'HTTP/1.1 503 Service Unavailable');
    assert.ok(lines.includes('Retry-After: 1') && lines.includes('Connection: close') && lines.includes('Cache-Control: no-store'));
    assert.ok(lines.includes(`Content-Length: ${Buffer.byteLength(body)}`));
    assert.deepEqual(JSON.parse(body), { error: 'too_many_connections', message: 'full', status: 503, requestId: null });
  });
});

describe('sendKoaJsonError', () => {
  const ctx = () => {
    const c = { status: 404, body: undefined as unknown, headers: {} as Record<string, string>, set(f: Record<string, string>) { Object.assign(c.headers, f); } };
    return c;
  };
  test('status from the body, JSON headers win over given ones, compact by default', () => {
    const c = ctx();
    const body = errorBody(405, 'method_not_allowed', 'no', 'r1');
    sendKoaJsonError(c, body, { allow: 'GET', 'content-type': 'text/html' });
    assert.equal(c.status, 405);
    assert.deepEqual(c.headers, { allow: 'GET', 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    assert.equal(c.body, JSON.stringify(body));
  });
  test('indent > 0: the same body pretty-printed, with a final newline', () => {
    const c = ctx();
    const body = errorBody(500, 'internal', 'internal error', null);
    sendKoaJsonError(c, body, {}, 2);
    assert.equal(c.body, `${JSON.stringify(body, null, 2)}\n`);
  });
});
