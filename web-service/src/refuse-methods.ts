import type { Middleware } from 'koa';
import type { Router } from '@koa/router';
import { ERROR_STATUS, errorBody } from '@stack/shared';
import { sendError, type AppState } from './middleware.js';

/**
 * Methods answered 405 on every path, before any route: TRACE would have /echo
 * reflect cookies and auth headers back (cross-site tracing), and CONNECT
 * asks for a tunnel. (Node itself closes CONNECT connections, as the server
 * has no 'connect' listener; this covers it should one ever reach Koa.)
 */
const REFUSED = new Set(['TRACE', 'CONNECT']);

export function refuseMethods(router: Router<AppState>): Middleware<AppState> {
  return async (ctx, next) => {
    if (!REFUSED.has(ctx.method)) return next();
    // Allow names what the path does accept, as RFC 9110 asks of a 405 (empty if nothing).
    const allowed = new Set(router.match(ctx.path, 'GET').path.flatMap((layer) => layer.methods));
    for (const m of REFUSED) allowed.delete(m);
    ctx.set('Allow', [...allowed].join(', '));
    sendError(ctx, errorBody(ERROR_STATUS.method_not_allowed, 'method_not_allowed', `${ctx.method} is not allowed here`, ctx.state.requestId));
  };
}
