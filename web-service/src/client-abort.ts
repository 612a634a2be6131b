import type { ServerResponse } from 'node:http';

// What a client hanging up mid-request looks like (HPE_INVALID_EOF_STATE: it left mid-body).
const ABORT_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_CANCELED',
  'HPE_INVALID_EOF_STATE',
]);

/**
 * Whether `err` is our own client going away, not a failure: an abort-like
 * code while the client's socket is gone. The same code with the socket still
 * open (e.g. an upstream's ECONNRESET) is a real error.
 */
export function isClientAbort(err: unknown, socket: { destroyed: boolean } | null | undefined): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && ABORT_CODES.has(code) && (!socket || socket.destroyed);
}

/**
 * Aborted when the client goes away before its response is finished, so work
 * done for it (an upstream call, a delay) stops. Already aborted when the
 * response closed unfinished before this was called.
 */
export function clientGone(res: ServerResponse): AbortSignal {
  if (res.closed || res.destroyed) return res.writableFinished ? new AbortController().signal : AbortSignal.abort();
  const ac = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac.signal;
}
