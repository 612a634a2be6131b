import Koa from 'koa';
import type { Logger } from '@stack/shared';
import { adminRouter, type AdminDeps } from './admin.js';
import { errorMiddleware, GatewayError } from './errors.js';
import { requestIdMiddleware } from './request-id.js';
import { parseRoute } from './route.js';

export interface AppDeps extends AdminDeps {
  log: Logger;
  proxy: (ctx: Koa.Context, service: string, path: string) => Promise<void>;
}

/** The gateway's HTTP surface: admin pages, then everything else proxied by service name. */
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
  app.use(async (ctx, next) => {
    const start = performance.now();
    await next();
    log.info(
      { requestId: ctx.state.requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(performance.now() - start) },
      'request',
    );
  });
  app.use(errorMiddleware(log));
  const admin = adminRouter(deps);
  app.use(admin.routes());
  app.use(admin.allowedMethods());
  app.use(async (ctx) => {
    if (ctx.path === '/_gateway' || ctx.path.startsWith('/_gateway/'))
      throw new GatewayError('not_found', `no gateway endpoint at ${ctx.path}`);
    const route = parseRoute(ctx.path);
    if (!route.ok) {
      const message =
        route.reason === 'invalid_service_name'
          ? 'the first path segment must be a service name: letters, digits and dashes, up to 63 characters'
          : 'the path may not contain dot segments, backslashes or whitespace';
      throw new GatewayError(route.reason, message, route.service);
    }
    await deps.proxy(ctx, route.service, route.path);
  });
  return app;
}
