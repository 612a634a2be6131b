import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, intVar } from '../env.js';
import { parseConsulAddrs } from './agents.js';
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
  // Every followed service read once from the leader this often, to catch a change the blocking
  // queries missed (0: off). At most 20 reads a second, so a large catalog takes longer per pass.
  CONSUL_RECONCILE_INTERVAL_MS: intVar(30_000, 0, 3_600_000),
  // The ACL token sent on every Consul call (X-Consul-Token), or a file holding it: the names
  // Consul's own CLI and API clients read. Unset: no token (Consul's anonymous token).
  CONSUL_HTTP_TOKEN: z.string().trim().optional().transform((v) => v || undefined),
  CONSUL_HTTP_TOKEN_FILE: z.string().trim().optional().transform((v) => v || undefined),
};

interface TokenVars {
  CONSUL_HTTP_TOKEN?: string | undefined;
  CONSUL_HTTP_TOKEN_FILE?: string | undefined;
}

/**
 * The token from CONSUL_HTTP_TOKEN or the file CONSUL_HTTP_TOKEN_FILE names, read once at start
 * (a rotated token takes a restart; README "Stack security"). Both set is an error rather than a
 * silent precedence rule; an unreadable or empty file is an error naming the variable.
 */
export function resolveConsulToken(c: TokenVars, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): string | undefined {
  if (c.CONSUL_HTTP_TOKEN && c.CONSUL_HTTP_TOKEN_FILE)
    throw new ConfigError('invalid configuration:\n  CONSUL_HTTP_TOKEN and CONSUL_HTTP_TOKEN_FILE are both set: set one');
  if (!c.CONSUL_HTTP_TOKEN_FILE) return c.CONSUL_HTTP_TOKEN;
  let token: string;
  try {
    token = read(c.CONSUL_HTTP_TOKEN_FILE).trim();
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  CONSUL_HTTP_TOKEN_FILE=${JSON.stringify(c.CONSUL_HTTP_TOKEN_FILE)}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!token) throw new ConfigError(`invalid configuration:\n  CONSUL_HTTP_TOKEN_FILE=${JSON.stringify(c.CONSUL_HTTP_TOKEN_FILE)}: the file is empty`);
  return token;
}

/** The token vars as logged at start: never the secret itself. */
export function describeTokenVars(c: TokenVars & { consulToken?: string | undefined }) {
  return {
    CONSUL_HTTP_TOKEN: c.CONSUL_HTTP_TOKEN ? '(set)' : undefined,
    CONSUL_HTTP_TOKEN_FILE: c.CONSUL_HTTP_TOKEN_FILE,
    consulToken: c.consulToken ? '(set)' : '(none: anonymous)',
  };
}

export function discoveryOptions(
  c: {
    CONSUL_WAIT_MS: number;
    CONSUL_BACKOFF_BASE_MS: number;
    CONSUL_BACKOFF_MAX_MS: number;
    CONSUL_EMPTY_CONFIRM_MS: number;
    CONSUL_STALE_AFTER_MS: number;
    CONSUL_PROBE_INTERVAL_MS: number;
    CONSUL_RECONCILE_INTERVAL_MS: number;
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
    reconcileIntervalMs: c.CONSUL_RECONCILE_INTERVAL_MS,
    excluded: new Set([...excluded].map((s) => s.toLowerCase())),
  };
}
