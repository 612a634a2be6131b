import http, { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { answerAndClose, rawJsonResponse, requestIdFrom, type Instance, type Logger, type RouteTable } from '@stack/shared';
import { GatewayError } from './errors.js';
import { clientIp } from './client-address.js';
import { releaseHead } from './head-guard.js';
import { safeHeaderValue, scanRequestHeaders, upstreamRequestHeaders, type RequestHead } from './headers.js';
import { instanceMeta } from './instance-meta.js';
import type { InstancePicker } from '../balancing/instance-picker.js';

export interface UpgradeLimits {
  /** Upgraded connections open at once (handshakes included); the next gets a 503. */
  max: number;
  /** Closed after this long without a byte either way (ms). */
  idleMs: number;
  /** CONNECT_TIMEOUT_MS: to connect to the instance. */
  connectTimeoutMs: number;
  /** UPSTREAM_TIMEOUT_MS: for the instance's answer to the handshake. */
  handshakeTimeoutMs: number;
}

export interface UpgradeObserver {
  opened(service: string): void;
  closed(service: string): void;
}

export interface UpgradeDeps {
  /** The proxy's routing checks (proxy.ts route): the service and path, or a GatewayError thrown. */
  route: (req: IncomingMessage, head: RequestHead) => { service: string; path: string };
  table: () => RouteTable;
  picker: InstancePicker;
  limits: UpgradeLimits;
  viaName: string;
  log: Logger;
  observer?: UpgradeObserver;
}

/** Upgrade: websocket (the only protocol the gateway tunnels; see docs/routes.md for h2c and the rest). */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const u = req.headers.upgrade;
  if (!u) return false;
  for (const p of u.split(',')) if (p.trim().toLowerCase() === 'websocket') return true;
  return false;
}

interface Tunnel {
  service: string;
  client: Socket;
  upstream: Socket | null;
  open: boolean;
}

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

/**
 * WebSocket tunnels: the handshake goes to a passing instance of the routed
 * service under the usual connect and head timeouts; after its 101 the two
 * sockets are piped both ways (pipe() stops reading one side while the other
 * can't take more: backpressure), until either side closes, the idle timeout
 * fires, or shutdown's grace runs out. A refusal (limit, route, no instance,
 * instance down) is the gateway's JSON error, like any proxied request.
 */
