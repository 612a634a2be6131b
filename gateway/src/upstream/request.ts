import type { Readable } from 'node:stream';

/** What the upstream client is asked (a request) and tells back (a handler's callbacks, its errors). */

export interface UpstreamClientOptions {
  /** Time to open a connection (Envoy's connect_timeout, fabio's proxy.dialtimeout). */
  connectTimeoutMs: number;
  /** Idle time after which a kept-alive socket is not used again, and closed. */
  keepAliveMs: number;
  /** Longest gap between two chunks of a response body, 0 = none. */
  bodyTimeoutMs: number;
}

export interface UpstreamRequest {
  host: string;
  port: number;
  method: string;
  /** Path and query, as they go on the request line. */
  path: string;
  /** Flat [name, value, ...], Host and a body's Content-Length included; Transfer-Encoding is the client's to add. */
  headers: readonly string[];
  /** The request body, read only once the connection is open; null for none. */
  body: Readable | null;
  /** The body's length when the client gave one; null sends it chunked. */
  contentLength: number | null;
}

/** What an attempt hears from the client, in this order (any may end early with onError). */
export interface UpstreamHandler {
  /** Right away: how to abandon the request (the socket is then closed, not reused). */
  onConnect(abort: (err?: Error) => void): void;
  /** The whole request, body included, is written. */
  onRequestSent(): void;
  /** The final head. Return false to stop reading until `resume` is called. */
  onHeaders(status: number, headers: string[], resume: () => void): boolean;
  /**
   * A piece of the body; `last` when it ends a body of known length (onComplete
   * follows at once). Return false to stop reading until `resume` is called.
   */
  onData(chunk: Buffer, last: boolean): boolean;
  onComplete(): void;
  onError(err: Error): void;
}

/**
 * Every failure the client reports. `code` is what shared/upstream-failure.ts
 * classifies: ECONNRESET (the connection broke before the response ended) is a
 * reset, UPSTREAM_CONNECT_TIMEOUT and UPSTREAM_INVALID_ADDRESS (nothing reached
 * the instance) connect failures, UPSTREAM_BODY_TIMEOUT a timeout.
 */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(
    readonly code: 'ECONNRESET' | 'UPSTREAM_CONNECT_TIMEOUT' | 'UPSTREAM_INVALID_ADDRESS' | 'UPSTREAM_BODY_TIMEOUT' | 'UPSTREAM_ABORTED' | 'UPSTREAM_CLIENT_CLOSED',
    message: string,
  ) {
    super(message);
  }
}
