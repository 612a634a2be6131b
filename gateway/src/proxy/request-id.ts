import type { Context, Next } from 'koa';
import { requestIdFrom } from '@stack/shared';

export function requestIdMiddleware() {
  return async (ctx: Context, next: Next) => {
    const id = requestIdFrom(ctx.get('x-request-id'));
    ctx.state.requestId = id;
    ctx.set('X-Request-Id', id);
    await next();
  };
}
