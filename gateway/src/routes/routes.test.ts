import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, startHarness, startUpstream, type Harness } from '../testing/harness.js';

type Up = Awaited<ReturnType<typeof startUpstream>>;

describe('declared routes through the real proxy path', () => {
  let gw: Harness;
  let users: Up;
  let shop: Up;
  let web: Up;
  let canary: Up;

  before(async () => {
    const answer = (name: string) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) =>
      res.end(JSON.stringify({ name, url: req.url, host: req.headers.host, xfh: req.headers['x-forwarded-host'] }));
    users = await startUpstream(answer('users'));
    shop = await startUpstream(answer('shop'));
    web = await startUpstream(answer('web'));
    canary = await startUpstream(answer('web-v2'));
    gw = await startHarness();
    gw.setService('users', [{ ...users.instance('u1', 'users'), tags: ['gateway.route=/api/users', 'gateway.strip=/api', 'gateway.default=off'] }]);
    gw.setService('shop', [{ ...shop.instance('s1', 'shop'), tags: ['gateway.route=shop.localhost/'] }]);
    gw.setService('web', [{ ...web.instance('w1', 'web'), tags: ['gateway.route=/web strip=/web'] }]);
    gw.setService('web-v2', [{ ...canary.instance('c1', 'web-v2'), tags: ['gateway.route=/web strip=/web weight=20'] }]);
  });
  after(async () => {
    await gw.close();
    for (const u of [users, shop, web, canary]) await u.close();
  });

  test('a path route with strip reaches its service with the prefix removed; the query is kept', async () => {
    const r = await request(gw.url, '/api/users/7?x=1');
    assert.equal(r.status, 200);
    assert.deepEqual([r.json().name, r.json().url], ['users', '/users/7?x=1']);
  });

  test('a host route takes every path of its host; X-Forwarded-Host is the client\'s', async () => {
    const r = await request(gw.url, '/anything/at/all', { headers: { host: 'shop.localhost:8080' } });
    assert.deepEqual([r.json().name, r.json().url, r.json().xfh], ['shop', '/anything/at/all', 'shop.localhost:8080']);
  });

  test('a routed host owns its /, /metrics and /favicon.ico; /_gateway/* stays the gateway\'s', async () => {
    for (const path of ['/', '/?q=1', '/metrics', '/favicon.ico']) {
      const r = await request(gw.url, path, { headers: { host: 'shop.localhost' } });
      assert.deepEqual([r.status, r.json().name, r.json().url], [200, 'shop', path], path);
    }
    const own = await request(gw.url, '/_gateway/health', { headers: { host: 'shop.localhost' } });
    assert.equal(own.json().status, 'ok');
    const index = await request(gw.url, '/', { headers: { host: 'other.localhost', accept: 'application/json' } });
    assert.equal(index.json().synced, true, 'any other host: the gateway\'s own index');
  });

  test('the default /<service>/ route still works, and gateway.default=off turns it off with a JSON 404', async () => {
    const r = await request(gw.url, '/shop/x');
    assert.deepEqual([r.status, r.json().name, r.json().url], [200, 'shop', '/x']);
    const off = await request(gw.url, '/users/x');
    assert.equal(off.status, 404);
    assert.equal(off.json().error, 'no_route');
  });

  test('dot segments and encoded slashes cannot jump routes', async () => {
    assert.equal((await request(gw.url, '/web/../api/users/1')).status, 400);
    assert.equal((await request(gw.url, '/web/%2e%2e/api/users')).status, 400);
    // /api%2Fusers is one segment: no route has it, and "api%2Fusers" is no service name
    assert.equal((await request(gw.url, '/api%2Fusers/1')).status, 400);
  });

  test('an 80/20 split is exact over 100 requests through the proxy', async () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      const r = await request(gw.url, '/web/');
      counts[r.json().name] = (counts[r.json().name] ?? 0) + 1;
      assert.equal(r.json().url, '/');
    }
    assert.deepEqual(counts, { web: 80, 'web-v2': 20 });
  });

  test('GET /_gateway/explain/route says which route, which services and why the others lost', async () => {
    const r = await request(gw.url, '/_gateway/explain/route?host=shop.localhost&path=/web/x');
    assert.equal(r.status, 200);
    const b = r.json();
    assert.equal(b.matched.kind, 'host');
    assert.equal(b.matched.route, 'shop.localhost/');
    assert.ok(b.others.some((o: { route: string; why: string }) => o.route === '/web' && /lost to shop.localhost\//.test(o.why)), JSON.stringify(b.others));
    const s = (await request(gw.url, '/_gateway/explain/route?path=/web/a')).json();
    assert.equal(s.matched.kind, 'path');
    assert.deepEqual(s.matched.services.map((x: { service: string; percent: number }) => [x.service, x.percent]), [['web', 80], ['web-v2', 20]]);
    assert.equal(s.upstreamPath, '/a');
    const bad = await request(gw.url, '/_gateway/explain/route?path=nope');
    assert.equal(bad.status, 400);
    assert.equal(bad.json().error, 'bad_request');
  });

  test('GET /_gateway/routes lists routes, shares and what is off', async () => {
    const b = (await request(gw.url, '/_gateway/routes')).json();
    assert.deepEqual(b.routes.map((r: { route: string }) => r.route), ['/api/users', '/web', 'shop.localhost/']);
    assert.deepEqual(b.defaultRouteOff, ['users']);
    assert.equal(b.conflicts, 0);
  });
});