export function createUpgrades(deps: UpgradeDeps) {
  const { limits, log } = deps;
  const tunnels = new Set<Tunnel>();
  const perService = new Map<string, number>();
  let draining = false;

  const refuse = (socket: Socket, e: GatewayError, requestId: string | null) => {
    const headers: Record<string, string> = { ...e.opts.headers };
    if (e.opts.retryAfterS !== undefined) headers['Retry-After'] = String(e.opts.retryAfterS);
    if (requestId) headers['X-Request-Id'] = requestId;
    answerAndClose(socket, rawJsonResponse(e.code, e.message, headers));
  };

  function handle(req: IncomingMessage, socket: Socket, early: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (draining) return refuse(socket, new GatewayError('not_ready', 'the gateway is shutting down', { retryAfterS: 1 }), null);
    if (tunnels.size >= limits.max) {
      log.warn({ max: limits.max }, 'upgraded connection limit reached: refusing a WebSocket');
      return refuse(socket, new GatewayError('overloaded', `the gateway has ${limits.max} upgraded connections open; try again shortly`, { retryAfterS: 1 }), null);
    }
    const head = scanRequestHeaders(req.rawHeaders);
    const requestId = requestIdFrom(head.requestId);
    if (req.method !== 'GET') return refuse(socket, new GatewayError('method_not_allowed', 'a WebSocket handshake is a GET', { headers: { Allow: 'GET' } }), requestId);
    let target: { service: string; path: string };
    try {
      target = deps.route(req, head);
    } catch (err) {
      return refuse(socket, err instanceof GatewayError ? err : new GatewayError('internal', 'the gateway failed to handle this request'), requestId);
    }
    const { service } = target;
    const inst = deps.picker.pick(service, deps.table().services.get(service) ?? [], []);
    if (!inst) return refuse(socket, new GatewayError('no_instance', `"${service}" has no passing instance right now`, { service, retryAfterS: 1 }), requestId);
    const t: Tunnel = { service, client: socket, upstream: null, open: false };
    tunnels.add(t);
    socket.once('close', () => close(t));
    // Off the head guard's clock; the handshake has its own timers, the tunnel its idle timeout.
    releaseHead(socket);
    connect(t, req, head, requestId, inst, target.path, early);
  }

  function connect(t: Tunnel, req: IncomingMessage, head: RequestHead, requestId: string, inst: Instance, path: string, early: Buffer): void {
    const meta = instanceMeta(inst);
    const headers = upstreamRequestHeaders(head, {
      clientIp: clientIp(req),
      proto: 'http',
      host: head.host ?? '',
      requestId,
      upstreamHost: meta.authority,
      via: { protocol: req.httpVersion, receivedBy: deps.viaName },
    });
    headers.push('connection', 'Upgrade', 'upgrade', 'websocket');
    const up = http.request({ host: meta.host.replace(/^\[|\]$/g, ''), port: inst.port, path, method: 'GET', headers, agent: false, setHost: false });
    let settled = false;
    const fail = (e: GatewayError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      up.destroy();
      if (!t.client.destroyed) refuse(t.client, e, requestId);
    };
    // One timer: CONNECT_TIMEOUT_MS to connect, then UPSTREAM_TIMEOUT_MS for the answer.
    let timer = setTimeout(
      () => fail(new GatewayError('upstream_unreachable', `could not connect to "${t.service}" within ${limits.connectTimeoutMs} ms`, { service: t.service })),
      limits.connectTimeoutMs,
    );
    up.on('socket', (s: Socket) => {
      t.upstream = s;
      s.once('connect', () => {
        clearTimeout(timer);
        timer = setTimeout(
          () => fail(new GatewayError('upstream_timeout', `"${t.service}" did not answer the handshake within ${limits.handshakeTimeoutMs} ms`, { service: t.service })),
          limits.handshakeTimeoutMs,
        );
      });
    });
    up.on('error', (err) => {
      log.warn({ requestId, service: t.service, instance: inst.id, err: err.message }, 'WebSocket handshake to the instance failed');
      fail(new GatewayError('upstream_unreachable', `could not reach "${t.service}" for the WebSocket handshake`, { service: t.service }));
    });
    // The instance said no (404, 426, ...): its answer goes back as it is, then the connection closes.
    up.on('response', (res) => {
      if (settled) return void res.destroy();
      settled = true;
      clearTimeout(timer);
      const lines = [`HTTP/1.1 ${res.statusCode} ${res.statusMessage || STATUS_CODES[res.statusCode!] || ''}`];
      const raw = res.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) if (!HOP.has(raw[i]!.toLowerCase()) && raw[i]!.toLowerCase() !== 'content-length') lines.push(`${raw[i]}: ${raw[i + 1]}`);
      lines.push(`X-Request-Id: ${requestId}`, `X-Upstream-Instance: ${safeHeaderValue(inst.id)}`, 'Connection: close');
      t.client.write(`${lines.join('\r\n')}\r\n\r\n`);
      res.pipe(t.client, { end: false });
      res.on('end', () => t.client.end(() => t.client.destroy()));
      res.on('error', () => t.client.destroy());
    });
    up.on('upgrade', (res, upSocket: Socket, upHead: Buffer) => {
      if (settled) return void upSocket.destroy();
      settled = true;
      clearTimeout(timer);
      const client = t.client;
      if (client.destroyed) return void upSocket.destroy();
      t.upstream = upSocket;
      const lines = [`HTTP/1.1 101 ${res.statusMessage || 'Switching Protocols'}`];
      const raw = res.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) {
        const n = raw[i]!.toLowerCase();
        if (n !== 'x-request-id' && n !== 'x-upstream-instance') lines.push(`${raw[i]}: ${raw[i + 1]}`);
      }
      lines.push(`X-Request-Id: ${requestId}`, `X-Upstream-Instance: ${safeHeaderValue(inst.id)}`);
      client.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (upHead.length > 0) client.write(upHead);
      if (early.length > 0) upSocket.write(early);
      client.setNoDelay(true);
      upSocket.setNoDelay(true);
      upSocket.on('error', () => upSocket.destroy());
      upSocket.once('close', () => client.destroy());
      // Activity either way counts: a socket's timeout watches its reads and its writes.
      client.setTimeout(limits.idleMs, () => {
        log.info({ requestId, service: t.service, idleMs: limits.idleMs }, 'WebSocket idle: closing');
        client.destroy();
        upSocket.destroy();
      });
      client.pipe(upSocket);
      upSocket.pipe(client);
      t.open = true;
      perService.set(t.service, (perService.get(t.service) ?? 0) + 1);
      deps.observer?.opened(t.service);
    });
    up.end();
  }

  function close(t: Tunnel): void {
    if (!tunnels.delete(t)) return;
    t.upstream?.destroy();
    if (t.open) {
      const n = (perService.get(t.service) ?? 1) - 1;
      if (n > 0) perService.set(t.service, n);
      else perService.delete(t.service);
      deps.observer?.closed(t.service);
    }
  }

  /**
   * Shutdown: no new tunnels; open ones get `graceMs` to finish on their own,
   * then both sides are closed. Resolves when none is left.
   */
  async function drain(graceMs: number): Promise<void> {
    draining = true;
    if (tunnels.size === 0) return;
    log.info({ open: tunnels.size, graceMs }, 'shutting down: upgraded connections get the shutdown timeout');
    const deadline = Date.now() + graceMs;
    while (tunnels.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, Math.min(50, graceMs)));
    for (const t of [...tunnels]) {
      t.client.destroy();
      close(t);
    }
  }

  return {
    handle,
    drain,
    /** Tunnels open or in their handshake. */
    size: () => tunnels.size,
    /** Open (upgraded) tunnels per service. */
    perService: (): ReadonlyMap<string, number> => perService,
  };
}
