import type { Middleware } from 'koa';
import { errorBody, requestIdFrom, sendKoaJsonError, type ErrorBody, type Logger } from '@stack/shared';
import { isClientAbort } from './client-abort.js';
import type { DrainState } from './drain.js';
import type { Identity } from './identity.js';
import { HttpError, statusText } from './http.js';

export interface AppState {
  requestId: string;
  log: Logger;
}

/**
 * Outermost: request id, instance headers, in-flight count, and the drain
 * behaviour every response shares (Connection: close, so keep-alive clients
 * like the gateway drop their sockets to an instance on its way out).
 */
export function requestContext(deps: { log: Logger; drain: DrainState; identity: Identity }): Middleware<AppState> {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    const requestId = requestIdFrom(ctx.get('X-Request-Id'));
    ctx.state.requestId = requestId;
    ctx.state.log = deps.log.child({ requestId });
    ctx.set('X-Request-Id', requestId);
    ctx.set('X-Instance-Id', deps.identity.instance);
    ctx.set('X-Instance-Ip', deps.identity.ip);
    deps.drain.inFlight += 1;
    try {
      await next();
    } finally {
      deps.drain.inFlight -= 1;
      // Checked at the end too: a request that began before the drain still closes its socket.
      if (deps.drain.draining) ctx.set('Connection', 'close');
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      ctx.state.log.debug({ method: ctx.method, url: ctx.url, status: ctx.status, ms: Math.round(ms * 10) / 10 }, 'request');
    }
  };
}

/** Every failure, thrown or a bare status (404, 405), becomes JSON; never a stack. */
export function errorHandler(): Middleware<AppState> {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.body == null && ctx.status >= 400) {
        const message = ctx.status === 404 ? `no route for ${ctx.method} ${ctx.path}` : statusText(ctx.status);
        sendError(ctx, errorBody(ctx.status, codeFor(ctx.status), message, ctx.state.requestId));
      }
    } catch (err) {
      const { log, requestId } = ctx.state;
      if (isClientAbort(err, ctx.req.socket)) {
        log.debug({ err: (err as Error).message }, 'client went away');
        ctx.status = 499; // nginx's "client closed request", for the request log only
        return;
      }
      if (err instanceof HttpError) {
        sendError(ctx, errorBody(err.status, err.code, err.message, requestId, err.extra), err.headers);
        return;
      }
      // Koa's own http-errors (ctx.throw, router) carry a status and a safe message.
      const e = err as { status?: unknown; expose?: boolean; message?: string };
      if (typeof e.status === 'number' && e.status >= 400 && e.status < 500 && e.expose) {
        sendError(ctx, errorBody(e.status, codeFor(e.status), e.message ?? statusText(e.status), requestId));
        return;
      }
      log.error({ err, method: ctx.method, url: ctx.url }, 'request failed');
      sendError(ctx, errorBody(500, 'internal', 'internal error', requestId));
    }
  };
}

/** Pretty-printed, like every answer of this service (it is read in browsers). */
export function sendError(ctx: Parameters<typeof sendKoaJsonError>[0], body: ErrorBody, headers: Record<string, string> = {}): void {
  sendKoaJsonError(ctx, body, headers, 2);
}

/** A bare status Koa answered (404, 405, its http-errors): its name as the code. */
function codeFor(status: number): string {
  return statusText(status).toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '');
}
