import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context } from 'koa';
import { createLogger, emptyTable, setService, type ConsulState, type Instance, type RouteTable } from '@stack/shared';
import { createApp, type AppDeps } from './app.js';
import { GatewayError } from './errors.js';
import { OutlierDetector } from './outlier.js';
import { instanceKey } from './picker.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const inst = (id: string, port: number): Instance => ({ id, service: 'service-web', address: '10.0.0.1', port, node: 'n1', tags: [] });
const W1 = inst('web-1', 8081);
const W2 = inst('web-2', 8082);
const CHANGED_AT = new Date('2024-05-01T12:00:00.000Z');
const SYNCED_AT = new Date('2024-05-01T12:00:05.000Z');

let table: RouteTable = setService(emptyTable, 'service-web', [W1, W2], CHANGED_AT);
table = setService(table, 'empty', [], CHANGED_AT);

const consulOk: ConsulState = {
  reachable: true,
  agent: 'http://127.0.0.1:8500',
  lastContact: SYNCED_AT.toISOString(),
  lastError: null,
  knownLeader: true,
  lastContactMs: 0,
  degraded: false,
  reasons: [],
};

interface Call {
  service: string;
  path: string;
  querystring: string;
}

/** Mutable knobs the tests flip; the server reads them on each request. */
const state = { synced: true, consul: consulOk, calls: [] as Call[] };

const now = Date.now();
const outliers = new OutlierDetector(
  { consecutiveFailures: 1, baseEjectMs: 60_000, maxEjectMs: 60_000, maxEjectPercent: 50 },
  () => now,
);
outliers.failure(instanceKey(W2), [W1, W2].map(instanceKey));

async function proxy(ctx: Context, service: string, path: string): Promise<void> {
  state.calls.push({ service, path, querystring: ctx.querystring });
  if (service === 'empty') throw new GatewayError('no_instance', `"${service}" has no passing instance right now`, service, 3);
  if (service === 'boom') throw new Error('secret internal detail /etc/passwd');
  if (service === 'boom-string') throw 'a thrown string';
  ctx.body = { proxied: service, path };
}

const deps: AppDeps = {
  table: () => table,
  synced: () => state.synced,
  syncedAt: () => (state.synced ? SYNCED_AT : null),
  consul: () => state.consul,
  outliers,
  inflight: () => 7,
  log: createLogger('test', 'silent'),
  proxy,
};

let server: http.Server;
let port = 0;

