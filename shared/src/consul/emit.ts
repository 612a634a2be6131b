import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';

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
  try {
    emitter.emit(event, ...args);
  } catch (err) {
    log.error({ query, event, err }, `bug: a listener of the ${query} query threw on '${event}'; consul is not at fault and the query goes on`);
  }
}
