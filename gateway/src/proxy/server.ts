import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { answerAndClose, answerClientErrorsAsJson, rawJsonResponse, type Logger } from '@stack/shared';
import { guardHead, headReceived } from './head-guard.js';
import { ALLOWED_METHODS } from './proxy.js';
import { isWebSocketUpgrade } from './upgrade.js';

export interface ServerLimits {
  /** Time to receive a request's head (nginx client_header_timeout; slowloris). */
  headersTimeoutMs: number;
  /** Time to receive a whole request, body included (Node's requestTimeout). */
  requestTimeoutMs: number;
  /** Idle time on a kept-alive connection between requests. */
  keepAliveTimeoutMs: number;
  /** Open client connections; the next gets a 503 and is closed. */
  maxConnections: number;
}

export interface GatewayServerDeps {
  /** The gateway's own pages (Koa): `/`, `/favicon.ico`, `/metrics`, `/_gateway/*`. */
  admin: (req: IncomingMessage, res: ServerResponse) => void;
  proxy: {
    handle: (req: IncomingMessage, res: ServerResponse) => void;
    mayContinue: (req: IncomingMessage) => boolean;
    /** Routes are declared for the request's Host (see forGateway). */
    hostRouted?: (req: IncomingMessage) => boolean;
  };
  /** WebSocket tunnels (upgrade.ts); without it an Upgrade request is served as plain HTTP. */
  upgrade?: { handle: (req: IncomingMessage, socket: Socket, head: Buffer) => void };
  limits: ServerLimits;
  log: Logger;
  /** Sees every request first (the access log's clock, when on). */
  onRequest?: (req: IncomingMessage) => void;
}

const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;

/**
 * An absolute-form target (`GET http://host/path`, RFC 9112 §3.2.2) is
 * routed by its path only, like an origin-form one: the authority in it
 * never picks an upstream.
 */
export function originForm(url: string): string {
  if (url[0] === '/') return url;
  const m = ABSOLUTE_FORM.exec(url);
  if (!m) return url;
  const rest = url.slice(m[0].length);
  return rest[0] === '/' ? rest : `/${rest}`;
}

/**
 * Paths the gateway answers itself; everything else is `/<service>/...` and goes to the proxy.
 * `/metrics` (exactly: Prometheus' default scrape path) shadows a service named "metrics":
 * that service is still reached at `/metrics/` and below, never at `/metrics` itself.
 */
export function isAdminPath(url: string): boolean {
  return url === '/' || url[1] === '?' || url.startsWith('/_gateway') || url === '/favicon.ico' || url === '/metrics';
}

/**
 * The gateway's HTTP server: a plain request handler that hands its own
 * pages to Koa and every other request straight to the proxy, plus the limits
 * on everything a client controls below the HTTP layer.
 */
