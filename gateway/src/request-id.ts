import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';

/** A client's id is kept when it is a sane token, so it can't inject into logs or headers. */
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdMiddleware() {
  return async (ctx: Context, next: Next) => {
    const given = ctx.get('x-request-id');
    const id = SAFE_ID.test(given) ? given : randomUUID();
    ctx.state.requestId = id;
    ctx.set('X-Request-Id', id);
    await next();
  };
}
