import type { Context } from 'koa';
import { STATUS_CODES } from 'node:http';

/**
 * An error that is an answer: its status, code and message go to the client
 * as JSON. Anything else that is thrown becomes a bare 500.
 */
export class HttpError extends Error {
  override name = 'HttpError';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Pretty (2-space) JSON so a browser shows it readably. */
export function sendJson(ctx: Context, status: number, body: unknown): void {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.body = `${JSON.stringify(body, null, 2)}\n`;
}

/** The error body every failure uses. */
export function errorBody(status: number, code: string, message: string, requestId: string, extra = {}) {
  return { error: code, message, ...extra, status, requestId };
}

export function statusText(status: number): string {
  return STATUS_CODES[status] ?? 'Error';
}

/** An integer query/body parameter in [min, max]; anything else is a 400 naming it. */
export function intParam(value: unknown, name: string, min: number, max: number, def?: number): number {
  if ((value === undefined || value === '') && def !== undefined) return def;
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new HttpError(400, 'invalid_parameter', `${name} must be a whole number from ${min} to ${max}`);
  }
  return n;
}

/** Reads a small request body; a larger one is refused rather than buffered. */
export async function readSmallBody(ctx: Context, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, 'body_too_large', `request body is over ${limit} bytes`);
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

/** Aborted when the client goes away before its response is finished. */
export function clientGone(ctx: Context): AbortSignal {
  const ac = new AbortController();
  ctx.res.once('close', () => {
    if (!ctx.res.writableFinished) ac.abort();
  });
  return ac.signal;
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
