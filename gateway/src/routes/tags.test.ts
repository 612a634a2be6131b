import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHost, parsePrefix, parseServiceTags, underPrefix } from './tags.js';

const route = (host: string | null, prefix: string, tag: string, strip: string | null = null, weight: number | null = null) => ({ host, prefix, strip, weight, tag });

describe('parseServiceTags: routes', () => {
  const cases: Array<[string, string[], ReturnType<typeof route>[]]> = [
    ['a path prefix', ['gateway.route=/api/users'], [route(null, '/api/users', 'gateway.route=/api/users')]],
    ['a trailing slash is the same prefix', ['gateway.route=/api/'], [route(null, '/api', 'gateway.route=/api/')]],
    ['the root', ['gateway.route=/'], [route(null, '/', 'gateway.route=/')]],
    ['a host alone is its root', ['gateway.route=shop.localhost'], [route('shop.localhost', '/', 'gateway.route=shop.localhost')]],
    ['host and path', ['gateway.route=Shop.Localhost/api'], [route('shop.localhost', '/api', 'gateway.route=Shop.Localhost/api')]],
    ['a wildcard host', ['gateway.route=*.shop.localhost/'], [route('*.shop.localhost', '/', 'gateway.route=*.shop.localhost/')]],
    ['a trailing dot on the host', ['gateway.route=shop.localhost./x'], [route('shop.localhost', '/x', 'gateway.route=shop.localhost./x')]],
    [
      'service-wide strip applies to routes under it',
      ['gateway.route=/api/users', 'gateway.route=/other', 'gateway.strip=/api'],
      [route(null, '/api/users', 'gateway.route=/api/users', '/api'), route(null, '/other', 'gateway.route=/other')],
    ],
    ['service-wide weight', ['gateway.route=/web', 'gateway.weight=10'], [route(null, '/web', 'gateway.route=/web', null, 10)]],
    [
      'inline options win over service-wide ones',
      ['gateway.route=/web strip=/web weight=25', 'gateway.weight=10'],
      [route(null, '/web', 'gateway.route=/web strip=/web weight=25', '/web', 25)],
    ],
    ['a decimal weight', ['gateway.route=/w weight=0.5'], [route(null, '/w', 'gateway.route=/w weight=0.5', null, 0.5)]],
    ['weight 0 is a weight', ['gateway.route=/w weight=0'], [route(null, '/w', 'gateway.route=/w weight=0', null, 0)]],
    ['raw percent-encodings stay raw', ['gateway.route=/caf%C3%A9'], [route(null, '/caf%C3%A9', 'gateway.route=/caf%C3%A9')]],
    ['other tools\' tags are not ours', ['urlprefix-/x', 'traefik.enable=true', 'v1'], []],
    ['duplicate tags count once', ['gateway.route=/a', 'gateway.route=/a'], [route(null, '/a', 'gateway.route=/a')]],
  ];
  for (const [name, tags, want] of cases)
    test(name, () => {
      const got = parseServiceTags(tags);
      assert.deepEqual(got.routes, want);
      assert.deepEqual(got.rejected, []);
    });

  test('gateway.default=off turns the /<service>/ route off; on is the default', () => {
    assert.equal(parseServiceTags([]).defaultRoute, true);
    assert.equal(parseServiceTags(['gateway.default=off']).defaultRoute, false);
    assert.equal(parseServiceTags(['gateway.default=OFF']).defaultRoute, false);
    assert.equal(parseServiceTags(['gateway.default=on']).defaultRoute, true);
  });

  test('the same tags in another order give the same routes', () => {
    const a = parseServiceTags(['gateway.route=/b', 'gateway.route=/a', 'gateway.strip=/a']);
    const b = parseServiceTags(['gateway.strip=/a', 'gateway.route=/a', 'gateway.route=/b']);
    assert.deepEqual(a, b);
  });
});

