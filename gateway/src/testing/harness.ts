// Test support (not built into dist/): the gateway's real server, admin app
// and proxy in-process, on port 0, over a route table the test controls, and
// real upstream HTTP servers to proxy to.
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type ConsulState, createLogger, emptyTable, type Instance, instanceKey, type RouteTable, setService } from '@stack/shared';
import { createApp } from '../admin/app.js';
import type { LbPolicy } from '../balancing/balancer.js';
import { TRY_BUDGET_DEFAULTS, TryBudget, type TryBudgetOptions } from '../balancing/hedge.js';
import { InstancePicker } from '../balancing/instance-picker.js';
import { observers, type ProxyObserver } from '../observe/observer.js';
import { OutlierDetector, type OutlierOptions } from '../balancing/outlier.js';
import { createProxy, type ProxyOptions } from '../proxy/proxy.js';
import { RetryBudget, type RetryBudgetOptions } from '../balancing/retry-budget.js';
import { createGatewayServer, type ServerLimits } from '../proxy/server.js';
import { UpstreamClient, type UpstreamClientOptions } from '../upstream/client.js';
import { RouteBuilder } from '../routes/table.js';
import { createUpgrades, type UpgradeLimits } from '../proxy/upgrade.js';

export const consulOk: ConsulState = {
  reachable: true,
  agent: 'http://127.0.0.1:8500',
  lastContact: '2024-05-01T12:00:05.000Z',
  lastError: null,
  knownLeader: true,
  lastContactMs: 0,
  degraded: false,
  reasons: [],
};

export const defaultProxyOptions: ProxyOptions = {
  upstreamTimeoutMs: 2_000,
  retries: 2,
  retryAfterS: 1,
  maxInflight: 1_000,
  maxUrlBytes: 8_192,
  viaName: 'gateway',
  body: { maxBytes: 1024 * 1024, idleMs: 2_000, stallMs: 2_000 },
};

export const testUpstreamOptions: UpstreamClientOptions = { connectTimeoutMs: 1_000, keepAliveMs: 4_000, bodyTimeoutMs: 5_000 };

export interface HarnessOptions {
  table?: RouteTable;
  synced?: boolean;
  proxy?: Partial<ProxyOptions>;
  upstream?: Partial<UpstreamClientOptions>;
  outliers?: Partial<OutlierOptions>;
  budget?: Partial<RetryBudgetOptions>;
  limits?: Partial<ServerLimits>;
  upgrade?: Partial<UpgradeLimits>;
  /** LB_POLICY (round_robin unless given: most tests want a known order). */
  policy?: LbPolicy;
  /** Hedging of safe requests with this per-try budget; off unless given. */
  tryBudget?: Partial<TryBudgetOptions>;
  observer?: ProxyObserver;
  /** Wraps the response before the proxy sees it (to make writeHead fail, say). */
  wrapResponse?: (res: ServerResponse) => void;
}

export interface Done {
  url: string | undefined;
  status: number;
  requestId: string;
  attempts: number;
}

