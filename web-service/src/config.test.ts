import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '@stack/shared';
import { describeConfig, loadConfig } from './config.js';
import { documentedDefaults } from '../../test/lib/readme.js';

test('defaults', () => {
  const c = loadConfig({});
  assert.equal(c.PORT, 3000);
  assert.equal(c.SERVICE_NAME, 'service-web');
  assert.equal(c.SERVICE_ADDRESS, undefined);
  assert.deepEqual(describeConfig(c).CONSUL_HTTP_ADDR, ['http://127.0.0.1:8500']);
  assert.equal(c.CALL_TIMEOUT_MS, 4000, "below the gateway's 5 s UPSTREAM_TIMEOUT_MS");
  assert.equal(c.CALL_DISCOVERY_TIMEOUT_MS, 2000);
  assert.equal(c.CALL_MAX_SERVICES, 32);
  assert.equal(c.GATEWAY_SERVICE_NAME, 'gateway');
  assert.deepEqual(c.CALL_DENY, []);
  assert.equal(c.CALL_ALLOW_SELF, false);
  assert.equal(c.CALL_MAX_DEPTH, 1);
  assert.equal(c.DRAIN_GRACE_MS, 3000);
  assert.equal(c.SHUTDOWN_TIMEOUT_MS, 5000);
  assert.equal(c.KEEP_ALIVE_TIMEOUT_MS, 65000);
  assert.equal(c.ENABLE_FAULTS, false);
  assert.equal(c.LOG_LEVEL, 'info');
});

test('values are read and trimmed', () => {
  const c = loadConfig({
    PORT: '0',
    SERVICE_NAME: 'web-2',
    SERVICE_ADDRESS: ' 10.1.2.3 ',
    CONSUL_HTTP_ADDR: 'consul:8500,http://consul-2:8501',
    CALL_TIMEOUT_MS: '250',
    DRAIN_GRACE_MS: '0',
    ENABLE_FAULTS: 'TRUE',
    LOG_LEVEL: 'debug',
    GATEWAY_SERVICE_NAME: ' edge ',
    CALL_DENY: 'Billing, ,audit',
    CALL_ALLOW_SELF: 'yes',
    CALL_MAX_DEPTH: '3',
  });
  assert.equal(c.GATEWAY_SERVICE_NAME, 'edge');
  assert.deepEqual(c.CALL_DENY, ['billing', 'audit']);
  assert.equal(c.CALL_ALLOW_SELF, true);
  assert.equal(c.CALL_MAX_DEPTH, 3);
  assert.equal(c.PORT, 0);
  assert.equal(c.SERVICE_NAME, 'web-2');
  assert.equal(c.SERVICE_ADDRESS, '10.1.2.3');
  assert.deepEqual(describeConfig(c).CONSUL_HTTP_ADDR, ['http://consul:8500', 'http://consul-2:8501']);
  assert.equal(c.CALL_TIMEOUT_MS, 250);
  assert.equal(c.DRAIN_GRACE_MS, 0);
  assert.equal(c.ENABLE_FAULTS, true);
  assert.equal(c.LOG_LEVEL, 'debug');
});

test('an empty SERVICE_ADDRESS means detect', () => {
  assert.equal(loadConfig({ SERVICE_ADDRESS: '' }).SERVICE_ADDRESS, undefined);
});

test('ENABLE_FAULTS spellings', () => {
  for (const v of ['true', '1', 'yes']) assert.equal(loadConfig({ ENABLE_FAULTS: v }).ENABLE_FAULTS, true, v);
  for (const v of ['false', '0', 'no', '']) assert.equal(loadConfig({ ENABLE_FAULTS: v }).ENABLE_FAULTS, false, v);
});

const bad: Array<[string, string]> = [
  ['PORT', 'abc'],
  ['PORT', '70000'],
  ['PORT', '-1'],
  ['SERVICE_NAME', 'bad_name'],
  ['SERVICE_ADDRESS', 'http://x/'],
  ['CONSUL_HTTP_ADDR', 'ftp://consul'],
  ['CONSUL_WAIT_MS', '10'],
  ['CALL_TIMEOUT_MS', '1.5'],
  ['CALL_DISCOVERY_TIMEOUT_MS', '0'],
  ['CALL_MAX_SERVICES', '0'],
  ['GATEWAY_SERVICE_NAME', 'gate_way'],
  ['CALL_ALLOW_SELF', 'sometimes'],
  ['CALL_MAX_DEPTH', '9'],
  ['CALL_MAX_DEPTH', '-1'],
  ['DRAIN_GRACE_MS', 'soon'],
  ['SHUTDOWN_TIMEOUT_MS', '999999'],
  ['KEEP_ALIVE_TIMEOUT_MS', '10'],
  ['ENABLE_FAULTS', 'maybe'],
  ['LOG_LEVEL', 'loud'],
];

for (const [name, value] of bad) {
  test(`bad ${name}=${value} is named in the error`, () => {
    assert.throws(
      () => loadConfig({ [name]: value }),
      (err: unknown) => err instanceof ConfigError && err.message.includes(`${name}=${JSON.stringify(value)}`),
    );
  });
}

test('every bad variable is reported at once', () => {
  assert.throws(
    () => loadConfig({ PORT: 'x', CALL_TIMEOUT_MS: 'y' }),
    (err: unknown) => err instanceof ConfigError && /PORT=/.test(err.message) && /CALL_TIMEOUT_MS=/.test(err.message),
  );
});

// Setting a variable to the default the README gives it must change nothing.
const documented = documentedDefaults('web-service');
test('the README documents defaults (the parser found them)', () => assert.ok(documented.length >= 12, `${documented.length} found`));
for (const { name, value } of documented)
  test(`README: ${name} = ${value}`, () => assert.deepEqual(loadConfig({ [name]: value }), loadConfig({}), `README's default for ${name} is not the real one`));
