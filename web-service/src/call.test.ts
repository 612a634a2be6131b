import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, type Instance } from '@stack/shared';
import { createCaller, upstreamUrl, type ServiceDirectory } from './call.js';
import { HttpError } from './http.js';

const log = createLogger('web-service', 'silent');

describe('upstreamUrl', () => {
  test('origin from address and port, path and query kept raw', () => {
    assert.equal(upstreamUrl('10.0.0.1', 3000, '/a/b%20c', 'x=1&y=%2F').href, 'http://10.0.0.1:3000/a/b%20c?x=1&y=%2F');
    assert.equal(upstreamUrl('10.0.0.1', 3000, '', '').href, 'http://10.0.0.1:3000/');
    assert.equal(upstreamUrl('10.0.0.1', 3000, '/a/', '').href, 'http://10.0.0.1:3000/a/');
    assert.equal(upstreamUrl('fd00::1', 8080, '/x', '').href, 'http://[fd00::1]:8080/x');
  });

  test('nothing in the path can change the host', () => {
    for (const p of ['/@evil.com', '/:80@evil.com/x', '/http:%2F%2Fevil.com', '/%2F%2Fevil.com']) {
      const url = upstreamUrl('10.0.0.1', 3000, p, '');
      assert.equal(url.host, '10.0.0.1:3000', p);
    }
    assert.equal(upstreamUrl('10.0.0.1', 3000, '/x', 'a=1#@evil.com').host, '10.0.0.1:3000');
  });

  test('dot segments, empty segments, backslashes and bad escapes are refused', () => {
    for (const p of ['/..', '/a/../b', '/./a', '/%2e%2e/a', '/a/%2E', '//evil.com', '/a//b', '/a\\b', '/a%5cb', '/%zz', 'relative']) {
      assert.throws(() => upstreamUrl('10.0.0.1', 3000, p, ''), (e: unknown) => e instanceof HttpError && e.status === 400, p);
    }
  });
});

// Real upstream servers; each answers with who it is and what it got.
const servers: http.Server[] = [];
async function upstream(name: string, handler?: http.RequestListener): Promise<Instance> {
  const server = http.createServer(
    handler ??
      ((req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ name, url: req.url, requestId: req.headers['x-request-id'] }));
      }),
  );
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { id: name, service: 'svc', address: '127.0.0.1', port, node: 'n1', tags: [] };
}
async function refusedPort(name: string): Promise<Instance> {
  const inst = await upstream(name);
  const s = servers.pop()!;
  await new Promise((r) => s.close(r));
  return inst;
}
after(() => {
  for (const s of servers) s.closeAllConnections(), s.close();
});

function directory(services: Record<string, Instance[]>) {
  const watched: string[] = [];
  const dir: ServiceDirectory & { watched: string[] } = {
    watched,
    table: { services: new Map(Object.entries(services)) },
    async watchService(name) {
      watched.push(name);
    },
  };
  return dir;
}

function caller(dir: ServiceDirectory, extra: { timeoutMs?: number; maxServices?: number } = {}) {
  return createCaller({ directory: dir, timeoutMs: extra.timeoutMs ?? 2000, discoveryTimeoutMs: 100, maxServices: extra.maxServices ?? 32, log });
}

const req = (service: string, path = '/info', query = '') => ({ service, path, query, requestId: 'rid-1' });

async function rejectsWith(p: Promise<unknown>, status: number, code: string) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof HttpError, String(e));
    assert.equal(e.status, status);
    assert.equal(e.code, code);
    return true;
  });
}

