import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyTable, type Instance, instanceKey, type RouteTable, setService } from '@stack/shared';
import { parseRoute } from '../proxy/route.js';
import { matchRoute, normalHost, resolveRoute, stripPrefix } from './match.js';
import { buildRoutes, RouteBuilder } from './table.js';

const inst = (service: string, tags: string[], n = 1): Instance[] =>
  Array.from({ length: n }, (_, i) => ({ id: `${service}-${i}`, service, address: '10.0.0.1', port: 8000 + i, node: 'n1', tags, key: instanceKey('n1', `${service}-${i}`) }));

function tableOf(services: Record<string, string[] | [string[], number]>): RouteTable {
  let t = emptyTable;
  for (const [name, spec] of Object.entries(services)) {
    const [tags, n] = Array.isArray(spec[0]) ? (spec as [string[], number]) : [spec as string[], 1];
    t = setService(t, name, inst(name, tags, n));
  }
  return t;
}

const snapOf = (t: RouteTable) => new RouteBuilder().update(t);

describe('matchRoute + resolveRoute', () => {
  const table = tableOf({
    'users': ['gateway.route=/api/users', 'gateway.strip=/api'],
    'api': ['gateway.route=/api'],
    'shop': ['gateway.route=shop.localhost/'],
    'shop-admin': ['gateway.route=shop.localhost/admin'],
    'tenants': ['gateway.route=*.tenants.localhost/'],
    'deep': ['gateway.route=*.b.tenants.localhost/'],
    'site': ['gateway.route=/'],
    'hidden': ['gateway.route=/h', 'gateway.default=off'],
    'plain': [],
    'claimer': ['gateway.route=/plain'],
  });
  const snap = snapOf(table);
  type Want = { service: string; path: string } | string;
  const cases: Array<[string | undefined, string, Want]> = [
    // longest prefix, on segment boundaries
    [undefined, '/api/users', { service: 'users', path: '/users' }],
    [undefined, '/api/users/7', { service: 'users', path: '/users/7' }],
    [undefined, '/api/usersx', { service: 'api', path: '/api/usersx' }],
    [undefined, '/api', { service: 'api', path: '/api' }],
    [undefined, '/apiary', { service: 'site', path: '/apiary' }],
    [undefined, '/api/', { service: 'api', path: '/api/' }],
    // host first, then its longest prefix; any port on Host is ignored
    ['shop.localhost', '/api/users', { service: 'shop', path: '/api/users' }],
    ['SHOP.localhost:3000', '/admin/x', { service: 'shop-admin', path: '/admin/x' }],
    ['shop.localhost.', '/adminx', { service: 'shop', path: '/adminx' }],
    // wildcard: below the domain only, longest suffix first
    ['a.tenants.localhost', '/x', { service: 'tenants', path: '/x' }],
    ['x.y.tenants.localhost', '/x', { service: 'tenants', path: '/x' }],
    ['c.b.tenants.localhost', '/x', { service: 'deep', path: '/x' }],
    ['tenants.localhost', '/x', { service: 'site', path: '/x' }],
    // an unknown host falls through to routes for any host
    ['other.localhost', '/api', { service: 'api', path: '/api' }],
    // default /<service>/ routes compete by length; a declared route wins a tie
    [undefined, '/shop/x', { service: 'shop', path: '/x' }],
    [undefined, '/SHOP', { service: 'shop', path: '/' }],
    [undefined, '/plain/x', { service: 'claimer', path: '/plain/x' }],
    // a default turned off is no route; the catch-all takes it
    [undefined, '/hidden/x', { service: 'site', path: '/hidden/x' }],
    [undefined, '/h/x', { service: 'hidden', path: '/h/x' }],
    // unknown first segment: the catch-all
    [undefined, '/nothing-here', { service: 'site', path: '/nothing-here' }],
    [undefined, '/not.a.name/x', { service: 'site', path: '/not.a.name/x' }],
    // checked on the raw path: dot segments and encoded slashes go nowhere
    [undefined, '/api/users/../../admin', 'invalid_path'],
    [undefined, '/api/%2e%2e/x', 'invalid_path'],
    [undefined, '/api%2Fusers', { service: 'site', path: '/api%2Fusers' }],
    [undefined, '/api/users%2F..%2Fx', 'invalid_path'],
    [undefined, '/a b', 'invalid_path'],
    [undefined, '/x\\y', 'invalid_path'],
  ];
  for (const [host, path, want] of cases)
    test(`${host ?? '(any host)'} ${path}`, () => {
      const r = resolveRoute(snap, table, host, path);
      if (typeof want === 'string') {
        assert.equal(r.ok, false);
        assert.equal(!r.ok && r.reason, want);
      } else assert.deepEqual(r, { ok: true, ...want });
    });

  test('without a catch-all, an unknown or turned-off service answers as before', () => {
    const t = tableOf({ a: ['gateway.route=/x'], b: ['gateway.default=off'] });
    const s = snapOf(t);
    assert.deepEqual(resolveRoute(s, t, undefined, '/nope/x'), parseRoute('/nope/x'));
    assert.deepEqual(resolveRoute(s, t, undefined, '/in.valid/x'), parseRoute('/in.valid/x'));
    assert.deepEqual(resolveRoute(s, t, undefined, '/b/x'), { ok: false, reason: 'no_route', service: null });
    assert.deepEqual(resolveRoute(s, t, undefined, '/a/x'), { ok: true, service: 'a', path: '/x' });
  });

  test('a table without gateway tags gives the empty snapshot (the proxy parses /<service>/ only)', () => {
    assert.equal(snapOf(tableOf({ a: ['v1', 'urlprefix-/a'], b: [] })).empty, true);
    assert.equal(snapOf(tableOf({ a: ['gateway.default=off'] })).empty, false);
  });

  test('matchRoute names the kind of match', () => {
    assert.equal(matchRoute(snap, table, 'shop.localhost', '/')?.kind, 'host');
    assert.equal(matchRoute(snap, table, 'a.tenants.localhost', '/')?.kind, 'wildcard');
    assert.equal(matchRoute(snap, table, undefined, '/api')?.kind, 'path');
    assert.equal(matchRoute(snap, table, undefined, '/users/x')?.kind, 'default');
  });

  test('normalHost and stripPrefix', () => {
    assert.equal(normalHost('[::1]:80'), '[::1]');
    assert.equal(normalHost(undefined), '');
    assert.equal(stripPrefix('/api', '/api'), '/');
    assert.equal(stripPrefix('/api/x', '/api'), '/x');
    assert.equal(stripPrefix('/x', null), '/x');
  });
});

