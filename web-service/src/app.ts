import Koa, { type Context } from 'koa';
import { Router } from '@koa/router';
import { appendVia, clientGone, isClientAbort, type Logger } from '@stack/shared';
import type { Config } from './config.js';
import type { Caller } from './call.js';
import { CALL_MARK, callPolicy } from './call-policy.js';
import type { DrainState } from './drain.js';
import { identitySummary, uptimeSeconds, type Identity } from './identity.js';
import { applyFault, FaultState, faultRoutes } from './faults.js';
import { countBody, HttpError, sendJson } from './http.js';
import { errorHandler, requestContext, type AppState } from './middleware.js';
import { refuseMethods } from './refuse-methods.js';

export interface AppDeps {
  config: Pick<Config, 'ENABLE_FAULTS' | 'GATEWAY_SERVICE_NAME' | 'CALL_DENY' | 'CALL_ALLOW_SELF' | 'CALL_MAX_DEPTH'>;
  identity: Identity;
  log: Logger;
  drain: DrainState;
  /** /call's discovery-backed client; see call.ts createCaller. */
  caller: Caller;
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

  const describe = (ctx: Context) =>
    sendJson(ctx, 200, {
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
      requestId: ctx.state.requestId,
      time: new Date().toISOString(),
    });

  router.get('/', async (ctx) => {
    await applyFault(faults, ctx);
    describe(ctx);
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
      throw new HttpError(400, 'invalid_service', 'service name is not valid percent-encoding');
    }
    const via = ctx.get('Via');
    checkCall(service, via);
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
