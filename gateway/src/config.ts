import { z } from 'zod';
import { boolVar, ConfigError, describeTokenVars, discoveryEnv, discoveryOptions, intVar, listVar, logLevelVar, parseEnv, resolveConsulToken } from '@stack/shared';

/** Every gateway setting and its default, in one place. */
const schema = z.object({
  PORT: intVar(3000, 0, 65535),
  ...discoveryEnv,
  GATEWAY_SERVICE_NAME: z.string().trim().min(1).optional().transform((v) => v ?? 'gateway'),
  EXCLUDE_SERVICES: listVar(),
  CONNECT_TIMEOUT_MS: intVar(1_000, 1, 120_000),
  UPSTREAM_TIMEOUT_MS: intVar(5_000, 1, 600_000),
  UPSTREAM_BODY_TIMEOUT_MS: intVar(30_000, 0, 3_600_000),
  UPSTREAM_KEEPALIVE_MS: intVar(4_000, 100, 600_000),
  UPSTREAM_RETRIES: intVar(2, 0, 10),
  RETRY_BUDGET_PERCENT: intVar(20, 0, 100),
  RETRY_BUDGET_MIN_PER_S: intVar(10, 0, 100_000),
  RETRY_BUDGET_WINDOW_S: intVar(10, 1, 600),
  MAX_INFLIGHT: intVar(1_000, 1, 1_000_000),
  EJECT_AFTER_FAILURES: intVar(3, 1, 1_000),
  EJECT_BASE_MS: intVar(5_000, 1, 3_600_000),
  EJECT_MAX_MS: intVar(30_000, 1, 3_600_000),
  EJECT_MAX_PERCENT: intVar(50, 0, 100),
  RETRY_AFTER_S: intVar(1, 0, 3_600),
  // Client-side limits; README "Security and limits" gives each one's reference.
  HEADERS_TIMEOUT_MS: intVar(10_000, 1_000, 600_000),
  REQUEST_TIMEOUT_MS: intVar(300_000, 1_000, 3_600_000),
  REQUEST_BODY_IDLE_MS: intVar(60_000, 1_000, 3_600_000),
  KEEP_ALIVE_TIMEOUT_MS: intVar(65_000, 1_000, 3_600_000),
  MAX_CONNECTIONS: intVar(10_000, 1, 1_000_000),
  MAX_URL_BYTES: intVar(8_192, 64, 1_048_576),
  MAX_BODY_BYTES: intVar(10 * 1024 * 1024, 0, Number.MAX_SAFE_INTEGER),
  SHUTDOWN_TIMEOUT_MS: intVar(8_000, 0, 600_000),
  // WebSocket tunnels (docs/routes.md): half of MAX_CONNECTIONS, so long-lived sockets can't take
  // every slot; idle: Envoy's stream_idle_timeout (5 min; nginx's proxy_read_timeout is 60 s).
  UPGRADE_MAX_CONNECTIONS: intVar(5_000, 0, 1_000_000),
  UPGRADE_IDLE_TIMEOUT_MS: intVar(300_000, 1_000, 86_400_000),
  ACCESS_LOG: boolVar(false),
  LOG_LEVEL: logLevelVar,
});

export type GatewayEnv = z.output<typeof schema>;

export interface GatewayConfig extends GatewayEnv {
  /** Never routed: consul, the gateway itself and EXCLUDE_SERVICES. */
  excluded: Set<string>;
  /** The ACL token for Consul, from CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE. */
  consulToken: string | undefined;
}

export function loadConfig(env: Record<string, string | undefined> = process.env): GatewayConfig {
  const parsed = parseEnv(schema, env);
  if (parsed.REQUEST_TIMEOUT_MS < parsed.HEADERS_TIMEOUT_MS) {
    throw new ConfigError(`REQUEST_TIMEOUT_MS (${parsed.REQUEST_TIMEOUT_MS}) must be at least HEADERS_TIMEOUT_MS (${parsed.HEADERS_TIMEOUT_MS})`);
  }
  const excluded = new Set(
    ['consul', parsed.GATEWAY_SERVICE_NAME, ...parsed.EXCLUDE_SERVICES].map((s) => s.toLowerCase()),
  );
  return { ...parsed, excluded, consulToken: resolveConsulToken(parsed) };
}

export function gatewayDiscoveryOptions(c: GatewayConfig) {
  return discoveryOptions(c, c.excluded);
}

/** The config as logged at start: addresses as URLs, sets as lists. */
export function describeConfig(c: GatewayConfig) {
  return { ...c, CONSUL_HTTP_ADDR: c.CONSUL_HTTP_ADDR.map((a) => a.url), excluded: [...c.excluded], ...describeTokenVars(c) };
}
