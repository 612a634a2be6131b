import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ConsulState, createLogger, emptyTable, type Instance, instanceKey, type RouteTable, setService } from '@stack/shared';
import { createApp, type AppDeps } from './app.js';
import { OutlierDetector } from '../balancing/outlier.js';
import { assertErrorBody, request } from '../testing/harness.js';


const inst = (id: string, port: number): Instance => ({ id, service: 'service-web', address: '10.0.0.1', port, node: 'n1', tags: [], key: instanceKey('n1', id) });
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

const state = { synced: true, consul: consulOk };

const now = Date.now();
const outliers = new OutlierDetector(
  { consecutiveFailures: 1, baseEjectMs: 60_000, maxEjectMs: 60_000, maxEjectPercent: 50 },
  () => now,
);
outliers.failure(W2.key, [W1, W2].map((i) => i.key));

const deps: AppDeps = {
  table: () => table,
  synced: () => state.synced,
  syncedAt: () => (state.synced ? SYNCED_AT : null),
  consul: () => state.consul,
  outliers,
  inflight: () => 7,
  log: createLogger('test', 'silent'),
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

const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
  request(`http://127.0.0.1:${port}`, path, { headers, method });

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
          { id: 'web-1', key: 'n1/web-1', address: '10.0.0.1', port: 8081, node: 'n1' },
          { id: 'web-2', key: 'n1/web-2', address: '10.0.0.1', port: 8082, node: 'n1', ejectedUntil: new Date(now + 60_000).toISOString() },
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

  test('favicon is an empty 204', async () => {
    const res = await get('/favicon.ico');
    assert.equal(res.status, 204);
  });
});

describe('createApp: unknown gateway endpoints', () => {
  for (const path of ['/_gateway/nope', '/_gateway', '/_gateway/', '/_gateway/health/x']) {
    test(`${path} → 404 JSON`, async () => {
      const res = await get(path);
      assertErrorBody(res, 404, 'not_found', null);
    });
  }
});


describe('createApp: methods', () => {
  test('POST to an admin endpoint → 405 JSON with Allow', async () => {
    const res = await get('/_gateway/health', {}, 'POST');
    assertErrorBody(res, 405, 'method_not_allowed', null);
    assert.equal(res.headers.allow, 'GET, HEAD');
  });
});
