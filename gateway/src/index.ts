import http from 'node:http';
import { Agent } from 'undici';
import { ConsulPool, Discovery, answerClientErrorsAsJson, createLogger } from '@stack/shared';
import { createApp } from './app.js';
import { describeConfig, gatewayDiscoveryOptions, loadConfig } from './config.js';
import { OutlierDetector } from './outlier.js';
import { Picker, instanceKey } from './picker.js';
import { createProxy } from './proxy.js';
import { RetryBudget } from './retry-budget.js';

const bootLog = createLogger('gateway');
let stopping = false;
let config;
try {
  config = loadConfig();
} catch (err) {
  bootLog.fatal((err as Error).message);
  process.exit(1);
}
const log = createLogger('gateway', config.LOG_LEVEL);
log.info({ config: describeConfig(config) }, 'effective configuration');

const pool = new ConsulPool(config.CONSUL_HTTP_ADDR);
const discovery = new Discovery(pool, gatewayDiscoveryOptions(config), createLogger('gateway.discovery', config.LOG_LEVEL));
const outliers = new OutlierDetector({
  consecutiveFailures: config.EJECT_AFTER_FAILURES,
  baseEjectMs: config.EJECT_BASE_MS,
  maxEjectMs: config.EJECT_MAX_MS,
  maxEjectPercent: config.EJECT_MAX_PERCENT,
});
discovery.on('change', (table) => {
  outliers.retain(new Set([...table.services.values()].flat().map(instanceKey)));
});

// Idle upstream sockets close well before the web service's keep-alive
// timeout, so the gateway never reuses a socket the instance is closing.
const dispatcher = new Agent({
  connect: { timeout: config.CONNECT_TIMEOUT_MS },
  keepAliveTimeout: config.UPSTREAM_KEEPALIVE_MS,
  keepAliveMaxTimeout: config.UPSTREAM_KEEPALIVE_MS,
  bodyTimeout: config.UPSTREAM_BODY_TIMEOUT_MS,
});

const { proxy, inflight } = createProxy({
  table: () => discovery.table,
  synced: () => discovery.synced,
  picker: new Picker(outliers),
  outliers,
  budget: new RetryBudget({
    percent: config.RETRY_BUDGET_PERCENT,
    minPerSecond: config.RETRY_BUDGET_MIN_PER_S,
    windowS: config.RETRY_BUDGET_WINDOW_S,
  }),
  dispatcher,
  log: createLogger('gateway.proxy', config.LOG_LEVEL),
  options: {
    upstreamTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
    bodyTimeoutMs: config.UPSTREAM_BODY_TIMEOUT_MS,
    retries: config.UPSTREAM_RETRIES,
    maxInflight: config.MAX_INFLIGHT,
    retryAfterS: config.RETRY_AFTER_S,
  },
});

const app = createApp({
  log,
  proxy,
  inflight,
  outliers,
  table: () => discovery.table,
  synced: () => discovery.synced,
  syncedAt: () => discovery.syncedAt,
  consul: () => discovery.state(),
});

const handler = app.callback();
const server = http.createServer((req, res) => {
  // Once stopping, every response closes its connection, so keep-alive
  // clients don't hold the shutdown up or send into a closing socket.
  if (stopping) res.shouldKeepAlive = false;
  void handler(req, res);
});
// Longer than any client's idle timeout we expect (browsers, load balancers).
server.keepAliveTimeout = config.KEEP_ALIVE_TIMEOUT_MS;
server.headersTimeout = config.KEEP_ALIVE_TIMEOUT_MS + 1_000;
answerClientErrorsAsJson(server);
server.on('error', (err) => {
  log.fatal({ err: err.message }, 'cannot listen');
  process.exit(1);
});
discovery.watchCatalog();
server.listen(config.PORT, () => {
  const addr = server.address();
  log.info({ port: typeof addr === 'object' && addr ? addr.port : config.PORT }, 'listening');
});

function shutdown(signal: string) {
  if (stopping) {
    log.warn({ signal }, 'second signal: exiting now');
    process.exit(1);
  }
  stopping = true;
  log.info({ signal, inflight: inflight() }, 'shutting down: finishing in-flight requests');
  const force = setTimeout(() => {
    log.warn({ inflight: inflight() }, 'shutdown timeout: closing remaining connections');
    server.closeAllConnections();
  }, config!.SHUTDOWN_TIMEOUT_MS);
  force.unref();
  server.close(async () => {
    discovery.stop();
    pool.close();
    await dispatcher.close().catch(() => undefined);
    log.info('stopped');
    process.exit(0);
  });
  server.closeIdleConnections();
  // Connections busy at close() become idle later: close those as they do.
  setInterval(() => server.closeIdleConnections(), 100).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
