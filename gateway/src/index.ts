import { ConsulAgents, consulStatus, createLogger, createShutdown, Discovery, readService } from '@stack/shared';
import { createAccessLog } from './observe/access-log.js';
import { createApp } from './admin/app.js';
import { ConsulServers } from './admin/consul-servers.js';
import { DASHBOARD_DEFAULTS as DASH } from './admin/dashboard.js';
import { dashboardScript } from './admin/ui/script.js';
import { EventFeed } from './admin/events.js';
import { createExplainer, exclusionReason } from './admin/explain.js';
import { describeConfig, gatewayDiscoveryOptions, loadConfig } from './config.js';
import { InstancePicker } from './balancing/instance-picker.js';
import { TRY_BUDGET_DEFAULTS, TryBudget } from './balancing/hedge.js';
import { LiveStats } from './observe/live-stats.js';
import { GatewayMetrics } from './observe/metrics.js';
import { observers } from './observe/observer.js';
import { OutlierDetector } from './balancing/outlier.js';
import { createProxy } from './proxy/proxy.js';
import { RetryBudget } from './balancing/retry-budget.js';
import { RouteBuilder } from './routes/table.js';
import { createGatewayServer } from './proxy/server.js';
import { createUpgrades } from './proxy/upgrade.js';
import { SseHub } from './admin/sse.js';
import { UpstreamClient } from './upstream/client.js';

// Wiring only: Consul watch → route table → picker → proxy, and the server in front.
const bootLog = createLogger('gateway');
let config;
try {
  config = loadConfig();
  // Read now, not on the first page view: a build without the dashboard's script fails at start.
  dashboardScript();
} catch (err) {
  bootLog.fatal((err as Error).message);
  process.exit(1);
}
const log = createLogger('gateway', config.LOG_LEVEL);
log.info({ config: describeConfig(config) }, 'effective configuration');

const agents = new ConsulAgents(config.CONSUL_HTTP_ADDR, config.consulToken);
const discovery = new Discovery(agents, gatewayDiscoveryOptions(config), createLogger('gateway.discovery', config.LOG_LEVEL));
const outliers = new OutlierDetector({
  consecutiveFailures: config.EJECT_AFTER_FAILURES,
  baseEjectMs: config.EJECT_BASE_MS,
  maxEjectMs: config.EJECT_MAX_MS,
  maxEjectPercent: config.EJECT_MAX_PERCENT,
});
const picker = new InstancePicker(outliers, config.LB_POLICY);
const tryBudget = new TryBudget({
  ...TRY_BUDGET_DEFAULTS,
  fixedMs: config.UPSTREAM_TRY_TIMEOUT_MS,
  minMs: config.UPSTREAM_TRY_TIMEOUT_MIN_MS,
  maxMs: config.UPSTREAM_TRY_TIMEOUT_MAX_MS,
});
// Routes from tags: rebuilt from each table discovery publishes, replaced whole (the snapshot is immutable).
const routes = new RouteBuilder();
let lastRejected = '';
discovery.on('change', (table) => {
  const snap = routes.update(table);
  const rejected = JSON.stringify(snap.rejected);
  if (rejected !== lastRejected && snap.rejected.length > 0) log.warn({ rejected: snap.rejected }, 'route tags ignored (see /_gateway/routes)');
  lastRejected = rejected;
});
discovery.on('change', (table) => {
  const keys = new Set([...table.services.values()].flat().map((i) => i.key));
  outliers.retain(keys);
  picker.retain(table.services.keys(), keys);
  tryBudget.retain(table.services.keys());
});

// The dashboard's story: table changes, ejections and Consul's health as events, streamed over SSE.
const events = new EventFeed({
  table: () => discovery.table,
  state: () => discovery.state(),
  ejectedUntil: (key) => outliers.ejectedUntil(key),
  capacity: DASH.events,
});
discovery.on('change', (table) => events.tableChanged(table));
discovery.once('synced', () => events.synced(discovery.table.services.size));
const sse = new SseHub(events, { max: DASH.maxStreams, heartbeatMs: DASH.heartbeatMs, retryMs: DASH.retryMs });
const consulServers = new ConsulServers(() => consulStatus(agents), {
  intervalMs: DASH.serversIntervalMs,
  idleMs: DASH.serversIdleMs,
  wanted: () => sse.size > 0,
  onLeaderChange: (from, to) => events.record({ type: 'consul-leader-changed', detail: `raft leader ${from ?? 'none'} → ${to ?? 'none'}` }),
});

// Idle upstream sockets close well before the web service's keep-alive
// timeout, so the gateway never reuses a socket the instance is closing.
const upstream = new UpstreamClient({
  connectTimeoutMs: config.CONNECT_TIMEOUT_MS,
  keepAliveMs: config.UPSTREAM_KEEPALIVE_MS,
  bodyTimeoutMs: config.UPSTREAM_BODY_TIMEOUT_MS,
});

