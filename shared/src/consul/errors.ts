/**
 * What a failed Consul call means for discovery. Only trouble reaching
 * Consul moves the pool to the next agent: a 403 or a 400 is a
 * misconfiguration that every agent answers the same way, and a cluster
 * without a leader is the same cluster whichever agent we ask.
 */
export type ConsulErrorKind =
  /** No answer: refused, reset, timed out, or a 5xx from the agent. */
  | 'unreachable'
  /** The agent answered but the cluster has no leader (only non-stale reads see this). */
  | 'no-leader'
  /** 401/403: the ACL token (or its absence) does not allow the read. */
  | 'denied'
  /** Any other 4xx: a request Consul will never accept as sent (a malformed name, a proxy in the way). */
  | 'rejected';

export interface ConsulError {
  kind: ConsulErrorKind;
  status?: number;
  message: string;
  /** Worth retrying soon (with backoff). Misconfigurations are retried only slowly. */
  retryable: boolean;
  /** Worth trying the next agent in CONSUL_HTTP_ADDR. */
  failover: boolean;
}

export function classifyConsulError(err: unknown): ConsulError {
  const e = err as { message?: unknown; statusCode?: unknown; response?: { statusCode?: unknown } } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const raw = e?.statusCode ?? e?.response?.statusCode;
  const status = typeof raw === 'number' ? raw : undefined;
  if (/no cluster leader/i.test(message)) return { kind: 'no-leader', status, message, retryable: true, failover: false };
  if (status === 401 || status === 403) return { kind: 'denied', status, message, retryable: false, failover: false };
  // 429 is Consul's rate limit: back off, and another agent may well answer.
  if (status !== undefined && status >= 400 && status < 500 && status !== 429)
    return { kind: 'rejected', status, message, retryable: false, failover: false };
  return { kind: 'unreachable', status, message, retryable: true, failover: true };
}

/** A short, log- and health-friendly description: "403 Permission denied". */
export function describeConsulError(e: ConsulError): string {
  return e.status !== undefined && !e.message.startsWith(String(e.status)) ? `${e.status} ${e.message}` : e.message;
}
