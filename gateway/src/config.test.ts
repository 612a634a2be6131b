import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '@stack/shared';
import { describeConfig, loadConfig } from './config.js';
import { documentedDefaults } from '../../test/lib/readme.js';

describe('loadConfig: defaults', () => {
  const c = loadConfig({});

  test('PORT 3000', () => assert.equal(c.PORT, 3000));
  test('CONSUL_HTTP_ADDR 127.0.0.1:8500, parsed', () => {
    assert.deepEqual(c.CONSUL_HTTP_ADDR, [{ host: '127.0.0.1', port: 8500, secure: false, url: 'http://127.0.0.1:8500' }]);
  });
  test('excluded is consul and gateway', () => assert.deepEqual([...c.excluded].sort(), ['consul', 'gateway']));
  test('other defaults', () => {
    assert.equal(c.GATEWAY_SERVICE_NAME, 'gateway');
    assert.deepEqual(c.EXCLUDE_SERVICES, []);
    assert.equal(c.LOG_LEVEL, 'info');
    assert.equal(c.UPSTREAM_TIMEOUT_MS, 5_000);
    assert.equal(c.CONNECT_TIMEOUT_MS, 1_000);
    assert.equal(c.UPSTREAM_RETRIES, 2);
    assert.equal(c.EJECT_AFTER_FAILURES, 3);
    assert.equal(c.EJECT_MAX_PERCENT, 50);
    assert.equal(c.RETRY_AFTER_S, 1);
    assert.equal(c.CONSUL_WAIT_MS, 30_000);
    assert.equal(c.UPGRADE_MAX_CONNECTIONS, 5_000);
    assert.equal(c.UPGRADE_IDLE_TIMEOUT_MS, 300_000);
    assert.equal(c.LB_POLICY, 'peak_ewma');
    assert.equal(c.UPSTREAM_HEDGING, true);
    assert.equal(c.UPSTREAM_TRY_TIMEOUT_MS, 0);
    assert.equal(c.UPSTREAM_TRY_TIMEOUT_MIN_MS, 50);
    assert.equal(c.UPSTREAM_TRY_TIMEOUT_MAX_MS, 1_000);
  });
  test('LB_POLICY: any case, round_robin keeps the old balancer', () => {
    assert.equal(loadConfig({ LB_POLICY: 'Round_Robin' }).LB_POLICY, 'round_robin');
    assert.equal(loadConfig({ LB_POLICY: 'least_request' }).LB_POLICY, 'least_request');
  });
  test('UPSTREAM_TRY_TIMEOUT_MIN_MS above the max is refused, naming both', () => {
    assert.throws(() => loadConfig({ UPSTREAM_TRY_TIMEOUT_MIN_MS: '2000' }), /UPSTREAM_TRY_TIMEOUT_MIN_MS \(2000\) must be at most UPSTREAM_TRY_TIMEOUT_MAX_MS \(1000\)/);
  });
  test('variables that are not the gateway\'s are ignored: same config as an empty env', () => {
    // An explicit env object: the result must not depend on the machine running the test.
    const unrelated = { PATH: '/usr/local/bin:/usr/bin', HOME: '/home/node', NODE_ENV: 'production', HOSTNAME: 'gw-1', SERVICE_3000_NAME: 'gateway' };
    assert.deepEqual(loadConfig(unrelated), c);
  });
});