const access = config.ACCESS_LOG ? createAccessLog(config.LOG_LEVEL) : null;

// Prometheus metrics (/metrics) and the dashboard's live figures (/_gateway/stats), both fed by the proxy's observer.
const metrics = new GatewayMetrics({
  table: () => discovery.table,
  inflight: () => proxy.inflight(),
  consul: () => discovery.state(),
  outliers,
  load: (list) => picker.view(list),
  upgraded: () => upgrades.perService(),
  routes: () => ({ routes: routes.snapshot.routes.length, conflicts: routes.snapshot.routes.filter((r) => r.losers.length > 0).length, rejected: routes.snapshot.rejected.length }),
});
const liveStats = new LiveStats(() => discovery.table, undefined, (list) => picker.view(list));
discovery.on('applied', (_service: string, ms: number) => metrics.discoveryApplied(ms));

const proxy = createProxy({
  table: () => discovery.table,
  synced: () => discovery.synced,
  routes: () => routes.snapshot,
  picker,
  outliers,
  tryBudget,
  budget: new RetryBudget({
    percent: config.RETRY_BUDGET_PERCENT,
    minPerSecond: config.RETRY_BUDGET_MIN_PER_S,
    windowS: config.RETRY_BUDGET_WINDOW_S,
  }),
  upstream,
  log: createLogger('gateway.proxy', config.LOG_LEVEL),
  onDone: access ? (req, status, requestId, x) => access.done(req, status, requestId, x) : undefined,
  observer: observers(metrics, liveStats, tryBudget),
  options: {
    upstreamTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
    retries: config.UPSTREAM_RETRIES,
    hedging: config.UPSTREAM_HEDGING,
    maxInflight: config.MAX_INFLIGHT,
    retryAfterS: config.RETRY_AFTER_S,
    maxUrlBytes: config.MAX_URL_BYTES,
    viaName: config.GATEWAY_SERVICE_NAME,
    body: { maxBytes: config.MAX_BODY_BYTES, idleMs: config.REQUEST_BODY_IDLE_MS, stallMs: config.UPSTREAM_TIMEOUT_MS },
  },
});

const upgrades = createUpgrades({
  route: proxy.route,
  table: () => discovery.table,
  picker,
  viaName: config.GATEWAY_SERVICE_NAME,
  log: createLogger('gateway.upgrade', config.LOG_LEVEL),
  limits: {
    max: config.UPGRADE_MAX_CONNECTIONS,
    idleMs: config.UPGRADE_IDLE_TIMEOUT_MS,
    connectTimeoutMs: config.CONNECT_TIMEOUT_MS,
    handshakeTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
  },
});

const explainer = createExplainer({
  table: () => discovery.table,
  synced: () => discovery.synced,
  tracked: (name) => discovery.serviceView(name),
  read: (name) => readService(agents, name, false),
  ejection: (key) => outliers.ejection(key),
  exclusion: (name) => exclusionReason(name, config),
  staleAfterMs: config.CONSUL_STALE_AFTER_MS,
  balancer: { policy: config.LB_POLICY, view: (list) => picker.view(list) },
});

const app = createApp({
  log,
  explain: explainer.explain,
  inflight: proxy.inflight,
  outliers,
  table: () => discovery.table,
  routes: () => routes.snapshot,
  synced: () => discovery.synced,
  syncedAt: () => discovery.syncedAt,
  consul: () => discovery.state(),
  stats: () => liveStats.toJSON(),
  metrics,
  dashboard: { events, hub: sse, servers: consulServers },
  onDone: access ? (ctx) => access.done(ctx.req, ctx.status, ctx.state.requestId as string, null) : undefined,
});

const admin = app.callback();
const gateway = createGatewayServer({
  admin: (req, res) => void admin(req, res),
  proxy,
  upgrade: upgrades,
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
events.start(DASH.sampleMs);
consulServers.start();
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
    // Open event streams would otherwise hold the server open until the shutdown timeout.
    sse.close();
    // WebSockets get SHUTDOWN_TIMEOUT_MS to close on their own, then are cut.
    void upgrades.drain(config.SHUTDOWN_TIMEOUT_MS);
    log.info({ inflight: proxy.inflight() }, 'shutting down: finishing in-flight requests');
  },
  onStopped: async () => {
    discovery.stop();
    events.stop();
    consulServers.stop();
    agents.close();
    await upstream.close().catch(() => undefined);
    access?.flush();
  },
  exit: (code) => process.exit(code),
});
process.on('SIGTERM', () => void shutdown('SIGTERM').then(() => process.exit(0)));
process.on('SIGINT', () => void shutdown('SIGINT').then(() => process.exit(0)));
