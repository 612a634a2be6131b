import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';

/** Why relaying a request body stopped, when it is not the instance's doing. */
export type ClientBodyFailure = 'body_too_large' | 'body_timeout' | 'client_abort';

/** The client failed to send its body: answered for the client, never counted against the instance. */
export class ClientBodyError extends Error {
  override readonly name = 'ClientBodyError';
  constructor(readonly kind: ClientBodyFailure) {
    super(kind);
  }
}

/** The instance stopped reading the body we were sending: its fault, like a timeout. */
export class UpstreamStallError extends Error {
  override readonly name = 'UpstreamStallError';
  readonly code = 'UPSTREAM_STALL';
}

export interface BodyLimits {
  maxBytes: number;
  /** Longest wait for the client's next chunk while we want one (nginx's client_body_timeout). */
  idleMs: number;
  /** Longest the instance may leave a chunk unread before the attempt counts as timed out. */
  stallMs: number;
}

/**
 * The client's request body, handed to one attempt. Nothing is read from the
 * client until the upstream client asks for it, so an attempt that fails to
 * connect leaves the body untouched for the next instance. The two clocks
 * tell apart who is slow: `idleMs` runs only while we wait on the client,
 * `stallMs` only while the instance isn't taking what we have.
 */
export class BodyRelay extends Readable {
  started = false;
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly limits: BodyLimits,
  ) {
    super();
  }

  override _read(): void {
    this.#arm(this.limits.idleMs, () => new ClientBodyError('body_timeout'));
    if (this.started) {
      this.req.resume();
      return;
    }
    this.started = true;
    this.req.on('data', this.#onData);
    this.req.on('end', this.#onEnd);
    this.req.on('aborted', this.#onAbort);
    this.req.on('error', this.#onAbort);
    this.req.on('close', this.#onClose);
  }

  #onData = (chunk: Buffer) => {
    this.#bytes += chunk.length;
    if (this.#bytes > this.limits.maxBytes) return void this.destroy(new ClientBodyError('body_too_large'));
    if (this.push(chunk)) this.#arm(this.limits.idleMs, () => new ClientBodyError('body_timeout'));
    else {
      this.req.pause();
      this.#arm(this.limits.stallMs, () => new UpstreamStallError('the instance stopped reading the request body'));
    }
  };

  #onEnd = () => {
    this.#clear();
    this.push(null);
  };

  #onAbort = () => this.destroy(new ClientBodyError('client_abort'));

  #onClose = () => {
    if (!this.req.complete) this.#onAbort();
  };

  #arm(ms: number, error: () => Error) {
    this.#clear();
    if (ms > 0) this.#timer = setTimeout(() => this.destroy(error()), ms);
  }

  #clear() {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#clear();
    this.req.off('data', this.#onData);
    this.req.off('end', this.#onEnd);
    this.req.off('aborted', this.#onAbort);
    this.req.off('error', this.#onAbort);
    this.req.off('close', this.#onClose);
    cb(err);
  }
}
