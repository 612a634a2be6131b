import type { IncomingMessage } from 'node:http';
import { pino } from 'pino';
import { createLogger } from '@stack/shared';
import type { Exchange } from '../proxy/exchange.js';

/**
 * The opt-in access log (ACCESS_LOG=true), as fabio and Traefik have it: off
 * by default because a line per request costs 10-15 % of the proxy's CPU.
 * When on it is written through an asynchronous, buffered destination so a
 * slow stdout never blocks the event loop.
 */
export function createAccessLog(level: Parameters<typeof createLogger>[1]) {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  const log = createLogger('gateway.access', level, dest);
  const started = new WeakMap<IncomingMessage, number>();
  return {
    /** Marks a request's start; only called when the log is on. */
    start(req: IncomingMessage) {
      started.set(req, performance.now());
    },
    done(req: IncomingMessage, status: number, requestId: string, x: Exchange | null) {
      const t0 = started.get(req);
      log.info(
        {
          requestId,
          method: req.method,
          url: req.url,
          service: x?.service,
          instance: x?.instance?.id,
          attempts: x?.attempts,
          status,
          ms: t0 === undefined ? undefined : Math.round((performance.now() - t0) * 10) / 10,
        },
        'request',
      );
    },
    flush() {
      dest.flushSync();
    },
  };
}

export type AccessLog = ReturnType<typeof createAccessLog>;