describe('conflicts and splits', () => {
  test('two unweighted services on one route: the name that sorts first wins, the other is listed as losing', () => {
    const t = tableOf({ zeta: ['gateway.route=/same'], alpha: ['gateway.route=/same'] });
    for (let i = 0; i < 5; i++) assert.deepEqual(resolveRoute(snapOf(t), t, undefined, '/same'), { ok: true, service: 'alpha', path: '/same' });
    const e = snapOf(t).routes[0]!;
    assert.deepEqual(e.targets.map((x) => x.service), ['alpha']);
    assert.deepEqual(e.losers.map((x) => x.service), ['zeta']);
    assert.match(e.losers[0]!.reason, /conflict.*alpha/);
  });

  test('the rule holds whatever order the services arrive in', () => {
    const a = buildRoutes(new Map([['b', [['gateway.route=/r']]], ['a', [['gateway.route=/r']]]]));
    const b = buildRoutes(new Map([['a', [['gateway.route=/r']]], ['b', [['gateway.route=/r']]]]));
    assert.deepEqual(a.routes[0]!.targets, b.routes[0]!.targets);
  });

  const run = (table: RouteTable, n: number, path = '/web') => {
    const snap = snapOf(table);
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const r = resolveRoute(snap, table, undefined, path);
      assert.ok(r.ok);
      counts[r.service] = (counts[r.service] ?? 0) + 1;
    }
    return counts;
  };

  const splits: Array<[string, Record<string, string[]>, Record<string, number>]> = [
    ['a canary takes its weight, the unweighted service the rest', { web: ['gateway.route=/web'], 'web-v2': ['gateway.route=/web weight=10'] }, { web: 900, 'web-v2': 100 }],
    ['explicit weights on both', { web: ['gateway.route=/web weight=75'], 'web-v2': ['gateway.route=/web weight=25'] }, { web: 750, 'web-v2': 250 }],
    ['weights are relative when they do not sum to 100', { a: ['gateway.route=/web weight=2'], b: ['gateway.route=/web weight=6'] }, { a: 250, b: 750 }],
    ['three ways', { a: ['gateway.route=/web weight=20'], b: ['gateway.route=/web weight=30'], c: ['gateway.route=/web'] }, { a: 200, b: 300, c: 500 }],
    ['weight 0 takes nothing', { a: ['gateway.route=/web weight=0'], b: ['gateway.route=/web'] }, { b: 1000 }],
    ['weights over 100 leave the unweighted one nothing', { a: ['gateway.route=/web weight=100'], b: ['gateway.route=/web'] }, { a: 1000 }],
  ];
  for (const [name, services, want] of splits)
    test(`split: ${name} (exact over 1,000 requests)`, () => {
      assert.deepEqual(run(tableOf(services), 1000), want);
    });

  test('split: any window of 10 requests on a 90/10 route holds exactly one canary request', () => {
    const table = tableOf({ web: ['gateway.route=/web'], 'web-v2': ['gateway.route=/web weight=10'] });
    const snap = snapOf(table);
    const seq = Array.from({ length: 100 }, () => (resolveRoute(snap, table, undefined, '/web') as { service: string }).service);
    for (let i = 0; i + 10 <= seq.length; i++) assert.equal(seq.slice(i, i + 10).filter((s) => s === 'web-v2').length, 1, `window at ${i}`);
  });

  test('a service with no passing instance drops out; the rest share its weight', () => {
    let table = tableOf({ a: ['gateway.route=/web weight=50'], b: ['gateway.route=/web weight=30'], c: ['gateway.route=/web weight=20'] });
    const builder = new RouteBuilder();
    builder.update(table);
    table = setService(table, 'a', []);
    const snap = builder.update(table);
    assert.equal(snap.routes[0]!.targets.length, 3, 'a keeps its routes while in the table');
    const counts: Record<string, number> = {};
    for (let i = 0; i < 500; i++) {
      const r = resolveRoute(snap, table, undefined, '/web') as { service: string };
      counts[r.service] = (counts[r.service] ?? 0) + 1;
    }
    assert.deepEqual(counts, { b: 300, c: 200 });
  });

  test('nothing live: the first target, so the proxy answers its 503', () => {
    let table = tableOf({ a: ['gateway.route=/web'], b: ['gateway.route=/web weight=10'] });
    const builder = new RouteBuilder();
    builder.update(table);
    table = setService(setService(table, 'a', []), 'b', []);
    assert.deepEqual(resolveRoute(builder.update(table), table, undefined, '/web'), { ok: true, service: 'a', path: '/web' });
  });

  test('a service leaving the table takes its routes along; a tag change rebuilds, an instance change does not', () => {
    const builder = new RouteBuilder();
    let table = tableOf({ a: ['gateway.route=/x'] });
    const s1 = builder.update(table);
    table = setService(table, 'a', inst('a', ['gateway.route=/x'], 3));
    assert.equal(builder.update(table), s1, 'same tags: same snapshot (and split state)');
    table = setService(table, 'a', inst('a', ['gateway.route=/y'], 3));
    assert.deepEqual(builder.update(table).routes.map((r) => r.prefix), ['/y']);
    table = { ...table, version: table.version + 1, services: new Map() };
    assert.equal(builder.update(table).empty, true);
  });

  test('instances that disagree on tags: the union counts, and the service is named', () => {
    const table = setService(emptyTable, 'a', [...inst('a', ['gateway.route=/x']), { ...inst('a', ['gateway.route=/y'])[0]!, id: 'a-9' }]);
    const snap = snapOf(table);
    assert.deepEqual(snap.routes.map((r) => r.prefix), ['/x', '/y']);
    assert.deepEqual(snap.disagreeing, ['a']);
  });

  test('malformed tags are collected per service and never break the others', () => {
    const snap = snapOf(tableOf({ a: ['gateway.route=/x/../y', 'gateway.route=/ok'], b: ['gateway.weight=lots', 'gateway.route=/b'] }));
    assert.deepEqual(snap.routes.map((r) => r.prefix), ['/b', '/ok']);
    assert.deepEqual(snap.rejected.map((r) => [r.service, r.tag]), [['a', 'gateway.route=/x/../y'], ['b', 'gateway.weight=lots']]);
  });
});

