import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyFailure,
  errorCode,
  IDEMPOTENT,
  isRetryable,
  isTimeout,
  isTimeoutCode,
  type AttemptFailure,
  type FailureKind,
} from './upstream-failure.js';

const withCode = (code: string, message = code) => Object.assign(new Error(message), { code });
const wrapped = (cause: unknown) => new TypeError('fetch failed', { cause });
// What axios throws: an AxiosError carrying the socket error's code, the socket error as cause.
const axiosLike = (code: string) => Object.assign(new Error(`connect ${code}`), { name: 'AxiosError', isAxiosError: true, code, cause: withCode(code) });

describe('classifyFailure', () => {
  const cases: Array<[string, unknown, FailureKind]> = [
    ['ECONNREFUSED', withCode('ECONNREFUSED'), 'connect'],
    ['UND_ERR_CONNECT_TIMEOUT', withCode('UND_ERR_CONNECT_TIMEOUT'), 'connect'],
    ['EHOSTUNREACH', withCode('EHOSTUNREACH'), 'connect'],
    ['ENETUNREACH', withCode('ENETUNREACH'), 'connect'],
    ['EHOSTDOWN', withCode('EHOSTDOWN'), 'connect'],
    ['ENOTFOUND', withCode('ENOTFOUND'), 'connect'],
    ['EAI_AGAIN', withCode('EAI_AGAIN'), 'connect'],
    ['EADDRNOTAVAIL', withCode('EADDRNOTAVAIL'), 'connect'],
    ['ECONNRESET: the instance may have received it', withCode('ECONNRESET'), 'reset'],
    ['UND_ERR_SOCKET', withCode('UND_ERR_SOCKET'), 'reset'],
    ['UND_ERR_CLOSED', withCode('UND_ERR_CLOSED'), 'reset'],
    ['EPIPE', withCode('EPIPE'), 'reset'],
    ['ETIMEDOUT (socket)', withCode('ETIMEDOUT'), 'reset'],
    ['UND_ERR_HEADERS_OVERFLOW', withCode('UND_ERR_HEADERS_OVERFLOW'), 'other'],
    ['ERR_INVALID_URL', withCode('ERR_INVALID_URL'), 'other'],
    ["the gateway client's UPSTREAM_BAD_RESPONSE", withCode('UPSTREAM_BAD_RESPONSE'), 'invalid_response'],
    ['axios ECONNREFUSED', axiosLike('ECONNREFUSED'), 'connect'],
    ['axios ECONNRESET', axiosLike('ECONNRESET'), 'reset'],
    ['axios ECONNABORTED (its timeout)', withCode('ECONNABORTED'), 'other'],
    ['axios ERR_CANCELED', withCode('ERR_CANCELED'), 'other'],
    ['axios ERR_BAD_RESPONSE (maxContentLength)', withCode('ERR_BAD_RESPONSE'), 'other'],
    ['nested ECONNREFUSED', wrapped(withCode('ECONNREFUSED')), 'connect'],
    ['nested UND_ERR_CONNECT_TIMEOUT', wrapped(withCode('UND_ERR_CONNECT_TIMEOUT')), 'connect'],
    ['nested ECONNRESET', wrapped(withCode('ECONNRESET')), 'reset'],
    ['nested UND_ERR_SOCKET', wrapped(withCode('UND_ERR_SOCKET')), 'reset'],
    ['doubly nested ECONNRESET', wrapped(wrapped(withCode('ECONNRESET'))), 'reset'],
    ['nested cause as a plain object', { cause: { code: 'ECONNREFUSED' } }, 'connect'],
    ['unknown code outside, known one inside', Object.assign(wrapped(withCode('ECONNRESET')), { code: 'ERR_X' }), 'reset'],
    ['nested unknown code', wrapped(withCode('EWHATEVER')), 'other'],
    ['too deep to look', wrapped(wrapped(wrapped(wrapped(withCode('ECONNREFUSED'))))), 'other'],
    ['no code', new Error('boom'), 'other'],
    ['non-string code', Object.assign(new Error('x'), { code: 111 }), 'other'],
    ['undefined', undefined, 'other'],
    ['null', null, 'other'],
    ['a string', 'ECONNREFUSED', 'other'],
    ['AbortError', new DOMException('aborted', 'AbortError'), 'other'],
  ];
  for (const [name, err, expected] of cases) {
    test(`${name} → ${expected}`, () => assert.equal(classifyFailure(err), expected));
  }

  test('a cycle in the cause chain does not hang', () => {
    const a: { code?: string; cause?: unknown } = {};
    const b: { code?: string; cause?: unknown } = { cause: a };
    a.cause = b;
    assert.equal(classifyFailure(a), 'other');
    assert.equal(isTimeout(a), false);
  });
});

describe('errorCode', () => {
  test('prefers a known code from the chain, else the top-level code', () => {
    assert.equal(errorCode(wrapped(withCode('ECONNREFUSED'))), 'ECONNREFUSED');
    assert.equal(errorCode(withCode('ERR_FOO')), 'ERR_FOO');
    assert.equal(errorCode(new Error('x')), undefined);
    assert.equal(errorCode(undefined), undefined);
  });
});

describe('isTimeout / isTimeoutCode', () => {
  const cases: Array<[string, unknown, boolean]> = [
    ['axios ECONNABORTED', withCode('ECONNABORTED'), true],
    ['axios ETIMEDOUT', withCode('ETIMEDOUT'), true],
    ['undici headers timeout', withCode('UND_ERR_HEADERS_TIMEOUT'), true],
    ['undici body timeout', withCode('UND_ERR_BODY_TIMEOUT'), true],
    ['nested', wrapped(withCode('UND_ERR_HEADERS_TIMEOUT')), true],
    ['AbortSignal.timeout reason', new DOMException('timed out', 'TimeoutError'), true],
    ['a cancel is not known to be a timeout', withCode('ERR_CANCELED'), false],
    ['AbortError', new DOMException('aborted', 'AbortError'), false],
    ['ECONNREFUSED', withCode('ECONNREFUSED'), false],
    ['UND_ERR_CONNECT_TIMEOUT is a connect failure', withCode('UND_ERR_CONNECT_TIMEOUT'), false],
    ['undefined', undefined, false],
  ];
  for (const [name, err, expected] of cases) {
    test(`${name} → ${expected}`, () => assert.equal(isTimeout(err), expected));
  }
  test('codes', () => {
    assert.equal(isTimeoutCode('ECONNABORTED'), true);
    assert.equal(isTimeoutCode('ERR_CANCELED'), false);
    assert.equal(isTimeoutCode(undefined), false);
  });
});

describe('isRetryable', () => {
  const kinds: AttemptFailure[] = ['connect', 'reset', 'timeout', 'invalid_response', 'other'];
  const methods = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'POST', 'PATCH', 'TRACE', 'CONNECT'];
  const idempotent = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
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
        test(`${kind} ${method} bodyStarted=${bodyStarted} → ${want}`, () => assert.equal(isRetryable(kind, method, bodyStarted), want));
      }
    }
  }

  test('the method is case-insensitive', () => {
    assert.equal(isRetryable('reset', 'get', false), true);
    assert.equal(isRetryable('timeout', 'Delete', false), true);
    assert.equal(isRetryable('reset', 'post', false), false);
  });

  test('TRACE is not idempotent here: it is refused, never replayed', () => {
    assert.equal(IDEMPOTENT.has('TRACE'), false);
    assert.equal(isRetryable('reset', 'TRACE', false), false);
    assert.equal(isRetryable('timeout', 'TRACE', false), false);
  });
});
