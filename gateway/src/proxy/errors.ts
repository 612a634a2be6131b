import type { ServerResponse } from 'node:http';
import type { Context, Next } from 'koa';
import { ERROR_STATUS, errorBody, sendJsonError, sendKoaJsonError, type ErrorBody, type ErrorCode, type Logger } from '@stack/shared';

export type { ErrorCode };

export interface GatewayErrorOptions {
  service?: string | null;
  retryAfterS?: number;
  /** Answer with Connection: close (the request body was not read to its end). */
  close?: boolean;
  /** Extra response headers, e.g. Allow on a 405. */
  headers?: Record<string, string>;
}

/** A failure the gateway answers for itself, as JSON. */
export class GatewayError extends Error {
  readonly status: number;
  readonly service: string | null;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly opts: GatewayErrorOptions = {},
  ) {
    super(message);
    this.status = ERROR_STATUS[code];
    this.service = opts.service ?? null;
  }
}

const INTERNAL = () => new GatewayError('internal', 'the gateway failed to handle this request');

/** The body and extra headers of a gateway error; the shared writers add the JSON ones. */
function answer(e: GatewayError, requestId: string | null): { body: ErrorBody; headers: Record<string, string> } {
  const body = errorBody(e.status, e.code, e.message, requestId, { service: e.service });
  const headers: Record<string, string> = { ...e.opts.headers };
  if (e.opts.retryAfterS !== undefined) headers['retry-after'] = String(e.opts.retryAfterS);
  return { body, headers };
}

/**
 * Answers a failure on a raw response (the proxy path). Once the upstream's
 * headers are out there is no answer left to give: the connection is cut so
 * the client sees a truncated response, not a wrong one.
 */
export function sendError(res: ServerResponse, err: unknown, requestId: string, log?: Logger): void {
  const e = err instanceof GatewayError ? err : INTERNAL();
  if (!(err instanceof GatewayError)) log?.error({ err, requestId }, 'unhandled error');
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const { body, headers } = answer(e, requestId);
  headers['x-request-id'] = requestId;
  if (e.opts.close) {
    headers['connection'] = 'close';
    res.shouldKeepAlive = false;
  }
  sendJsonError(res, e.status, body, headers);
}

/**
 * The same answers for the Koa side (admin pages): unexpected errors are
 * logged and become a bare 500, never a stack trace.
 */
export function errorMiddleware(log: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (err) {
      const requestId = (ctx.state.requestId as string | undefined) ?? null;
      const e = err instanceof GatewayError ? err : INTERNAL();
      if (!(err instanceof GatewayError)) log.error({ err, requestId }, 'unhandled error');
      if (ctx.headerSent || !ctx.writable) return;
      const { body, headers } = answer(e, requestId);
      sendKoaJsonError(ctx, body, headers);
    }
  };
}