before(async () => {
  server = http.createServer(createApp(deps).callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: () => any;
}

/** A raw request: the path goes on the wire exactly as given (fetch would normalise dot segments). */
function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers: { connection: 'close', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, headers: res.headers, text, json: () => JSON.parse(text) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function assertErrorBody(res: Res, status: number, error: string, service: string | null) {
  assert.equal(res.status, status, res.text);
  assert.match(String(res.headers['content-type']), /application\/json/);
  const body = res.json();
  assert.deepEqual(Object.keys(body).sort(), ['error', 'message', 'requestId', 'service']);
  assert.equal(body.error, error);
  assert.equal(body.service, service);
  assert.equal(typeof body.message, 'string');
  assert.ok(body.message.length > 0);
  assert.equal(body.requestId, res.headers['x-request-id']);
  assert.ok(!/\bat .*\.(ts|js):\d+/.test(res.text), 'no stack trace');
  assert.ok(!res.text.includes('stack'));
  assert.equal(res.headers['cache-control'], 'no-store');
  return body;
}

describe('createApp: /_gateway/health', () => {
  test('200 with its fields when synced', async () => {
    state.synced = true;
    state.consul = consulOk;
    const res = await get('/_gateway/health');
    assert.equal(res.status, 200);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.deepEqual(res.json(), {
      status: 'ok',
      synced: true,
      syncedAt: SYNCED_AT.toISOString(),
      services: 2,
      tableChangedAt: CHANGED_AT.toISOString(),
      inflight: 7,
      consul: consulOk,
    });
  });

  test('200 "degraded" when Consul is degraded but the table is synced', async () => {
    state.synced = true;
    state.consul = { ...consulOk, reachable: false, degraded: true, reasons: ['consul unreachable'] };
    try {
      const res = await get('/_gateway/health');
      assert.equal(res.status, 200);
      assert.equal(res.json().status, 'degraded');
      assert.deepEqual(res.json().consul.reasons, ['consul unreachable']);
    } finally {
      state.consul = consulOk;
    }
  });

  test('503 "starting" when not synced', async () => {
    state.synced = false;
    try {
      const res = await get('/_gateway/health');
      assert.equal(res.status, 503);
      const body = res.json();
      assert.equal(body.status, 'starting');
      assert.equal(body.synced, false);
      assert.equal(body.syncedAt, null);
    } finally {
      state.synced = true;
    }
  });
});

describe('createApp: /_gateway/services', () => {
  test('the table as JSON, with ejections', async () => {
    const res = await get('/_gateway/services');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /application\/json/);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.deepEqual(res.json(), {
      synced: true,
      version: 2,
      changedAt: CHANGED_AT.toISOString(),
      services: {
        'service-web': [
          { id: 'web-1', address: '10.0.0.1', port: 8081, node: 'n1' },
          { id: 'web-2', address: '10.0.0.1', port: 8082, node: 'n1', ejectedUntil: new Date(now + 60_000).toISOString() },
        ],
        empty: [],
      },
    });
  });
});

describe('createApp: /', () => {
  test('HTML for a browser', async () => {
    const res = await get('/', { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(res.text, /^<!doctype html>/);
    assert.ok(res.text.includes('<a href="/service-web/">'));
  });

  for (const accept of ['application/json', 'text/plain']) {
    test(`JSON for Accept: ${accept}`, async () => {
      const res = await get('/', { accept });
      assert.equal(res.status, 200);
      assert.match(String(res.headers['content-type']), /application\/json/);
      const body = res.json();
      assert.equal(body.synced, true);
      assert.deepEqual(body.consul, consulOk);
      assert.equal(body.version, 2);
      assert.deepEqual(Object.keys(body.services).sort(), ['empty', 'service-web']);
    });
  }

  test('favicon is an empty 204, not a proxied request', async () => {
    const before = state.calls.length;
    const res = await get('/favicon.ico');
    assert.equal(res.status, 204);
    assert.equal(state.calls.length, before);
  });
});

describe('createApp: unknown gateway endpoints', () => {
  for (const path of ['/_gateway/nope', '/_gateway', '/_gateway/', '/_gateway/health/x']) {
    test(`${path} → 404 JSON`, async () => {
      const before = state.calls.length;
      const res = await get(path);
      assertErrorBody(res, 404, 'not_found', null);
      assert.equal(state.calls.length, before, 'not proxied');
    });
  }
});

describe('createApp: routing to the proxy', () => {
  test('service and path handed to the proxy', async () => {
    const res = await get('/service-web/api/items');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { proxied: 'service-web', path: '/api/items' });
  });

  test('the name is lowercased and the query is not part of the path', async () => {
    state.calls = [];
    const res = await get('/Service-Web/x?q=1&r=a%2Fb');
    assert.equal(res.status, 200);
    assert.deepEqual(state.calls, [{ service: 'service-web', path: '/x', querystring: 'q=1&r=a%2Fb' }]);
  });

  test('an empty query (/Service-Web/x?) is not part of the path either', async () => {
    state.calls = [];
    await get('/Service-Web/x?');
    assert.deepEqual(state.calls, [{ service: 'service-web', path: '/x', querystring: '' }]);
  });

  test('bare /service-web goes to /', async () => {
    state.calls = [];
    await get('/service-web');
    assert.deepEqual(state.calls.map((c) => c.path), ['/']);
  });

  test('the rest of the path is passed raw', async () => {
    state.calls = [];
    await get('/service-web/a%2Fb//host/x');
    assert.deepEqual(state.calls.map((c) => c.path), ['/a%2Fb//host/x']);
  });
});

describe('createApp: invalid requests → 400 JSON', () => {
  const badNames = ['//evil.com/x', '/..', '/%2e%2e/x', '/a.b/', '/user@host/', '/host:80/', '/svc%2Fother/', '/svc_x/'];
  for (const path of badNames) {
    test(`${path} → invalid_service_name`, async () => {
      state.calls = [];
      const res = await get(path, { accept: 'application/json' });
      assertErrorBody(res, 400, 'invalid_service_name', null);
      assert.deepEqual(state.calls, []);
    });
  }

  const badPaths = ['/svc/../x', '/svc/%2e%2e/x', '/svc/.%2E/x', '/svc/a/./b', '/svc/a\\b', '/svc/a%5cb', '/Svc/..'];
  for (const path of badPaths) {
    test(`${path} → invalid_path`, async () => {
      state.calls = [];
      const res = await get(path);
      assertErrorBody(res, 400, 'invalid_path', 'svc');
      assert.deepEqual(state.calls, []);
    });
  }
});

describe('createApp: X-Request-Id', () => {
  const kept = ['abc-123', 'A.b_c:d-9', 'x'.repeat(128)];
  for (const id of kept) {
    test(`a sane id is echoed (${id.length > 20 ? `${id.length} chars` : id})`, async () => {
      const res = await get('/a.b/', { 'x-request-id': id });
      assert.equal(res.headers['x-request-id'], id);
      assert.equal(res.json().requestId, id);
    });
  }

  test('generated (uuid) when not given', async () => {
    const res = await get('/_gateway/health');
    assert.match(String(res.headers['x-request-id']), UUID);
  });

  test('each request gets its own id', async () => {
    const [a, b] = await Promise.all([get('/_gateway/health'), get('/_gateway/health')]);
    assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
  });

  const unsafe = ['has space', 'tab\there', 'a"b', '<script>', 'a;b=c', 'x'.repeat(129), 'y'.repeat(200), 'caf\u00e9', ''];
  for (const id of unsafe) {
    test(`replaced by a uuid when unsafe (${JSON.stringify(id.length > 20 ? `${id.length} chars` : id)})`, async () => {
      const res = await get('/a.b/', { 'x-request-id': id });
      assert.match(String(res.headers['x-request-id']), UUID);
      assert.equal(res.json().requestId, res.headers['x-request-id']);
      if (id) assert.ok(!res.text.includes(id));
    });
  }
});

describe('createApp: errors from the proxy', () => {
  test('a GatewayError 503 with Retry-After', async () => {
    const res = await get('/empty/x', { 'x-request-id': 'rid-503' });
    const body = assertErrorBody(res, 503, 'no_instance', 'empty');
    assert.equal(res.headers['retry-after'], '3');
    assert.equal(body.requestId, 'rid-503');
    assert.match(body.message, /no passing instance/);
  });

  test('an unexpected Error → 500 internal, without the error text', async () => {
    const res = await get('/boom/x');
    const body = assertErrorBody(res, 500, 'internal', null);
    assert.ok(!res.text.includes('secret'));
    assert.ok(!res.text.includes('/etc/passwd'));
    assert.equal(res.headers['retry-after'], undefined);
    assert.match(String(body.requestId), UUID);
  });

  test('a thrown non-Error → 500 internal', async () => {
    const res = await get('/boom-string/');
    assertErrorBody(res, 500, 'internal', null);
    assert.ok(!res.text.includes('a thrown string'));
  });

  test('400s have no Retry-After', async () => {
    const res = await get('/a.b/');
    assert.equal(res.headers['retry-after'], undefined);
  });
});
