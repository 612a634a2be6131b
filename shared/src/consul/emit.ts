import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';

/**
 * A listener's bug is not Consul's fault: `what` (a listener, the handling of
 * an answer) threw. Logged at error level with `fields` and the error, and
 * never counted as a Consul failure (no failover, no backoff, no retry).
 */
export function logBug(log: Logger, what: string, fields: Record<string, unknown>, err: unknown): void {
  log.error({ ...fields, err }, `bug: ${what} threw; consul is not at fault`);
}

/** Runs `fn` (a listener, the handling of an answer); what it throws is logged by logBug. Its result, or `fallback` if it threw. */
export function guard<T>(log: Logger, what: string, fields: Record<string, unknown>, fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch (err) {
    logBug(log, what, fields, err);
    return fallback;
  }
}

/**
 * Emits on behalf of a Consul query, so that what a listener does can never
 * pass for a Consul problem: an 'error' nobody listens to is logged instead
 * of crashing the process, and a listener that throws is logged as the bug it
 * is, while the query carries on as if nothing happened.
 */
export function deliver(emitter: EventEmitter, log: Logger, query: string, event: string, ...args: unknown[]): void {
  if (event === 'error' && emitter.listenerCount('error') === 0) {
    const [err, agent] = args as [{ message?: string } | undefined, string | undefined];
    log.warn({ query, agent, err: err?.message }, 'consul query failed');
    return;
  }
  guard(log, `a listener of the ${query} query`, { query, event }, () => emitter.emit(event, ...args), false);
}
