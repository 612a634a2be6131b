import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyFailure, errorCode, isRetryable, type AttemptFailure, type FailureKind } from './upstream-error.js';

const withCode = (code: string, message = code) => Object.assign(new Error(message), { code });
const wrapped = (cause: unknown) => new TypeError('fetch failed', { cause });

describe('classifyFailure', () => {
  const cases: Array<[string, unknown, FailureKind]> = [
    ['ECONNREFUSED', withCode('ECONNREFUSED'), 'connect'],
    ['UND_ERR_CONNECT_TIMEOUT', withCode('UND_ERR_CONNECT_TIMEOUT'), 'connect'],
    ['EHOSTUNREACH', withCode('EHOSTUNREACH'), 'connect'],
    ['ENOTFOUND', withCode('ENOTFOUND'), 'connect'],
    ['ECONNRESET', withCode('ECONNRESET'), 'reset'],
    ['UND_ERR_SOCKET', withCode('UND_ERR_SOCKET'), 'reset'],
    ['EPIPE', withCode('EPIPE'), 'reset'],
    ['UND_ERR_HEADERS_OVERFLOW', withCode('UND_ERR_HEADERS_OVERFLOW'), 'other'],
    ['ERR_INVALID_URL', withCode('ERR_INVALID_URL'), 'other'],
    ['nested ECONNREFUSED', wrapped(withCode('ECONNREFUSED')), 'connect'],
    ['nested UND_ERR_CONNECT_TIMEOUT', wrapped(withCode('UND_ERR_CONNECT_TIMEOUT')), 'connect'],
    ['nested ECONNRESET', wrapped(withCode('ECONNRESET')), 'reset'],
    ['nested UND_ERR_SOCKET', wrapped(withCode('UND_ERR_SOCKET')), 'reset'],
    ['doubly nested ECONNRESET', wrapped(wrapped(withCode('ECONNRESET'))), 'reset'],
    ['nested cause as a plain object', { cause: { code: 'ECONNREFUSED' } }, 'connect'],
    ['unknown code outside, known one inside', Object.assign(wrapped(withCode('ECONNRESET')), { code: 'ERR_X' }), 'reset'],
    ['nested unknown code', wrapped(withCode('EWHATEVER')), 'other'],
    ['no code', new Error('boom'), 'other'],
    ['non-string code', Object.assign(new Error('x'), { code: 111 }), 'other'],
    ['undefined', undefined, 'other'],
    ['null', null, 'other'],
    ['a string', 'ECONNREFUSED', 'other'],
    ['AbortError', new DOMException('aborted', 'AbortError'), 'other'],
  ];
  for (const [name, err, expected] of cases) {
    test(`${name} → ${expected}`, () => {
      assert.equal(classifyFailure(err), expected);
    });
  }

  test('a cycle in the cause chain does not hang', () => {
    const a: { code?: string; cause?: unknown } = {};
    const b: { code?: string; cause?: unknown } = { cause: a };
    a.cause = b;
    assert.equal(classifyFailure(a), 'other');
  });
});

describe('errorCode', () => {
  test('prefers a known code from the chain, else the top-level code', () => {
    assert.equal(errorCode(wrapped(withCode('ECONNREFUSED'))), 'ECONNREFUSED');
    assert.equal(errorCode(withCode('ERR_FOO')), 'ERR_FOO');
    assert.equal(errorCode(new Error('x')), undefined);
  });
});

describe('isRetryable', () => {
  const kinds: AttemptFailure[] = ['connect', 'reset', 'timeout', 'other'];
  const methods = ['GET', 'HEAD', 'PUT', 'DELETE', 'POST', 'PATCH'];
  const idempotent = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);
  const expected = (kind: AttemptFailure, method: string, bodyStarted: boolean) => {
    if (bodyStarted) return false;
    if (kind === 'connect') return true;
    if (kind === 'reset' || kind === 'timeout') return idempotent.has(method);
    return false;
  };
  for (const kind of kinds) {
    for (const method of methods) {
      for (const bodyStarted of [false, true]) {
        const want = expected(kind, method, bodyStarted);
        test(`${kind} ${method} bodyStarted=${bodyStarted} → ${want}`, () => {
          assert.equal(isRetryable(kind, method, bodyStarted), want);
        });
      }
    }
  }

  test('the method is case-insensitive', () => {
    assert.equal(isRetryable('reset', 'get', false), true);
    assert.equal(isRetryable('timeout', 'Delete', false), true);
    assert.equal(isRetryable('reset', 'post', false), false);
  });

  test('OPTIONS and TRACE are idempotent too', () => {
    assert.equal(isRetryable('reset', 'OPTIONS', false), true);
    assert.equal(isRetryable('timeout', 'TRACE', false), true);
  });
});
