import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRoute, type Route } from './route.js';

const ok = (service: string, path: string): Route => ({ ok: true, service, path });
const badName = (): Route => ({ ok: false, reason: 'invalid_service_name', service: null });
const badPath = (service: string | null): Route => ({ ok: false, reason: 'invalid_path', service });

describe('parseRoute: routable', () => {
  const cases: Array<[string, Route]> = [
    ['/service-web/', ok('service-web', '/')],
    ['/service-web', ok('service-web', '/')],
    ['/service-web/x', ok('service-web', '/x')],
    ['/service-web/api/v1/items/', ok('service-web', '/api/v1/items/')],
    ['/Service-Web/x', ok('service-web', '/x')],
    ['/SERVICE-WEB', ok('service-web', '/')],
    ['/a', ok('a', '/')],
    [`/${'x'.repeat(63)}/y`, ok('x'.repeat(63), '/y')],
    // the rest is kept raw, still percent-encoded
    ['/svc/a%2Fb', ok('svc', '/a%2Fb')],
    ['/svc/a%20b', ok('svc', '/a%20b')],
    ['/svc/caf%C3%A9', ok('svc', '/caf%C3%A9')],
    ['/svc/%2e%2e%2e', ok('svc', '/%2e%2e%2e')], // three dots is a name, not a dot segment
    ['/svc/...', ok('svc', '/...')],
    ['/svc/a..b/.hidden/x.', ok('svc', '/a..b/.hidden/x.')],
    // a leading // in the rest stays a path; it is never a host
    ['/svc//host/x', ok('svc', '//host/x')],
    ['/svc//evil.com', ok('svc', '//evil.com')],
    ['/svc/http://evil.com/', ok('svc', '/http://evil.com/')],
    ['/svc/a@b:c', ok('svc', '/a@b:c')],
  ];
  for (const [input, expected] of cases) {
    test(JSON.stringify(input.length > 40 ? `${input.slice(0, 12)}…` : input), () => {
      assert.deepEqual(parseRoute(input), expected);
    });
  }

  test('the query string is not part of the path (ctx.path is passed, not ctx.url)', () => {
    // The app passes Koa's ctx.path, which has no query; see app.test.ts for
    // the end-to-end check. Here: a path without a query stays as it is.
    assert.deepEqual(parseRoute('/Service-Web/x'), ok('service-web', '/x'));
  });
});

describe('parseRoute: invalid service names', () => {
  const cases = [
    '/',
    '//',
    '//evil.com/x',
    '/..',
    '/../x',
    '/.',
    '/%2e%2e/x',
    '/%2E%2E',
    '/a.b/',
    '/evil.com/x',
    '/user@host/',
    '/host:80/',
    '/svc%2Fother/',
    '/svc%2fother',
    '/svc%5Cother/',
    '/-svc/',
    '/svc-/',
    '/svc_name/',
    `/${'x'.repeat(64)}/`,
    '/wéb/',
    '/w%C3%A9b/',
    '/%73vc/', // encoded letters are not decoded into a name
  ];
  for (const input of cases) {
    test(JSON.stringify(input.length > 40 ? `${input.slice(0, 12)}…` : input), () => {
      assert.deepEqual(parseRoute(input), badName());
    });
  }
});

describe('parseRoute: invalid paths', () => {
  const cases: Array<[string, string | null]> = [
    ['/svc/../x', 'svc'],
    ['/svc/..', 'svc'],
    ['/svc/../', 'svc'],
    ['/svc/.', 'svc'],
    ['/svc/%2e%2e/x', 'svc'],
    ['/svc/%2E%2E/x', 'svc'],
    ['/svc/.%2E/x', 'svc'],
    ['/svc/%2e./x', 'svc'],
    ['/svc/%2e/x', 'svc'],
    ['/svc/a/./b', 'svc'],
    ['/svc/a/b/..', 'svc'],
    ['/svc/a%2F..%2Fb', 'svc'],
    ['/svc/a%2f%2e%2e%2fb', 'svc'],
    ['/svc/a\\b', 'svc'],
    ['/svc/..\\x', 'svc'],
    ['/svc/a%5cb', 'svc'],
    ['/svc/a%5Cb', 'svc'],
    ['/svc/a b', 'svc'],
    ['/svc/a\tb', 'svc'],
    ['/Svc/../x', 'svc'],
    // not a path at all
    ['', null],
    ['svc/x', null],
    ['/svc/a\nb', null],
  ];
  for (const [input, service] of cases) {
    test(JSON.stringify(input), () => {
      assert.deepEqual(parseRoute(input), badPath(service));
    });
  }
});
