import Koa, { type Context } from 'koa';
import { Router } from '@koa/router';
import { appendVia, type Logger } from '@stack/shared';
import { clientGone, isClientAbort } from './client-abort.js';
import type { Config } from './config.js';
import type { Caller } from './call.js';
import { CALL_MARK, callPolicy } from './call-policy.js';
import type { DrainState } from './drain.js';
import { identitySummary, uptimeSeconds, type Identity } from './identity.js';
import { applyFault, FaultState, faultRoutes } from './faults.js';
import { countBody, HttpError, sendJson } from './http.js';
import type { WebMetrics } from './metrics.js';
import { errorHandler, requestContext, type AppState } from './middleware.js';
import { renderPage } from './page.js';
import { refuseMethods } from './refuse-methods.js';

export interface AppDeps {
  config: Pick<Config, 'ENABLE_FAULTS' | 'GATEWAY_SERVICE_NAME' | 'CALL_DENY' | 'CALL_ALLOW_SELF' | 'CALL_MAX_DEPTH'>;
  identity: Identity;
  log: Logger;
  drain: DrainState;
  /** /call's discovery-backed client; see call.ts createCaller. */
  caller: Caller;
  /** Prometheus metrics: counts every request, serves GET /metrics. */
  metrics?: WebMetrics;
}

export function createApp(deps: AppDeps): Koa<AppState> {
  const { identity, drain, caller, log } = deps;
  const app = new Koa<AppState>();
  const router = new Router<AppState>();
  const faults = new FaultState();
  const { config } = deps;
  const checkCall = callPolicy({
    self: identity.service,
    gateway: config.GATEWAY_SERVICE_NAME,
    deny: config.CALL_DENY,
    allowSelf: config.CALL_ALLOW_SELF,
    maxDepth: config.CALL_MAX_DEPTH,
  });

  const about = (ctx: Context) => ({
    service: identity.service,
    instance: identity.instance,
    hostname: identity.hostname,
    ip: identity.ip,
    addresses: identity.addresses,
    port: identity.port,
    pid: identity.pid,
    startedAt: identity.startedAt.toISOString(),
    uptimeSeconds: uptimeSeconds(identity),
    draining: drain.draining,
    requestId: ctx.state.requestId as string,
    time: new Date().toISOString(),
  });
  const describe = (ctx: Context) => sendJson(ctx, 200, about(ctx));

  router.get('/', async (ctx) => {
    await applyFault(faults, ctx);
    // A browser (text/html preferred) gets a page; curl (*/*), JSON clients and no Accept get the JSON.
    ctx.vary('Accept');
    if (ctx.accepts('json', 'html') !== 'html') return describe(ctx);
    ctx.status = 200;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
    ctx.body = renderPage(about(ctx));
  });

  router.get('/health', (ctx) => {
    sendJson(ctx, drain.draining ? 503 : 200, { status: drain.draining ? 'draining' : 'ok' });
  });

  router.all('/echo', async (ctx) => {
    const bodyBytes = await countBody(ctx);
    sendJson(ctx, 200, {
      method: ctx.method,
      url: ctx.url,
      httpVersion: ctx.req.httpVersion,
      headers: ctx.headers,
      remoteAddress: ctx.req.socket.remoteAddress ?? null,
      bodyBytes,
      instance: identity.instance,
      requestId: ctx.state.requestId,
    });
  });

  router.get('/call/:service{/*rest}', async (ctx) => {
    // Parsed from the raw path: the router's decoded params would lose %2F and friends.
    const m = /^\/call\/([^/]+)(\/.*)?$/.exec(ctx.path);
    let service = '';
    try {
      service = decodeURIComponent(m?.[1] ?? '');
    } catch {
      throw new HttpError('invalid_service_name', 'service name is not valid percent-encoding');
    }
    const via = ctx.get('Via');
    try {
      checkCall(service, via);
    } catch (err) {
      deps.metrics?.call(err instanceof HttpError && err.status === 400 ? 'invalid' : 'refused', 0);
      throw err;
    }
    const result = await caller.call({
      service,
      path: m?.[2] ?? '',
      query: ctx.querystring,
      requestId: ctx.state.requestId,
      // The hops so far plus ours, so the next /call (here or anywhere) can count them.
      via: appendVia(via, { protocol: ctx.req.httpVersion, receivedBy: identity.service, comment: CALL_MARK }),
      signal: clientGone(ctx.res),
    });
    sendJson(ctx, 200, { from: identitySummary(identity), ...result });
  });

  if (config.ENABLE_FAULTS) faultRoutes(router, faults, describe);

  const { metrics } = deps;
  if (metrics) {
    router.get('/metrics', async (ctx) => {
      const text = await metrics.text();
      ctx.set('Cache-Control', 'no-store');
      ctx.set('Content-Type', metrics.contentType);
      ctx.body = text;
    });
    app.use(metrics.middleware());
  }
  app.use(requestContext({ log, drain, identity }));
  app.use(errorHandler());
  app.use(refuseMethods(router));
  app.use(router.routes());
  app.use(router.allowedMethods());

  // Only what escapes the error middleware lands here (e.g. a socket error mid-write).
  app.on('error', (err: unknown, ctx?: Context) => {
    const l: Logger = ctx?.state?.log ?? log;
    if (isClientAbort(err, ctx?.req.socket)) l.debug({ err: (err as Error).message }, 'client went away');
    else l.error({ err }, 'unhandled error');
  });
  return app;
}