describe('loadConfig: overrides', () => {
  const cases: Array<[Record<string, string>, (c: ReturnType<typeof loadConfig>) => void]> = [
    [{ PORT: '8080' }, (c) => assert.equal(c.PORT, 8080)],
    [{ PORT: '0' }, (c) => assert.equal(c.PORT, 0)],
    [{ PORT: '65535' }, (c) => assert.equal(c.PORT, 65535)],
    [
      { CONSUL_HTTP_ADDR: 'https://consul-a:8501, consul-b' },
      (c) =>
        assert.deepEqual(c.CONSUL_HTTP_ADDR, [
          { host: 'consul-a', port: 8501, secure: true, url: 'https://consul-a:8501' },
          { host: 'consul-b', port: 8500, secure: false, url: 'http://consul-b:8500' },
        ]),
    ],
    [{ UPSTREAM_TIMEOUT_MS: '250' }, (c) => assert.equal(c.UPSTREAM_TIMEOUT_MS, 250)],
    [{ UPSTREAM_RETRIES: '0' }, (c) => assert.equal(c.UPSTREAM_RETRIES, 0)],
    [{ LOG_LEVEL: 'silent' }, (c) => assert.equal(c.LOG_LEVEL, 'silent')],
    [
      { EXCLUDE_SERVICES: 'Billing, ADMIN ,,internal-x' },
      (c) => {
        assert.deepEqual(c.EXCLUDE_SERVICES, ['Billing', 'ADMIN', 'internal-x']);
        assert.deepEqual([...c.excluded].sort(), ['admin', 'billing', 'consul', 'gateway', 'internal-x']);
      },
    ],
    [
      { GATEWAY_SERVICE_NAME: 'Edge-GW' },
      (c) => {
        assert.equal(c.GATEWAY_SERVICE_NAME, 'Edge-GW');
        assert.deepEqual([...c.excluded].sort(), ['consul', 'edge-gw']);
      },
    ],
    [
      { GATEWAY_SERVICE_NAME: '  my-gateway  ', EXCLUDE_SERVICES: 'consul,MY-GATEWAY' },
      (c) => {
        assert.equal(c.GATEWAY_SERVICE_NAME, 'my-gateway');
        assert.deepEqual([...c.excluded].sort(), ['consul', 'my-gateway']);
      },
    ],
  ];
  for (const [env, check] of cases) {
    test(JSON.stringify(env), () => check(loadConfig(env)));
  }
});

describe('loadConfig: bad values name the variable', () => {
  const cases: Array<[string, string]> = [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['CONSUL_HTTP_ADDR', 'ftp://x'],
    ['CONSUL_HTTP_ADDR', 'consul:8500/v1'],
    ['CONSUL_HTTP_ADDR', ''],
    ['UPSTREAM_TIMEOUT_MS', '-1'],
    ['UPSTREAM_TIMEOUT_MS', '0'],
    ['UPSTREAM_RETRIES', '11'],
    ['EJECT_MAX_PERCENT', '101'],
    ['LOG_LEVEL', 'loud'],
    ['LB_POLICY', 'random'],
    ['UPSTREAM_HEDGING', 'maybe'],
    ['UPSTREAM_TRY_TIMEOUT_MS', '-5'],
    ['GATEWAY_SERVICE_NAME', '   '],
    ['UPGRADE_MAX_CONNECTIONS', '-1'],
    ['UPGRADE_MAX_CONNECTIONS', 'many'],
    ['UPGRADE_IDLE_TIMEOUT_MS', '10'],
  ];
  for (const [name, value] of cases) {
    test(`${name}=${JSON.stringify(value)}`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.ok(err.message.includes(`${name}=${JSON.stringify(value)}`), err.message);
          return true;
        },
      );
    });
  }

  test('the CONSUL_HTTP_ADDR error also names the bad entry', () => {
    assert.throws(() => loadConfig({ CONSUL_HTTP_ADDR: 'ok:1,ftp://x' }), /CONSUL_HTTP_ADDR=.*"ftp:\/\/x"/);
  });
});

describe('describeConfig', () => {
  test('addresses as URLs and excluded as a list', () => {
    const d = describeConfig(loadConfig({ EXCLUDE_SERVICES: 'x' }));
    assert.deepEqual(d.CONSUL_HTTP_ADDR, ['http://127.0.0.1:8500']);
    assert.deepEqual([...d.excluded].sort(), ['consul', 'gateway', 'x']);
    assert.ok(Array.isArray(d.excluded));
  });
});

describe('the README documents the real defaults', () => {
  // Setting a variable to the default the README gives it must change nothing.
  const documented = documentedDefaults('gateway');
  test('the table documents defaults (the parser found them)', () => assert.ok(documented.length >= 30, `${documented.length} found`));
  for (const { name, value } of documented)
    test(`${name} = ${value}`, () => assert.deepEqual(loadConfig({ [name]: value }), loadConfig({}), `README's default for ${name} is not the real one`));
});
