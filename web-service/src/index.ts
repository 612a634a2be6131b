import http from 'node:http';
import {
  answerClientErrorsAsJson,
  ConfigError,
  ConsulAgents,
  createLogger,
  createShutdown,
  Discovery,
  discoveryOptions,
} from '@stack/shared';
import { createApp } from './app.js';
import { createCaller } from './call.js';
import { describeConfig, loadConfig, type Config } from './config.js';
import { DrainState } from './drain.js';
import { createIdentity } from './identity.js';
import { WebMetrics } from './metrics.js';
import { attachEcho } from './ws.js';

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  createLogger('web-service').fatal(err.message);
  process.exit(1);
}

const log = createLogger('web-service', config.LOG_LEVEL);
const identity = createIdentity({ service: config.SERVICE_NAME, serviceAddress: config.SERVICE_ADDRESS, port: config.PORT });
const agents = new ConsulAgents(config.CONSUL_HTTP_ADDR, config.consulToken);
// Lazy: no Consul traffic until the first /call watches a service.
const discovery = new Discovery(agents, discoveryOptions(config, []), log.child({ part: 'discovery' }));
const drain = new DrainState();
const metrics = new WebMetrics({ draining: () => drain.draining });
const caller = createCaller({
  directory: discovery,
  timeoutMs: config.CALL_TIMEOUT_MS,
  discoveryTimeoutMs: config.CALL_DISCOVERY_TIMEOUT_MS,
  maxServices: config.CALL_MAX_SERVICES,
  log,
  observe: (outcome, attempts) => metrics.call(outcome, attempts),
});
const app = createApp({ config, identity, log, drain, caller, metrics });

const server = http.createServer(app.callback());
server.keepAliveTimeout = config.KEEP_ALIVE_TIMEOUT_MS;
server.headersTimeout = config.KEEP_ALIVE_TIMEOUT_MS + 1_000;
server.requestTimeout = Math.max(server.requestTimeout, server.headersTimeout + 1_000);
answerClientErrorsAsJson(server);
const echo = attachEcho(server, { identity, log });

log.info({ config: describeConfig(config), instance: identity.instance, ip: identity.ip }, 'starting');
server.on('error', (err) => {
  log.fatal({ err }, 'server error');
  process.exit(1);
});
server.listen(config.PORT, () => {
  const addr = server.address();
  identity.port = typeof addr === 'object' && addr ? addr.port : config.PORT;
  log.info({ port: identity.port, instance: identity.instance, ip: identity.ip }, 'listening');
});

// A second signal exits at once, and a stop that hangs exits at the backstop (both with 1).
const shutdown = createShutdown({
  server,
  log,
  graceMs: config.DRAIN_GRACE_MS,
  timeoutMs: config.SHUTDOWN_TIMEOUT_MS,
  inFlight: () => drain.inFlight,
  onDraining: () => {
    drain.start();
    echo.close();
    log.info({ graceMs: config.DRAIN_GRACE_MS }, 'draining: /health answers 503');
  },
  onStopped: () => {
    discovery.stop();
    agents.close();
    caller.close();
  },
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    shutdown(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        log.fatal({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}

process.on('unhandledRejection', (err) => {
  log.fatal({ err }, 'unhandled rejection');
  process.exit(1);
});
