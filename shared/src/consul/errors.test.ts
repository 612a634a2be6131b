import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyConsulError, describeConsulError } from './errors.js';

const withStatus = (message: string, statusCode: number) => Object.assign(new Error(message), { statusCode });
const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

const cases: Array<[what: string, err: unknown, kind: string, retryable: boolean, failover: boolean]> = [
  ['connection reset', reset, 'unreachable', true, true],
  ['timeout (no status)', new Error('request timed out (31000ms)'), 'unreachable', true, true],
  ['500 from the agent (no servers)', withStatus('rpc error: No known Consul servers', 500), 'unreachable', true, true],
  ['500 No cluster leader (a read from the leader)', withStatus('No cluster leader', 500), 'no-leader', true, false],
  ['403 Permission denied', withStatus('Permission denied', 403), 'denied', false, false],
  ['403 ACL not found (bad token)', withStatus('ACL not found', 403), 'denied', false, false],
  ['401', withStatus('unauthorized', 401), 'denied', false, false],
  ['400 bad request (a malformed name, a bad filter)', withStatus('bad request', 400), 'rejected', false, false],
  ['404 (a proxy in the way)', withStatus('not found', 404), 'rejected', false, false],
  ['429 rate limited: back off, another agent may answer', withStatus('rate limit exceeded', 429), 'unreachable', true, true],
  ['status on the response only', Object.assign(new Error('x'), { response: { statusCode: 403 } }), 'denied', false, false],
  ['not an Error at all', 'boom', 'unreachable', true, true],
];

for (const [what, err, kind, retryable, failover] of cases) {
  test(`classifyConsulError: ${what}`, () => {
    const e = classifyConsulError(err);
    assert.deepEqual([e.kind, e.retryable, e.failover], [kind, retryable, failover]);
  });
}

test('describeConsulError puts the status first, once', () => {
  assert.equal(describeConsulError(classifyConsulError(withStatus('Permission denied', 403))), '403 Permission denied');
  assert.equal(describeConsulError(classifyConsulError(reset)), 'socket hang up');
  assert.equal(describeConsulError({ kind: 'denied', status: 403, message: '403 Forbidden', retryable: false, failover: false }), '403 Forbidden');
});
