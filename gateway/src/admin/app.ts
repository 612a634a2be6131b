import Koa from 'koa';
import type { Logger } from '@stack/shared';
import { adminRouter, type AdminDeps } from './admin.js';
import { errorMiddleware, GatewayError } from '../proxy/errors.js';
import { requestIdMiddleware } from '../proxy/request-id.js';

export interface AppDeps extends AdminDeps {
  log: Logger;
  /** Called when a request is over (the access log, when on). */
  onDone?: (ctx: Koa.Context) => void;
}

/**
 * The gateway's own pages: `/`, `/favicon.ico` and `/_gateway/*`. Proxied
 * requests never come here (see server.ts): they skip Koa's layers.
 */
export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  const log = deps.log;
  // Errors are answered by errorMiddleware; this only sees what escapes Koa
  // itself (socket errors), and a client hanging up is not worth a log line.
  app.silent = true;
  app.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') log.warn({ err: err.message }, 'http error');
  });

  app.use(requestIdMiddleware());
  if (deps.onDone) {
    const onDone = deps.onDone;
    app.use(async (ctx, next) => {
      try {
        await next();
      } finally {
        onDone(ctx);
      }
    });
  }
  app.use(errorMiddleware(log));
  const admin = adminRouter(deps);
  app.use(admin.routes());
  app.use(async (ctx) => {
    if (admin.match(ctx.path, 'GET').path.length > 0)
      throw new GatewayError('method_not_allowed', `${ctx.path} answers GET and HEAD only`, { headers: { allow: 'GET, HEAD' } });
    throw new GatewayError('not_found', `no gateway endpoint at ${ctx.path}`);
  });
  return app;
}