describe('createCaller', () => {
  test('round robin across instances, JSON body, path, query and request id passed on', async () => {
    const dir = directory({ svc: [await upstream('a'), await upstream('b')] });
    const c = caller(dir);
    const r1 = await c.call(req('svc', '/p/q', 'x=1'));
    const r2 = await c.call(req('SVC', '/p/q', 'x=1'));
    c.close();
    assert.deepEqual([r1.target.id, r2.target.id], ['a', 'b']);
    assert.equal(r1.status, 200);
    assert.deepEqual(r1.body, { name: 'a', url: '/p/q?x=1', requestId: 'rid-1' });
    assert.equal(r1.attempts, 1);
    assert.deepEqual(dir.watched, ['svc', 'SVC']);
  });

  test('upstream status, text bodies and redirects are passed through as answers', async () => {
    const inst = await upstream('t', (_req, res) => {
      res.writeHead(302, { location: 'http://elsewhere/', 'content-type': 'text/plain' });
      res.end('moved');
    });
    const c = caller(directory({ svc: [inst] }));
    const r = await c.call(req('svc'));
    c.close();
    assert.equal(r.status, 302);
    assert.equal(r.body, 'moved');
  });

  test('a refused connection is retried once on another instance', async () => {
    const dead = await refusedPort('a-dead');
    const dir = directory({ svc: [dead, await upstream('b')] });
    const c = caller(dir);
    const r = await c.call(req('svc'));
    c.close();
    assert.equal(r.target.id, 'b');
    assert.equal(r.attempts, 2);
  });

  test('every instance refusing is a 502', async () => {
    const c = caller(directory({ svc: [await refusedPort('x'), await refusedPort('y')] }));
    await rejectsWith(c.call(req('svc')), 502, 'upstream_unreachable');
    c.close();
  });

  test('the Via it is given goes upstream, and none when not given', async () => {
    const seen: Array<string | undefined> = [];
    const inst = await upstream('v', (req, res) => {
      seen.push(req.headers.via);
      res.end('ok');
    });
    const c = caller(directory({ svc: [inst] }));
    await c.call({ ...req('svc'), via: '1.1 gateway, 1.1 service-web (call)' });
    await c.call(req('svc'));
    c.close();
    assert.deepEqual(seen, ['1.1 gateway, 1.1 service-web (call)', undefined]);
  });

  test('a reset (the instance may have got it) is retried once elsewhere: /call only GETs', async () => {
    let resets = 0;
    const reset = await upstream('r', (req) => {
      resets += 1;
      req.socket.destroy();
    });
    const c = caller(directory({ svc: [reset, await upstream('ok')] }));
    const r = await c.call(req('svc'));
    assert.equal(r.target.id, 'ok');
    assert.equal(r.attempts, 2);
    assert.equal(resets, 1);
    c.close();
  });

  test('every instance resetting is a 502 after two attempts', async () => {
    let hits = 0;
    const reset: http.RequestListener = (req) => {
      hits += 1;
      req.socket.destroy();
    };
    const c = caller(directory({ svc: [await upstream('r1', reset), await upstream('r2', reset), await upstream('r3', reset)] }));
    await rejectsWith(c.call(req('svc')), 502, 'upstream_unreachable');
    assert.equal(hits, 2, 'one retry, not one per instance');
    c.close();
  });

  test('the timeout covers the whole call: a retry gets only what is left', async () => {
    // The first attempt uses half the budget, so a retry given a whole timeout of its own
    // (the bug) would end at 300 + 600 = 900 ms at the earliest: 250 ms of room for a
    // loaded machine above the 600 ms a correct caller takes.
    const slowReset = await upstream('sr', (req) => void setTimeout(() => req.socket.destroy(), 300));
    let retried = 0;
    const hang = await upstream('h', () => void (retried += 1));
    const c = caller(directory({ svc: [slowReset, hang] }), { timeoutMs: 600 });
    const t0 = Date.now();
    await rejectsWith(c.call(req('svc')), 504, 'upstream_timeout');
    const took = Date.now() - t0;
    assert.equal(retried, 1, 'the reset was retried on the other instance');
    assert.ok(took >= 590 && took < 850, `took ${took} ms, not 300 + 600`);
    c.close();
  });

  test('a slow upstream is a 504 and is not retried', async () => {
    let hits = 0;
    const hang: http.RequestListener = () => {
      hits += 1;
    };
    const c = caller(directory({ svc: [await upstream('s1', hang), await upstream('s2', hang)] }), { timeoutMs: 150 });
    await rejectsWith(c.call(req('svc')), 504, 'upstream_timeout');
    c.close();
    assert.equal(hits, 1);
  });

  test('an oversized body is a 502, not buffered without bound', async () => {
    const big = await upstream('big', (_req, res) => res.end(Buffer.alloc(2 * 1024 * 1024, 97)));
    const c = caller(directory({ svc: [big] }));
    await rejectsWith(c.call(req('svc')), 502, 'upstream_error');
    c.close();
  });

  test('no passing instance: 503 with Retry-After', async () => {
    const c = caller(directory({ svc: [] }));
    await assert.rejects(c.call(req('svc')), (e: unknown) => {
      assert.ok(e instanceof HttpError);
      assert.equal(e.status, 503);
      assert.equal(e.code, 'no_instances');
      assert.equal(e.headers['Retry-After'], '1');
      return true;
    });
  });

  test('discovery without an answer: 503 discovery_unavailable', async () => {
    await rejectsWith(caller(directory({})).call(req('svc')), 503, 'discovery_unavailable');
  });

  test('invalid names and paths are 400 before discovery is asked', async () => {
    const dir = directory({});
    const c = caller(dir);
    await rejectsWith(c.call(req('bad_name')), 400, 'invalid_service');
    await rejectsWith(c.call(req('a.b')), 400, 'invalid_service');
    await rejectsWith(c.call(req('svc', '/../x')), 400, 'invalid_path');
    assert.deepEqual(dir.watched, []);
  });

  test('the number of distinct watched services is capped', async () => {
    const dir = directory({ a: [], b: [] });
    const c = caller(dir, { maxServices: 2 });
    await rejectsWith(c.call(req('a')), 503, 'no_instances');
    await rejectsWith(c.call(req('b')), 503, 'no_instances');
    await rejectsWith(c.call(req('c')), 503, 'too_many_services');
    await rejectsWith(c.call(req('A')), 503, 'no_instances'); // same service, any case
    assert.deepEqual(dir.watched, ['a', 'b', 'A']);
  });
});
// /call through the shared Discovery against a real Consul: test/integration/routing.test.ts.