describe('parseServiceTags: malformed tags are rejected with a reason, never thrown', () => {
  const bad: Array<[string, RegExp]> = [
    ['gateway.route', /key=value/],
    ['gateway.route=', /empty route/],
    ['gateway.route=api', /ambiguous/],
    ['gateway.route=/a/../b', /plain path/],
    ['gateway.route=/a/%2e%2e/b', /plain path/],
    ['gateway.route=/a%2Fb', /plain path/],
    ['gateway.route=/a%5Cb', /plain path/],
    ['gateway.route=/a//b', /plain path/],
    ['gateway.route=/a?x=1', /plain path/],
    ['gateway.route=/a#x', /plain path/],
    ['gateway.route=/a%zz', /plain path/],
    ['gateway.route=sh op/', /ambiguous/],
    ['gateway.route=shop_x.localhost/', /host name/],
    ['gateway.route=*.com/', /host name/],
    ['gateway.route=a.*.com/', /host name/],
    ['gateway.route=-a.com/', /host name/],
    ['gateway.route=/a weight=101', /0 to 100/],
    ['gateway.route=/a weight=-1', /0 to 100/],
    ['gateway.route=/a weight=ten', /0 to 100/],
    ['gateway.route=/a weight=1e2', /0 to 100/],
    ['gateway.route=/a strip=/b', /not a prefix/],
    ['gateway.route=/ab strip=/a', /not a prefix/],
    ['gateway.route=/a colour=red', /unknown route option/],
    ['gateway.weight=abc', /0 to 100/],
    ['gateway.strip=nope', /plain path/],
    ['gateway.default=maybe', /on or off/],
    ['gateway.routes=/a', /unknown key/],
  ];
  for (const [tag, reason] of bad)
    test(tag, () => {
      const got = parseServiceTags([tag]);
      assert.deepEqual(got.routes, []);
      assert.equal(got.rejected.length, 1, JSON.stringify(got));
      assert.equal(got.rejected[0]!.tag, tag);
      assert.match(got.rejected[0]!.reason, reason);
    });

  test('a bad tag does not take the good ones with it', () => {
    const got = parseServiceTags(['gateway.route=/ok', 'gateway.route=/x/../y', 'gateway.weight=500']);
    assert.deepEqual(got.routes.map((r) => r.prefix), ['/ok']);
    assert.equal(got.rejected.length, 2);
  });

  test('two different service-wide weights: the first in sorted order is used, the other is reported', () => {
    const got = parseServiceTags(['gateway.route=/a', 'gateway.weight=20', 'gateway.weight=10']);
    assert.equal(got.routes[0]!.weight, 10);
    assert.equal(got.rejected[0]!.tag, 'gateway.weight=20');
  });

  test('a strip no route is under is reported', () => {
    const got = parseServiceTags(['gateway.route=/a', 'gateway.strip=/b']);
    assert.equal(got.routes[0]!.strip, null);
    assert.match(got.rejected[0]!.reason, /no route/);
  });

  test('random junk never throws', () => {
    let seed = Number(process.env.SEED ?? Date.now() % 1e6);
    console.log(`# tags random seed ${seed} (SEED=${seed} to repeat)`);
    // mulberry32
    const rnd = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
    };
    const alphabet = 'gateway.route=/ *%2e.-_:weight=strip=default=off\\?#\u00e9\u0000ab';
    for (let i = 0; i < 2_000; i++) {
      const tags = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () =>
        'gateway.' + Array.from({ length: Math.floor(rnd() * 30) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join(''),
      );
      const got = parseServiceTags(tags);
      for (const r of got.routes) assert.ok(r.prefix.startsWith('/'), `seed ${seed}: ${JSON.stringify(r)}`);
    }
  });
});

describe('route parts', () => {
  test('parseHost', () => {
    assert.equal(parseHost('A.Example.com'), 'a.example.com');
    assert.equal(parseHost('localhost'), 'localhost');
    assert.equal(parseHost('*.example.com'), '*.example.com');
    for (const h of ['', '*.com', '*', 'a..b', 'a_b.com', `${'a'.repeat(64)}.com`, 'a.com:80', '[::1]']) assert.equal(parseHost(h), null, h);
  });
  test('parsePrefix', () => {
    assert.equal(parsePrefix('/'), '/');
    assert.equal(parsePrefix('/a/b/'), '/a/b');
    for (const p of ['', 'a', '//', '/a//b', '/./a', '/a/.', '/%2E%2e', '/a b']) assert.equal(parsePrefix(p), null, p);
  });
  test('underPrefix works on segments', () => {
    assert.equal(underPrefix('/api', '/api'), true);
    assert.equal(underPrefix('/api/x', '/api'), true);
    assert.equal(underPrefix('/apiary', '/api'), false);
    assert.equal(underPrefix('/anything', '/'), true);
  });
});
