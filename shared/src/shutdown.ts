import type { Server } from 'node:http';
import type { Logger } from './logger.js';

export interface ShutdownOptions {
  server: Server;
  log: Logger;
  /** Keep serving this long after onDraining, so Consul and the gateway stop sending first (0: none). */
  graceMs: number;
  /** Then wait this long for in-flight requests before cutting their connections. */
  timeoutMs: number;
  /** Called first, at once: e.g. make /health answer 503. */
  onDraining?: () => void;
  /** Called once the server is closed: release watches, agents, pools. */
  onStopped?: () => void | Promise<void>;
  /** For the backstop and a second signal; default process.exit. */
  exit?: (code: number) => void;
  /** Slack after graceMs + timeoutMs before the backstop exits with 1; default 2000. */
  backstopMs?: number;
  /** Requests being answered, for the log lines. */
  inFlight?: () => number;
}

// Connections busy at close() become idle later; close each as it does.
const IDLE_SWEEP_MS = 100;

/**
 * The graceful stop both services share: drain hook → grace → stop accepting
 * and close idle connections (then again as they go idle) → after timeoutMs
 * cut what is left → onStopped. Resolves when done; the caller exits 0. A
 * second call exits(1) at once, and a stop that hangs anyway (a hook that
 * never returns) exits(1) at the backstop, so a signal always ends the process.
 */
export function createShutdown(opts: ShutdownOptions): (signal: string) => Promise<void> {
  const { server, log, graceMs, timeoutMs } = opts;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const backstopMs = opts.backstopMs ?? 2_000;
  const inFlight = () => opts.inFlight?.();
  let running = false;

  async function run(signal: string): Promise<void> {
    const t0 = Date.now();
    // Ref'd on purpose: a hung stop must end in exit(1), not linger or pass for a clean exit.
    const backstop = setTimeout(() => {
      log.fatal({ signal, ms: Date.now() - t0, inFlight: inFlight() }, 'shutdown did not finish in time; exiting');
      exit(1);
    }, graceMs + timeoutMs + backstopMs);
    let sweep: NodeJS.Timeout | undefined;
    let deadline: NodeJS.Timeout | undefined;
    try {
      opts.onDraining?.();
      log.info({ signal, graceMs, timeoutMs, inFlight: inFlight() }, 'shutting down: draining');
      await new Promise((r) => setTimeout(r, graceMs));

      const closed = new Promise<boolean>((resolve) => server.close(() => resolve(true)));
      server.closeIdleConnections();
      sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
      log.info({ inFlight: inFlight() }, 'stopped accepting connections; waiting for in-flight requests');
      const timedOut = new Promise<boolean>((resolve) => (deadline = setTimeout(() => resolve(false), timeoutMs)));
      if (!(await Promise.race([closed, timedOut]))) {
        log.warn({ inFlight: inFlight() }, 'in-flight requests outlived the shutdown timeout; closing their connections');
        server.closeAllConnections();
      }
      clearInterval(sweep);
      await opts.onStopped?.();
      log.info({ ms: Date.now() - t0 }, 'stopped');
    } finally {
      clearTimeout(backstop);
      clearTimeout(deadline);
      clearInterval(sweep);
    }
  }

  return (signal) => {
    if (running) {
      log.warn({ signal }, 'second signal: exiting now');
      exit(1);
      return Promise.resolve();
    }
    running = true;
    return run(signal);
  };
}
