import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callPolicy, type CallPolicyOptions } from './call-policy.js';
import { HttpError } from './http.js';

const base: CallPolicyOptions = { self: 'service-web', gateway: 'gateway', deny: [], allowSelf: false, maxDepth: 1 };

// [name, options, service, Via, expected status (0: allowed)]
const cases: Array<[string, Partial<CallPolicyOptions>, string, string | undefined, number]> = [
  ['another service', {}, 'service-b', undefined, 0],
  ['consul', {}, 'consul', undefined, 403],
  ['Consul, any case', {}, 'CoNsUl', undefined, 403],
  ['the gateway', {}, 'gateway', undefined, 403],
  ['the gateway under its configured name', { gateway: 'Edge' }, 'edge', undefined, 403],
  ['"gateway" once it is not the gateway name', { gateway: 'edge' }, 'gateway', undefined, 0],
  ['itself', {}, 'service-web', undefined, 403],
  ['itself, any case', {}, 'Service-Web', undefined, 403],
  ['itself when allowed', { allowSelf: true }, 'service-web', undefined, 0],
  ['consul even with self allowed', { allowSelf: true, self: 'consul' }, 'consul', undefined, 403],
  ['a denied name', { deny: ['billing', 'Audit'] }, 'audit', undefined, 403],
  ['not denied', { deny: ['billing'] }, 'billing-2', undefined, 0],
  ['Via without /call hops', {}, 'service-b', '1.1 gateway', 0],
  ['one /call hop already', {}, 'service-b', '1.1 service-x (call)', 508],
  ['a hop of another service, through the gateway', {}, 'service-b', '1.1 gateway, 1.1 service-b (call), 1.1 gateway', 508],
  ['one hop, depth 2', { maxDepth: 2 }, 'service-b', '1.1 a (call)', 0],
  ['two hops, depth 2', { maxDepth: 2 }, 'service-b', '1.1 a (call), 1.1 b (call)', 508],
  ['depth 0: /call is off', { maxDepth: 0 }, 'service-b', undefined, 508],
  ['a Via too long to trace', {}, 'service-b', `1.1 a (${'x'.repeat(5000)})`, 508],
  ['a loop wins over a forbidden name', {}, 'consul', '1.1 a (call)', 508],
];

for (const [name, over, service, via, want] of cases) {
  test(`${name} → ${want || 'allowed'}`, () => {
    const check = callPolicy({ ...base, ...over });
    if (want === 0) return void check(service, via);
    assert.throws(
      () => check(service, via),
      (e: unknown) => e instanceof HttpError && e.status === want && e.code === (want === 403 ? 'call_forbidden' : 'loop_detected') && e.extra.service === service,
    );
  });
}

test('the 508 says how many hops and the limit', () => {
  assert.throws(() => callPolicy(base)('svc', '1.1 a (call)'), (e: unknown) => e instanceof HttpError && /1 \/call hop.*at most 1.*CALL_MAX_DEPTH/.test(e.message) && e.extra.hops === 1);
  assert.throws(() => callPolicy(base)('svc', 'x'.repeat(5000)), (e: unknown) => e instanceof HttpError && /too long/.test(e.message) && e.extra.hops === null);
});
