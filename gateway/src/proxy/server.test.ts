import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isAdminPath, originForm } from './server.js';
import { assertErrorBody, request, startHarness, startUpstream, type Harness } from '../testing/harness.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('isAdminPath', () => {
  const cases: Array<[string, boolean]> = [
    ['/', true],
    ['/?x=1', true],
    ['/favicon.ico', true],
    ['/_gateway/health', true],
    ['/_gateway', true],
    ['/service-web/', false],
    ['/service-web', false],
    ['/a?b', false],
    ['/favicon.ico/x', false],
  ];
  for (const [url, admin] of cases) test(`${url} → ${admin ? 'admin' : 'proxy'}`, () => assert.equal(isAdminPath(url), admin));
});

describe('originForm', () => {
  const cases: Array<[string, string]> = [
    ['/svc/x', '/svc/x'],
    ['http://127.0.0.1:9/', '/'],
    ['http://127.0.0.1:9', '/'],
    ['http://evil.example/svc/x?a=1', '/svc/x?a=1'],
    ['HTTPS://h?x=1', '/?x=1'],
    ['*', '*'],
    ['svc:80', 'svc:80'],
  ];
  for (const [url, want] of cases) test(`${url} → ${want}`, () => assert.equal(originForm(url), want));
});

describe('the front: proxied requests skip the admin app', () => {
  let h: Harness;
  let up: Awaited<ReturnType<typeof startUpstream>>;
  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') => request(h.url, path, { headers, method });
  const last = () => up.seen.at(-1)!;

  before(async () => {
    up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ url: req.url }));
    });
    h = await startHarness();
    h.setService('service-web', [up.instance('web-1', 'service-web')]);
    h.setService('empty', []);
  });
  after(async () => {
    await h.close();
    await up.close();
  });

  test('service and path reach the instance', async () => {
    const res = await get('/service-web/api/items');
    assert.equal(res.status, 200);
    assert.equal(last().url, '/api/items');
  });

  test('the name is lowercased; the query string goes along', async () => {
    await get('/Service-Web/x?q=1&r=a%2Fb');
    assert.equal(last().url, '/x?q=1&r=a%2Fb');
  });

  test('an empty query (/Service-Web/x?) is dropped', async () => {
    await get('/Service-Web/x?');
    assert.equal(last().url, '/x');
  });

  test('bare /service-web goes to /', async () => {
    await get('/service-web');
    assert.equal(last().url, '/');
  });

  test('the rest of the path is passed raw', async () => {
    await get('/service-web/a%2Fb//host/x');
    assert.equal(last().url, '/a%2Fb//host/x');
  });

  const badNames = ['//evil.com/x', '/..', '/%2e%2e/x', '/a.b/', '/user@host/', '/host:80/', '/svc%2Fother/', '/svc_x/'];
  for (const path of badNames) {
    test(`${path} → 400 invalid_service_name, not proxied`, async () => {
      const before = up.seen.length;
      assertErrorBody(await get(path), 400, 'invalid_service_name', null);
      assert.equal(up.seen.length, before);
    });
  }

  const badPaths = ['/svc/../x', '/svc/%2e%2e/x', '/svc/.%2E/x', '/svc/a/./b', '/svc/a\\b', '/svc/a%5cb', '/Svc/..'];
  for (const path of badPaths) {
    test(`${path} → 400 invalid_path`, async () => {
      assertErrorBody(await get(path), 400, 'invalid_path', 'svc');
    });
  }

  test('an unknown service → 404', async () => {
    assertErrorBody(await get('/nosuch/'), 404, 'unknown_service', 'nosuch');
  });

  test('a service with no passing instance → 503 with Retry-After', async () => {
    const res = await get('/empty/x', { 'x-request-id': 'rid-503' });
    const body = assertErrorBody(res, 503, 'no_instance', 'empty');
    assert.equal(res.headers['retry-after'], '1');
    assert.equal(body.requestId, 'rid-503');
  });

  test('not synced yet → 503 not_ready', async () => {
    h.state.synced = false;
    try {
      assertErrorBody(await get('/nosuch/'), 503, 'not_ready', 'nosuch');
    } finally {
      h.state.synced = true;
    }
  });

  test('an unexpected error → 500 internal, without the error text', async () => {
    h.state.tableThrows = true;
    try {
      const res = await get('/service-web/');
      assertErrorBody(res, 500, 'internal', null);
      assert.ok(!res.text.includes('secret') && !res.text.includes('/etc/passwd'));
      assert.equal(res.headers['retry-after'], undefined);
    } finally {
      h.state.tableThrows = false;
    }
  });

  test('400s have no Retry-After', async () => {
    assert.equal((await get('/a.b/')).headers['retry-after'], undefined);
  });

  describe('X-Request-Id', () => {
    for (const id of ['abc-123', 'A.b_c:d-9', 'x'.repeat(128)]) {
      test(`a sane id is kept, on the answer and upstream (${id.length > 20 ? `${id.length} chars` : id})`, async () => {
        const res = await get('/service-web/', { 'x-request-id': id });
        assert.equal(res.headers['x-request-id'], id);
        assert.equal(last().headers['x-request-id'], id);
        assert.equal((await get('/a.b/', { 'x-request-id': id })).json().requestId, id);
      });
    }

    test('generated (uuid) when not given, one per request', async () => {
      const [a, b] = await Promise.all([get('/service-web/'), get('/service-web/')]);
      assert.match(String(a.headers['x-request-id']), UUID);
      assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
    });

    for (const id of ['has space', 'a"b', '<script>', 'a;b=c', 'x'.repeat(129), 'caf\u00e9']) {
      test(`replaced by a uuid when unsafe (${JSON.stringify(id.length > 20 ? `${id.length} chars` : id)})`, async () => {
        const res = await get('/a.b/', { 'x-request-id': id });
        assert.match(String(res.headers['x-request-id']), UUID);
        assert.equal(res.json().requestId, res.headers['x-request-id']);
        assert.ok(!res.text.includes(id));
      });
    }
  });
});
