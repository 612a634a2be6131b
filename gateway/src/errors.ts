import type { Context, Next } from 'koa';
import type { Logger } from '@stack/shared';

export type ErrorCode =
  | 'invalid_service_name'
  | 'invalid_path'
  | 'unknown_service'
  | 'no_instance'
  | 'not_ready'
  | 'overloaded'
  | 'upstream_unreachable'
  | 'upstream_timeout'
  | 'not_found'
  | 'internal';

const STATUS: Record<ErrorCode, number> = {
  invalid_service_name: 400,
  invalid_path: 400,
  unknown_service: 404,
  not_found: 404,
  no_instance: 503,
  not_ready: 503,
  overloaded: 503,
  upstream_unreachable: 502,
  upstream_timeout: 504,
  internal: 500,
};

/** A failure the gateway answers for itself, as JSON. */
export class GatewayError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly service: string | null = null,
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.status = STATUS[code];
  }
}

/**
 * The one place failures become responses: {error, message, service,
 * requestId}, never a stack trace. Unexpected errors are logged and become a
 * bare 500.
 */
export function errorMiddleware(log: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (err) {
      const requestId = ctx.state.requestId as string | undefined;
      const e =
        err instanceof GatewayError
          ? err
          : new GatewayError('internal', 'the gateway failed to handle this request');
      if (!(err instanceof GatewayError)) log.error({ err, requestId }, 'unhandled error');
      if (ctx.headerSent || !ctx.writable) return;
      ctx.status = e.status;
      if (e.retryAfterS !== undefined) ctx.set('Retry-After', String(e.retryAfterS));
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: e.code, message: e.message, service: e.service, requestId: requestId ?? null };
    }
  };
}