export function createGatewayServer(deps: GatewayServerDeps) {
  const { limits } = deps;
  let stopping = false;
  let connections = 0;
  const refused = new WeakSet<object>();
  let lastRefusalLog = 0;
  // The gateway's own pages, except that a Host with declared routes (shop.localhost/) keeps
  // its `/`, `/metrics` and `/favicon.ico`; `/_gateway/*` is the gateway's on every host.
  const hostRouted = deps.proxy.hostRouted;
  const forGateway = (req: IncomingMessage): boolean => {
    const url = req.url ?? '/';
    if (!isAdminPath(url)) return false;
    return url.startsWith('/_gateway') || hostRouted === undefined || !hostRouted(req);
  };

  const front = (req: IncomingMessage, res: ServerResponse) => {
    // Once stopping, every response closes its connection, so keep-alive
    // clients don't hold the shutdown up or send into a closing socket.
    if (stopping) res.shouldKeepAlive = false;
    // A refused connection already has its answer; a request that raced it gets nothing more.
    if (refused.has(req.socket)) return void req.socket.destroy();
    headReceived(req, res);
    deps.onRequest?.(req);
    req.url = originForm(req.url ?? '/');
    if (forGateway(req)) deps.admin(req, res);
    else deps.proxy.handle(req, res);
  };

  const options: http.ServerOptions & { optimizeEmptyRequests?: boolean } = {
    // Node checks its head and request timeouts on this interval (30 s by
    // default); head-guard.ts covers the sockets those checks miss.
    connectionsCheckingInterval: 1_000,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node 24.12+ (the images' Node; older ones ignore it): a request with neither
    // Content-Length nor Transfer-Encoding has no body, so its stream starts ended
    // instead of going through a readable's events (~2 µs of CPU per request in `npm run bench:ab`).
    optimizeEmptyRequests: true,
  };
  // Only a WebSocket to a proxied path becomes a tunnel. Any other Upgrade
  // (h2c, TLS/1.0, ...) is served as the plain HTTP/1.1 request it also is,
  // with Upgrade dropped as hop-by-hop (RFC 9110 §7.8 lets a server ignore it).
  const tunnels = (req: IncomingMessage) => {
    if (deps.upgrade === undefined || !isWebSocketUpgrade(req)) return false;
    const url = originForm(req.url ?? '/');
    return !isAdminPath(url) || (!url.startsWith('/_gateway') && hostRouted !== undefined && hostRouted(req));
  };
  // Node 24.9+ asks before upgrading; older Node sends every upgrade to 'upgrade' (see below).
  (options as { shouldUpgradeCallback?: (req: IncomingMessage) => boolean }).shouldUpgradeCallback = tunnels;
  const server = http.createServer(options, front);

  // An Expect: 100-continue request only hears "go on" when its body would be taken.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (forGateway(req) || deps.proxy.mayContinue(req)) res.writeContinue();
    front(req, res);
  });

  // CONNECT never reaches the request handler; without this Node just drops the socket.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    answerAndClose(socket, rawJsonResponse('method_not_allowed', 'the gateway does not forward CONNECT', { Allow: ALLOWED_METHODS }));
  });

  if (deps.upgrade) {
    const upgrade = deps.upgrade;
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      if (refused.has(socket) || stopping) {
        if (refused.has(socket)) return void socket.destroy();
        return answerAndClose(socket, rawJsonResponse('not_ready', 'the gateway is shutting down', { 'Retry-After': '1' }));
      }
      if (tunnels(req)) {
        deps.onRequest?.(req);
        req.url = originForm(req.url ?? '/');
        return upgrade.handle(req, socket, head);
      }
      plainAfterUpgrade(req, socket, front);
    });
  }

  server.on('connection', (socket: Socket) => {
    guardHead(socket, limits.headersTimeoutMs);
    connections++;
    socket.once('close', () => connections--);
    if (connections > limits.maxConnections) {
      // One line a second at most: a flood of refusals must not become a flood of logs.
      if (Date.now() - lastRefusalLog > 1_000) {
        lastRefusalLog = Date.now();
        deps.log.warn({ connections, max: limits.maxConnections }, 'connection limit reached: refusing connections');
      }
      refused.add(socket);
      answerAndClose(socket, rawJsonResponse('too_many_connections', 'the gateway has too many open connections; try again shortly', { 'Retry-After': '1' }));
    }
  });

  answerClientErrorsAsJson(server);

  return {
    server,
    connections: () => connections,
    /** From now on every response closes its connection. */
    stop() {
      stopping = true;
    },
  };
}

/**
 * Node before 24.9 hands every Upgrade request to 'upgrade', parser detached:
 * a non-WebSocket one (h2c) is answered as plain HTTP on a response of its
 * own, and the connection closes after it. Its body would be unparsed bytes
 * on the socket, so one with a body is refused (Node 24.9+ serves it whole).
 */
function plainAfterUpgrade(req: IncomingMessage, socket: Socket, front: (req: IncomingMessage, res: ServerResponse) => void): void {
  if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0)
    return answerAndClose(socket, rawJsonResponse('bad_request', 'send a request with a body without an Upgrade header'));
  const res = new http.ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  res.on('finish', () => {
    res.detachSocket(socket);
    socket.destroySoon();
  });
  req.push(null);
  front(req, res);
}
