import type { IncomingMessage, ServerResponse } from 'node:http';
import { requestIdFrom, viaVisited } from '@stack/shared';
import { Deadlines } from './deadlines.js';
import { GatewayError, sendError } from './errors.js';
import { Exchange, type ExchangeDeps, type ExchangeOptions } from './exchange.js';
import { scanRequestHeaders, type RequestHead } from './headers.js';
import { parseRoute } from './route.js';
import { hostHasRoutes, resolveRoute } from './routes/match.js';
import type { RoutesSnapshot } from './routes/table.js';

export interface ProxyOptions extends ExchangeOptions {
  maxInflight: number;
  maxUrlBytes: number;
}

export interface ProxyDeps extends Omit<ExchangeDeps, 'done' | 'options' | 'deadlines'> {
  synced: () => boolean;
  /** Routes services declare in tags (routes/table.ts); absent or empty: only `/<service>/`. */
  routes?: () => RoutesSnapshot;
  options: ProxyOptions;
  /** Called once per request when it is over (the access log, when on). */
  onDone?: (req: IncomingMessage, status: number, requestId: string, x: Exchange | null) => void;
}

/** Never forwarded: TRACE reflects credentials (cross-site tracing), CONNECT would open a tunnel. */
const REFUSED_METHODS = new Set(['TRACE', 'CONNECT']);
export const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/**
 * The proxy's request handler: every check that can answer without an
 * instance, cheapest first, then an Exchange with the instances. Plain
 * node:http, no framework layers: this is the path every proxied request takes.
 */
export function createProxy(deps: ProxyDeps) {
  const o = deps.options;
  let inflight = 0;
  const observer = deps.observer;
  const exchangeDeps: ExchangeDeps = {
    ...deps,
    deadlines: new Deadlines(o.upstreamTimeoutMs),
    done: (x, status) => {
      inflight--;
      observer?.request(x.service, status, performance.now() - x.startedAt, null);
      deps.onDone?.(x.req, status, x.requestId, x);
    },
  };

  function check(req: IncomingMessage, head: RequestHead): { service: string; path: string } {
    const method = req.method ?? 'GET';
    if (REFUSED_METHODS.has(method))
      throw new GatewayError('method_not_allowed', `the gateway does not forward ${method}`, { headers: { allow: ALLOWED_METHODS } });
    const url = req.url ?? '/';
    if (url.length > o.maxUrlBytes) throw new GatewayError('uri_too_long', `the request target is over ${o.maxUrlBytes} bytes`);
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    // No declared routes (the default): `/<service>/` parsed as always, one call, no lookups.
    const routes = deps.routes?.();
    const route = routes === undefined || routes.empty ? parseRoute(rawPath) : resolveRoute(routes, deps.table(), head.host, rawPath);
    if (!route.ok) {
      const message =
        route.reason === 'invalid_service_name'
          ? 'the first path segment must be a service name: letters, digits and dashes, up to 63 characters'
          : route.reason === 'no_route'
            ? 'no route matches this host and path'
            : 'the path may not contain dot segments, backslashes or whitespace';
      throw new GatewayError(route.reason, message, { service: route.service });
    }
    const viaHeader = head.via;
    const contentLength = head.contentLength;
    const { service } = route;
    if (viaHeader && viaVisited(viaHeader, o.viaName))
      throw new GatewayError('loop_detected', 'this request already passed through the gateway', { service });
    if (contentLength > o.body.maxBytes)
      throw new GatewayError('body_too_large', `the request body is over ${o.body.maxBytes} bytes`, { service, close: true });
    const instances = deps.table().services.get(service);
    if (!instances) {
      if (!deps.synced()) throw new GatewayError('not_ready', 'the gateway has not synced with Consul yet', { service, retryAfterS: o.retryAfterS });
      throw new GatewayError('unknown_service', `no service named "${service}" is registered in Consul`, { service });
    }
    if (instances.length === 0)
      throw new GatewayError('no_instance', `"${service}" has no passing instance right now`, { service, retryAfterS: o.retryAfterS });
    if (inflight >= o.maxInflight)
      throw new GatewayError('overloaded', 'too many requests in flight; try again shortly', { service, retryAfterS: o.retryAfterS });
    // An empty query ("/svc/x?") is no query.
    const path = q < 0 || q === url.length - 1 ? route.path : route.path + url.slice(q);
    return { service, path };
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const t0 = performance.now();
    const head = scanRequestHeaders(req.rawHeaders);
    const requestId = requestIdFrom(head.requestId);
    let route;
    try {
      route = check(req, head);
    } catch (err) {
      sendError(res, err, requestId, deps.log);
      if (observer) {
        const e = err instanceof GatewayError ? err : null;
        observer.request(e?.service ?? null, res.statusCode, performance.now() - t0, e?.code ?? 'internal');
      }
      deps.onDone?.(req, res.statusCode, requestId, null);
      return;
    }
    inflight++;
    new Exchange(exchangeDeps, req, res, route.service, route.path, head, requestId, t0).start();
  }

  /** Whether an `Expect: 100-continue` request may be told to go on (no 100 for a body we'd refuse). */
  function mayContinue(req: IncomingMessage): boolean {
    return Number(req.headers['content-length'] ?? 0) <= o.body.maxBytes;
  }

  /** The routing checks alone, for an Upgrade request (upgrade.ts): the service and path, or a GatewayError thrown. */
  function route(req: IncomingMessage, head: RequestHead): { service: string; path: string } {
    return check(req, head);
  }

  /** Routes are declared for the request's Host: its `/`, `/metrics` and `/favicon.ico` are the route's, not the gateway's pages. */
  function hostRouted(req: IncomingMessage): boolean {
    const routes = deps.routes?.();
    return routes !== undefined && hostHasRoutes(routes, req.headers.host);
  }

  return { handle, mayContinue, route, hostRouted, inflight: () => inflight };
}
