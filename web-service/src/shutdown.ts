import type { Server } from 'node:http';
import type { Logger } from '@stack/shared';
import type { DrainState } from './drain.js';
import { sleep } from './http.js';

export interface ShutdownDeps {
  server: Server;
  drain: DrainState;
  log: Logger;
  /** Keep answering this long with /health 503, so Consul and the gateway stop sending first. */
  graceMs: number;
  /** Then wait this long for in-flight requests before cutting their connections. */
  timeoutMs: number;
  /** Release everything else (discovery watches, agents). */
  onStopped?: () => void | Promise<void>;
}

/** Returns the graceful stop: drain, grace, close, wait (bounded), release. */
export function createShutdown(deps: ShutdownDeps): (signal: string) => Promise<void> {
  const { server, drain, log } = deps;
  return async (signal) => {
    const t0 = Date.now();
    drain.start();
    log.info({ signal, graceMs: deps.graceMs, timeoutMs: deps.timeoutMs, inFlight: drain.inFlight }, 'draining: /health answers 503');
    await sleep(deps.graceMs);

    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    log.info({ inFlight: drain.inFlight }, 'stopped accepting connections; waiting for in-flight requests');
    const timer = new AbortController();
    const finished = await Promise.race([closed.then(() => true), sleep(deps.timeoutMs, timer.signal).then(() => false)]);
    timer.abort();
    if (!finished) {
      log.warn({ inFlight: drain.inFlight }, 'in-flight requests outlived the shutdown timeout; closing their connections');
      server.closeAllConnections();
    }
    await deps.onStopped?.();
    log.info({ ms: Date.now() - t0 }, 'stopped');
  };
}
