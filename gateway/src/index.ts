import { Agent } from 'undici';
import { ConsulPool, createLogger, createShutdown, Discovery } from '@stack/shared';
import { createAccessLog } from './access-log.js';
import { createApp } from './app.js';
import { describeConfig, gatewayDiscoveryOptions, loadConfig } from './config.js';
import { InstancePicker, instanceKey } from './instance-picker.js';
import { OutlierDetector } from './outlier.js';
import { createProxy } from './proxy.js';
import { RetryBudget } from './retry-budget.js';
import { createGatewayServer } from './server.js';

// Wiring only: Consul watch → route table → picker → proxy, and the server in front.
const bootLog = createLogger('gateway');
let config;
try {
  config = loadConfig();
} catch (err) {
  bootLog.fatal((err as Error).message);
  process.exit(1);
}
const log = createLogger('gateway', config.LOG_LEVEL);
log.info({ config: describeConfig(config) }, 'effective configuration');

const pool = new ConsulPool(config.CONSUL_HTTP_ADDR, config.consulToken);
const discovery = new Discovery(pool, gatewayDiscoveryOptions(config), createLogger('gateway.discovery', config.LOG_LEVEL));
const outliers = new OutlierDetector({
  consecutiveFailures: config.EJECT_AFTER_FAILURES,
  baseEjectMs: config.EJECT_BASE_MS,
  maxEjectMs: config.EJECT_MAX_MS,
  maxEjectPercent: config.EJECT_MAX_PERCENT,
});
const picker = new InstancePicker(outliers);
discovery.on('change', (table) => {
  outliers.retain(new Set([...table.services.values()].flat().map(instanceKey)));
  picker.retain(table.services.keys());
});

// Idle upstream sockets close well before the web service's keep-alive
// timeout, so the gateway never reuses a socket the instance is closing.
const dispatcher = new Agent({
  connect: { timeout: config.CONNECT_TIMEOUT_MS },
  keepAliveTimeout: config.UPSTREAM_KEEPALIVE_MS,
  keepAliveMaxTimeout: config.UPSTREAM_KEEPALIVE_MS,
  bodyTimeout: config.UPSTREAM_BODY_TIMEOUT_MS,
});

const access = config.ACCESS_LOG ? createAccessLog(config.LOG_LEVEL) : null;

const proxy = createProxy({
  table: () => discovery.table,
  synced: () => discovery.synced,
  picker,
  outliers,
  budget: new RetryBudget({
    percent: config.RETRY_BUDGET_PERCENT,
    minPerSecond: config.RETRY_BUDGET_MIN_PER_S,
    windowS: config.RETRY_BUDGET_WINDOW_S,
  }),
  dispatcher,
  log: createLogger('gateway.proxy', config.LOG_LEVEL),
  onDone: access ? (req, status, requestId, x) => access.done(req, status, requestId, x) : undefined,
  options: {
    upstreamTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
    bodyTimeoutMs: config.UPSTREAM_BODY_TIMEOUT_MS,
    retries: config.UPSTREAM_RETRIES,
    maxInflight: config.MAX_INFLIGHT,
    retryAfterS: config.RETRY_AFTER_S,
    maxUrlBytes: config.MAX_URL_BYTES,
    viaName: config.GATEWAY_SERVICE_NAME,
    body: { maxBytes: config.MAX_BODY_BYTES, idleMs: config.REQUEST_BODY_IDLE_MS, stallMs: config.UPSTREAM_TIMEOUT_MS },
  },
});

const app = createApp({
  log,
  inflight: proxy.inflight,
  outliers,
  table: () => discovery.table,
  synced: () => discovery.synced,
  syncedAt: () => discovery.syncedAt,
  consul: () => discovery.state(),
  onDone: access ? (ctx) => access.done(ctx.req, ctx.status, ctx.state.requestId as string, null) : undefined,
});

const admin = app.callback();
const gateway = createGatewayServer({
  admin: (req, res) => void admin(req, res),
  proxy,
  onRequest: access ? (req) => access.start(req) : undefined,
  limits: {
    headersTimeoutMs: config.HEADERS_TIMEOUT_MS,
    requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: config.KEEP_ALIVE_TIMEOUT_MS,
    maxConnections: config.MAX_CONNECTIONS,
  },
  log,
});
const { server } = gateway;
server.on('error', (err) => {
  log.fatal({ err: err.message }, 'cannot listen');
  process.exit(1);
});
discovery.watchCatalog();
server.listen(config.PORT, () => {
  const addr = server.address();
  log.info({ port: typeof addr === 'object' && addr ? addr.port : config.PORT }, 'listening');
});

const shutdown = createShutdown({
  server,
  log,
  graceMs: 0,
  timeoutMs: config.SHUTDOWN_TIMEOUT_MS,
  onDraining: () => {
    gateway.stop();
    log.info({ inflight: proxy.inflight() }, 'shutting down: finishing in-flight requests');
  },
  onStopped: async () => {
    discovery.stop();
    pool.close();
    await dispatcher.close().catch(() => undefined);
    access?.flush();
  },
  exit: (code) => process.exit(code),
});
process.on('SIGTERM', () => void shutdown('SIGTERM').then(() => process.exit(0)));
process.on('SIGINT', () => void shutdown('SIGINT').then(() => process.exit(0)));