/** A gateway as index.ts wires it, minus Consul: the table is whatever the test sets. */
export async function startHarness(opts: HarnessOptions = {}) {
  const state = { table: opts.table ?? emptyTable, synced: opts.synced ?? true, consul: consulOk, tableThrows: false };
  const outliers = new OutlierDetector({ consecutiveFailures: 3, baseEjectMs: 30_000, maxEjectMs: 30_000, maxEjectPercent: 50, ...opts.outliers });
  const upstream = new UpstreamClient({ ...testUpstreamOptions, ...opts.upstream });
  const done: Done[] = [];
  const log = createLogger('test', 'silent');
  const table = () => {
    if (state.tableThrows) throw new Error('secret internal detail /etc/passwd');
    return state.table;
  };
  // Routes follow the table the test sets, as index.ts has them follow discovery's.
  const routes = new RouteBuilder();
  const picker = new InstancePicker(outliers, opts.policy ?? 'round_robin');
  const tryBudget = opts.tryBudget ? new TryBudget({ ...TRY_BUDGET_DEFAULTS, ...opts.tryBudget }) : undefined;
  const proxy = createProxy({
    table,
    synced: () => state.synced,
    routes: () => routes.update(state.table),
    picker,
    tryBudget,
    observer: tryBudget && opts.observer ? observers(opts.observer, tryBudget) : (tryBudget ?? opts.observer),
    outliers,
    budget: new RetryBudget({ percent: 20, minPerSecond: 10, windowS: 10, ...opts.budget }),
    upstream,
    log,
    options: { ...defaultProxyOptions, ...opts.proxy, body: { ...defaultProxyOptions.body, ...opts.proxy?.body } },
    onDone: (req, status, requestId, x) => done.push({ url: req.url, status, requestId, attempts: x?.attempts ?? 0 }),
  });
  const upgrades = createUpgrades({
    route: proxy.route,
    table,
    picker,
    viaName: 'gateway',
    log,
    limits: { max: 100, idleMs: 60_000, connectTimeoutMs: 1_000, handshakeTimeoutMs: 2_000, ...opts.upgrade },
  });
  const app = createApp({
    log,
    inflight: proxy.inflight,
    outliers,
    table: () => state.table,
    routes: () => routes.update(state.table),
    synced: () => state.synced,
    syncedAt: () => (state.synced ? new Date('2024-05-01T12:00:05.000Z') : null),
    consul: () => state.consul,
  });
  const admin = app.callback();
  const gw = createGatewayServer({
    admin: (req, res) => void admin(req, res),
    proxy: {
      handle: (req, res) => {
        opts.wrapResponse?.(res);
        proxy.handle(req, res);
      },
      mayContinue: proxy.mayContinue,
      hostRouted: proxy.hostRouted,
    },
    upgrade: upgrades,
    limits: { headersTimeoutMs: 10_000, requestTimeoutMs: 300_000, keepAliveTimeoutMs: 5_000, maxConnections: 10_000, ...opts.limits },
    log,
  });
  await new Promise<void>((r) => gw.server.listen(0, '127.0.0.1', r));
  const port = (gw.server.address() as AddressInfo).port;
  return {
    state,
    outliers,
    picker,
    tryBudget,
    proxy,
    upgrades,
    upstream,
    done,
    server: gw.server,
    port,
    url: `http://127.0.0.1:${port}`,
    setService(name: string, instances: Instance[]) {
      state.table = setService(state.table, name, instances);
    },
    async close() {
      gw.server.closeAllConnections();
      await new Promise<void>((r) => gw.server.close(() => r()));
      await upstream.destroy();
    },
  };
}

export type Harness = Awaited<ReturnType<typeof startHarness>>;

/** A real upstream on port 0 that records what it received. */
export async function startUpstream(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }> = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    handler(req, res);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    seen,
    sockets,
    port,
    instance(id = `up-${port}`, service = 'svc'): Instance {
      return { id, service, address: '127.0.0.1', port, node: 'n1', tags: [], key: instanceKey('n1', id) };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A port nothing listens on (connections are refused). */
export async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: () => any;
}

/** A raw request: the path goes on the wire exactly as given (fetch would normalise dot segments). */
export function request(base: string, path: string, opts: { method?: string; headers?: Record<string, string | number>; body?: Buffer | string } = {}): Promise<Res> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path, method: opts.method ?? 'GET', headers: { connection: 'close', ...opts.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode!, headers: res.headers, text, json: () => JSON.parse(text) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `fn` is truthy; fails after `ms`. */
export async function until<T>(what: string, fn: () => T, ms = 2_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Every gateway error: JSON, the one body shape, the request id, no stack, no caching. */
export function assertErrorBody(res: Res, status: number, error: string, service: string | null) {
  assert.equal(res.status, status, res.text);
  assert.match(String(res.headers['content-type']), /application\/json/);
  const body = res.json();
  assert.deepEqual(Object.keys(body).sort(), ['error', 'message', 'requestId', 'service', 'status']);
  assert.equal(body.status, status);
  assert.equal(body.error, error);
  assert.equal(body.service, service);
  assert.equal(typeof body.message, 'string');
  assert.ok(body.message.length > 0);
  assert.equal(body.requestId, res.headers['x-request-id']);
  assert.ok(!/\bat .*\.(ts|js):\d+/.test(res.text), 'no stack trace');
  assert.ok(!res.text.includes('stack'));
  assert.equal(res.headers['cache-control'], 'no-store');
  return body;
}

