/**
 * What went wrong talking to an instance, as far as retrying is concerned,
 * for both the gateway's proxy (undici) and the web service's /call (axios):
 * - connect: nothing reached the instance (refused, unreachable, connect timeout)
 * - reset: the connection broke before a response started; the instance may
 *   have received the request (and acted on it)
 * - invalid_response: the instance answered with bytes that are not a
 *   response we can pass on (the gateway's client: a malformed head, untrustworthy
 *   framing); its fault, never retried (nginx's invalid_header is not in its
 *   default proxy_next_upstream either): the instance may have acted on the request
 * - other: anything else (a body error, a cancel...)
 */
export type FailureKind = 'connect' | 'reset' | 'invalid_response' | 'other';

/** A failed attempt: a FailureKind, or no response headers within the caller's timeout. */
export type AttemptFailure = FailureKind | 'timeout';

const CONNECT: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  // The gateway's own upstream client (gateway/src/upstream/client.ts).
  'UPSTREAM_CONNECT_TIMEOUT',
  'UPSTREAM_INVALID_ADDRESS',
]);
const RESET: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/**
 * Codes that mean "the caller's own timer ran out": axios' ECONNABORTED (its
 * `timeout`) and ETIMEDOUT (with clarifyTimeoutError), undici's header and
 * body timeouts. An abort (ERR_CANCELED, AbortError) is not here: whether
 * it was a timeout or the client leaving only the caller knows, from its own
 * signal.
 */
const TIMEOUT: ReadonlySet<string> = new Set(['ECONNABORTED', 'ETIMEDOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UPSTREAM_BODY_TIMEOUT']);

/** Methods that may be sent again after a reset or a timeout. TRACE is refused, so not here. */
export const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

// Clients wrap the socket error ("fetch failed" → cause): look a few levels down.
const MAX_DEPTH = 4;

function* chain(err: unknown): Generator<{ code?: unknown; name?: unknown }> {
  let e = err as { code?: unknown; name?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < MAX_DEPTH; depth++) {
    yield e;
    e = e.cause as typeof e;
  }
}

/** The connect/reset code found in the cause chain, else the top-level code. */
export function errorCode(err: unknown): string | undefined {
  for (const e of chain(err)) {
    if (typeof e.code === 'string' && (CONNECT.has(e.code) || RESET.has(e.code))) return e.code;
  }
  return typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
}

/** The gateway's upstream client could not read the answer (gateway/src/upstream/syntax.ts). */
const INVALID_RESPONSE = 'UPSTREAM_BAD_RESPONSE';

export function classifyFailure(err: unknown): FailureKind {
  const code = errorCode(err);
  if (code && CONNECT.has(code)) return 'connect';
  if (code && RESET.has(code)) return 'reset';
  if (code === INVALID_RESPONSE) return 'invalid_response';
  return 'other';
}

export function isTimeoutCode(code: string | undefined): boolean {
  return code !== undefined && TIMEOUT.has(code);
}

/** A timeout code, or a TimeoutError (AbortSignal.timeout's reason), anywhere in the cause chain. */
export function isTimeout(err: unknown): boolean {
  for (const e of chain(err)) {
    if ((typeof e.code === 'string' && TIMEOUT.has(e.code)) || e.name === 'TimeoutError') return true;
  }
  return false;
}

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
