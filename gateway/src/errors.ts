import type { ServerResponse } from 'node:http';
import type { Context, Next } from 'koa';
import { errorBody, type Logger } from '@stack/shared';

export type ErrorCode =
  | 'bad_request'
  | 'invalid_service_name'
  | 'invalid_path'
  | 'unknown_service'
  | 'no_route'
  | 'not_found'
  | 'method_not_allowed'
  | 'request_timeout'
  | 'body_too_large'
  | 'uri_too_long'
  | 'no_instance'
  | 'not_ready'
  | 'overloaded'
  | 'upstream_unreachable'
  | 'upstream_timeout'
  | 'loop_detected'
  | 'internal';

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  invalid_service_name: 400,
  invalid_path: 400,
  unknown_service: 404,
  no_route: 404,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  body_too_large: 413,
  uri_too_long: 414,
  no_instance: 503,
  not_ready: 503,
  overloaded: 503,
  upstream_unreachable: 502,
  upstream_timeout: 504,
  loop_detected: 508,
  internal: 500,
};

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
    this.status = STATUS[code];
    this.service = opts.service ?? null;
  }
}

const INTERNAL = () => new GatewayError('internal', 'the gateway failed to handle this request');

/** The one body and header set every gateway error gets, on Koa or on the raw proxy path. */
function answer(e: GatewayError, requestId: string | null): { body: string; headers: Record<string, string> } {
  const body = JSON.stringify(errorBody(e.status, e.code, e.message, requestId, { service: e.service }));
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...e.opts.headers,
  };
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
  headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(e.status, headers);
  res.end(body);
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
      ctx.status = e.status;
      ctx.set(headers);
      ctx.body = body;
    }
  };
}
