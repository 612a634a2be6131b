import type { Context } from 'koa';
import { STATUS_CODES } from 'node:http';
import { ERROR_STATUS, type ErrorCode } from '@stack/shared';

/**
 * An error that is an answer: its status, code and message go to the client
 * as JSON. Anything else that is thrown becomes a bare 500.
 */
export class HttpError extends Error {
  override name = 'HttpError';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = ERROR_STATUS[code];
  }
}

/** Pretty (2-space) JSON so a browser shows it readably. Errors are never cached. */
export function sendJson(ctx: Context, status: number, body: unknown): void {
  ctx.status = status;
  if (status >= 400) ctx.set('Cache-Control', 'no-store');
  ctx.type = 'application/json';
  ctx.body = `${JSON.stringify(body, null, 2)}\n`;
}

export function statusText(status: number): string {
  return STATUS_CODES[status] ?? 'Error';
}

/** An integer query/body parameter in [min, max]; anything else is a 400 naming it. */
export function intParam(value: unknown, name: string, min: number, max: number, def?: number): number {
  if ((value === undefined || value === '') && def !== undefined) return def;
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new HttpError('invalid_parameter', `${name} must be a whole number from ${min} to ${max}`);
  }
  return n;
}

/** Reads a small request body; a larger one is refused rather than buffered. */
export async function readSmallBody(ctx: Context, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError('body_too_large', `request body is over ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Counts a request body as it streams past, holding one chunk at a time. */
export async function countBody(ctx: Context): Promise<number> {
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) size += chunk.length;
  return size;
}

/** Resolves after ms, or early when signal aborts (no point answering nobody). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
