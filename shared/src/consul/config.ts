import { z } from 'zod';
import { intVar } from '../env.js';
import { parseConsulAddrs } from './addresses.js';
import type { DiscoveryOptions } from './discovery.js';

/** CONSUL_HTTP_ADDR: one agent or a comma-separated failover list. */
function consulAddrsVar(def: string) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      try {
        return parseConsulAddrs(v ?? def);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    });
}

/** The discovery settings both services read, with their defaults. */
export const discoveryEnv = {
  CONSUL_HTTP_ADDR: consulAddrsVar('127.0.0.1:8500'),
  CONSUL_WAIT_MS: intVar(30_000, 1_000, 600_000),
  CONSUL_BACKOFF_BASE_MS: intVar(200, 10, 60_000),
  CONSUL_BACKOFF_MAX_MS: intVar(5_000, 10, 300_000),
  CONSUL_EMPTY_CONFIRM_MS: intVar(3_000, 0, 600_000),
  CONSUL_STALE_AFTER_MS: intVar(5_000, 0, 600_000),
  CONSUL_PROBE_INTERVAL_MS: intVar(2_000, 0, 600_000),
};

export function discoveryOptions(
  c: {
    CONSUL_WAIT_MS: number;
    CONSUL_BACKOFF_BASE_MS: number;
    CONSUL_BACKOFF_MAX_MS: number;
    CONSUL_EMPTY_CONFIRM_MS: number;
    CONSUL_STALE_AFTER_MS: number;
    CONSUL_PROBE_INTERVAL_MS: number;
  },
  excluded: Iterable<string>,
): DiscoveryOptions {
  return {
    waitMs: c.CONSUL_WAIT_MS,
    backoffBaseMs: c.CONSUL_BACKOFF_BASE_MS,
    backoffMaxMs: c.CONSUL_BACKOFF_MAX_MS,
    emptyConfirmMs: c.CONSUL_EMPTY_CONFIRM_MS,
    staleAfterMs: c.CONSUL_STALE_AFTER_MS,
    probeIntervalMs: c.CONSUL_PROBE_INTERVAL_MS,
    excluded: new Set([...excluded].map((s) => s.toLowerCase())),
  };
}
