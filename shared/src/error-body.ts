import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** The JSON every error answer of the gateway and the web service carries; never a stack. */
export interface ErrorBody {
  /** Stable machine-readable code, e.g. "upstream_timeout". */
  error: string;
  message: string;
  status: number;
  requestId: string | null;
  [extra: string]: unknown;
}

/** `extra` (e.g. `service`) adds fields; it can't replace the four above. */
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
    const own: OutgoingHttpHeaders = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(json),
      'cache-control': 'no-store',
    };
    const given = Object.entries(headers).filter(([k, v]) => v !== undefined && !(k.toLowerCase() in own));
    res.writeHead(status, { ...Object.fromEntries(given), ...own });
    res.end(json);
  } catch {
    // A bad header value from the caller, or the socket went away mid-write.
    res.destroy();
  }
}
