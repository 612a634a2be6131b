import { z } from 'zod';
import { boolVar, describeTokenVars, discoveryEnv, intVar, isValidServiceName, listVar, logLevelVar, parseEnv, resolveConsulToken } from '@stack/shared';

/** Every variable the service reads, with its default: the one place they live. */
const serviceName = (def: string) =>
  z
    .string()
    .trim()
    .refine(isValidServiceName, 'expected letters, digits and dashes (a Consul service name)')
    .optional()
    .transform((v) => v ?? def);

const schema = z.object({
  PORT: intVar(3000, 0, 65_535),
  SERVICE_NAME: serviceName('service-web'),
  // What other hosts reach us on; empty means "detect".
  SERVICE_ADDRESS: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9.:%-]*$/, 'expected an IP address or host name')
    .max(253)
    .optional()
    .transform((v) => v || undefined),
  ...discoveryEnv,
  // Below the gateway's UPSTREAM_TIMEOUT_MS (5 s): a slow callee gets our own 504 back to the
  // gateway in time, instead of the gateway timing us out and counting it against this instance.
  CALL_TIMEOUT_MS: intVar(4_000, 100, 600_000),
  CALL_DISCOVERY_TIMEOUT_MS: intVar(2_000, 100, 60_000),
  CALL_MAX_SERVICES: intVar(32, 1, 1_000),
  // /call never calls the gateway: a call through it can come back here, and so on (see call-policy.ts).
  GATEWAY_SERVICE_NAME: serviceName('gateway'),
  // More names /call refuses (consul and the gateway always are).
  CALL_DENY: listVar().transform((names) => names.map((n) => n.toLowerCase())),
  // Calling itself is a one-hop loop; off unless asked for.
  CALL_ALLOW_SELF: boolVar(false),
  // /call hops one request may already have made (Via entries marked "(call)"); 0 turns /call off.
  CALL_MAX_DEPTH: intVar(1, 0, 8),
  DRAIN_GRACE_MS: intVar(3_000, 0, 60_000),
  SHUTDOWN_TIMEOUT_MS: intVar(5_000, 0, 60_000),
  // Must outlast the gateway's upstream idle timeout (4 s) so the gateway closes first.
  KEEP_ALIVE_TIMEOUT_MS: intVar(65_000, 1_000, 600_000),
  ENABLE_FAULTS: boolVar(false),
  LOG_LEVEL: logLevelVar,
});

export type Config = z.output<typeof schema> & {
  /** The ACL token for Consul, from CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE. */
  consulToken: string | undefined;
};

/** Throws shared's ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = parseEnv(schema, env);
  return { ...parsed, consulToken: resolveConsulToken(parsed) };
}

/** The effective config as logged at start (Consul agents as URLs). */
export function describeConfig(c: Config): Record<string, unknown> {
  return { ...c, CONSUL_HTTP_ADDR: c.CONSUL_HTTP_ADDR.map((a) => a.url), ...describeTokenVars(c) };
}
