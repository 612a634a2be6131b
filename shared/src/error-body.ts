import { STATUS_CODES, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';

/**
 * Every error code the gateway and the web service answer with, and its
 * status: the one table (docs/design.md lists the gateway's). A code means
 * the same thing, with the same status, whichever service sends it.
 */
export const ERROR_STATUS = {
  bad_request: 400,
  invalid_service_name: 400,
  invalid_path: 400,
  invalid_parameter: 400,
  invalid_body: 400,
  call_forbidden: 403,
  unknown_service: 404,
  no_route: 404,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  body_too_large: 413,
  uri_too_long: 414,
  headers_too_large: 431,
  internal: 500,
  fault_injected: 500,
  upstream_unreachable: 502,
  upstream_error: 502,
  no_instance: 503,
  not_ready: 503,
  overloaded: 503,
  too_many_connections: 503,
  too_many_services: 503,
  discovery_unavailable: 503,
  upstream_timeout: 504,
  loop_detected: 508,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** The JSON every error answer of the gateway and the web service carries; never a stack. */
export interface ErrorBody {
  /** Stable machine-readable code, e.g. "upstream_timeout". */
  error: string;
  message: string;
  status: number;
  requestId: string | null;
  [extra: string]: unknown;
}

/**
 * The one body shape. `code` is one of ERROR_STATUS, or (web service only)
 * the name of a bare status Koa answered with. `extra` (e.g. `service`) adds
 * fields; it can't replace the four above.
 */
export function errorBody(
  status: number,
  code: string,
  message: string,
  requestId: string | null | undefined,
  extra: Record<string, unknown> = {},
): ErrorBody {
  const body: ErrorBody = { error: code, message, status, requestId: requestId ?? null };
  for (const [k, v] of Object.entries(extra)) if (!(k in body)) body[k] = v;
  return body;
}

const JSON_ERROR_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' } as const;

/**
 * Writes an error answer on a raw node response (paths that answer before or
 * outside Koa). Never throws: once headers are out, a status can no longer be
 * told, so the connection is destroyed and the client sees a broken response
 * rather than a truncated one that looks whole.
 */
export function sendJsonError(res: ServerResponse, status: number, body: ErrorBody, headers: OutgoingHttpHeaders = {}): void {
  if (res.writableEnded || res.destroyed) return;
  if (res.headersSent) return void res.destroy();
  try {
    const json = JSON.stringify(body);
    const own: OutgoingHttpHeaders = { ...JSON_ERROR_HEADERS, 'content-length': Buffer.byteLength(json) };
    const given = Object.entries(headers).filter(([k, v]) => v !== undefined && !(k.toLowerCase() in own));
    res.writeHead(status, { ...Object.fromEntries(given), ...own });
    res.end(json);
  } catch {
    // A bad header value from the caller, or the socket went away mid-write.
    res.destroy();
  }
}

/** What the Koa writer needs of a Koa context (shared does not depend on Koa). */
export interface JsonErrorContext {
  status: number;
  body: unknown;
  set(fields: Record<string, string>): void;
}

/**
 * Writes an error answer on a Koa context. `indent` > 0 pretty-prints it (the
 * web service's answers are read in browsers); the body is the same object.
 */
export function sendKoaJsonError(ctx: JsonErrorContext, body: ErrorBody, headers: Record<string, string> = {}, indent = 0): void {
  ctx.status = body.status;
  ctx.set({ ...headers, ...JSON_ERROR_HEADERS });
  ctx.body = indent > 0 ? `${JSON.stringify(body, null, indent)}\n` : JSON.stringify(body);
}

/**
 * A complete JSON error response as raw bytes, for answers given before (or
 * instead of) Node's HTTP layer, where there is no response object; written
 * with answerAndClose, which closes the socket after it.
 */
export function rawJsonResponse(code: ErrorCode, message: string, headers: Record<string, string> = {}): string {
  const status = ERROR_STATUS[code];
  const body = JSON.stringify(errorBody(status, code, message, null));
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\n${extra}Connection: close\r\n\r\n${body}`
  );
}
