/**
 * What went wrong talking to an instance, as far as retrying is concerned:
 * - connect: nothing reached the instance (refused, unreachable, connect timeout)
 * - reset: the connection broke before a response started
 * - other: anything else (a malformed response, a body error...)
 */
export type FailureKind = 'connect' | 'reset' | 'other';

const CONNECT = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);
const RESET = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

export function errorCode(err: unknown): string | undefined {
  let e = err as { code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e && depth < 4; depth++) {
    if (typeof e.code === 'string' && (CONNECT.has(e.code) || RESET.has(e.code))) return e.code;
    e = e.cause as typeof e;
  }
  return typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
}

export function classifyFailure(err: unknown): FailureKind {
  const code = errorCode(err);
  if (code && CONNECT.has(code)) return 'connect';
  if (code && RESET.has(code)) return 'reset';
  return 'other';
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export type AttemptFailure = FailureKind | 'timeout';

/**
 * Whether a failed attempt may go to another instance. A request whose body
 * was already (partly) streamed upstream can't be replayed. Connection
 * failures are safe for any method; resets and timeouts only for idempotent
 * methods, since the instance may have acted on the request.
 */
export function isRetryable(kind: AttemptFailure, method: string, bodyStarted: boolean): boolean {
  if (bodyStarted) return false;
  if (kind === 'connect') return true;
  if (kind === 'reset' || kind === 'timeout') return IDEMPOTENT.has(method.toUpperCase());
  return false;
}