describe('matchRoute against a brute-force reference, on random tables (seed printed)', () => {
  // The reference: every route whose host group and prefix fit, ranked as docs/routes.md says
  // (exact host, then *.domain by length, then any host with the default routes), longest prefix first.
  function reference(table: RouteTable, host: string, path: string): string | null {
    const snap = snapOf(table);
    const h = normalHost(host);
    const fits = (p: string) => p === '/' || path === p || path.startsWith(p + '/');
    const groups: Array<Array<{ key: string; len: number; declared: boolean }>> = [[], [], []];
    const wildLen = new Map<string, number>();
    for (const e of snap.routes) {
      if (!fits(e.prefix)) continue;
      const key = `${e.host ?? ''}${e.prefix}`;
      if (e.host === null) groups[2]!.push({ key, len: e.prefix === '/' ? 0 : e.prefix.length, declared: true });
      else if (e.host === h) groups[0]!.push({ key, len: e.prefix.length, declared: true });
      else if (e.host.startsWith('*.') && h.endsWith(e.host.slice(1)) && h.length > e.host.length - 1) {
        groups[1]!.push({ key, len: e.host.length * 10_000 + e.prefix.length, declared: true });
        wildLen.set(key, e.host.length);
      }
    }
    const first = path.split('/')[1]!.toLowerCase();
    if (table.services.has(first) && !snap.defaultOff.has(first)) groups[2]!.push({ key: `default:${first}`, len: first.length + 1, declared: false });
    for (const g of groups) {
      if (g.length === 0) continue;
      g.sort((a, b) => b.len - a.len || Number(b.declared) - Number(a.declared));
      return g[0]!.key;
    }
    return null;
  }

  test('2,000 random tables and requests', () => {
    let seed = Number(process.env.SEED ?? (Date.now() % 1_000_000));
    const start = seed;
    console.log(`# routes random seed ${start} (SEED=${start} to repeat)`);
    // mulberry32: small, seedable, and its low bits are as random as its high ones.
    const rnd = (n: number) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return (((x ^ (x >>> 14)) >>> 0) / 4294967296) * n | 0;
    };
    const pick = <T>(xs: readonly T[]) => xs[rnd(xs.length)]!;
    const segs = ['a', 'b', 'api', 'apiary', 'svc-1', 'svc-2', 'x'];
    const hosts = ['shop.localhost', 'a.shop.localhost', 'b.a.shop.localhost', 'other.localhost'];
    const names = ['svc-1', 'svc-2', 'svc-3', 'api'];
    const randPath = () => '/' + Array.from({ length: rnd(4) }, () => pick(segs)).join('/');
    for (let round = 0; round < 2_000; round++) {
      let table = emptyTable;
      for (const name of names) {
        if (rnd(4) === 0) continue;
        const tags = Array.from({ length: rnd(4) }, () => {
          const host = rnd(3) === 0 ? pick(['shop.localhost', '*.shop.localhost', '*.a.shop.localhost']) : '';
          return `gateway.route=${host}${randPath()}${rnd(3) === 0 ? ` weight=${rnd(50)}` : ''}`;
        });
        if (rnd(5) === 0) tags.push('gateway.default=off');
        table = setService(table, name, rnd(6) === 0 ? [] : inst(name, tags));
      }
      const host = pick(hosts);
      const path = randPath() + (rnd(4) === 0 ? '/' : '');
      const snap = snapOf(table);
      const m = matchRoute(snap, table, host, path);
      const got = m === null ? null : m.entry === null ? `default:${m.service}` : `${m.entry.host ?? ''}${m.entry.prefix}`;
      assert.equal(got, reference(table, host, path), `seed ${start}, round ${round}: ${host} ${path}`);
      // resolveRoute never throws, and a declared match sends to one of the route's targets
      const r = resolveRoute(snap, table, host, path);
      if (r.ok && m?.entry) assert.ok(m.entry.targets.some((t) => t.service === r.service), `seed ${start}, round ${round}`);
    }
  });
});
