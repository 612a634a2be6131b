import type { AttemptFailure, Instance } from '@stack/shared';
import type { BodyRelay } from './body.js';
import type { Deadline, Expiring } from './deadlines.js';
import type { Exchange } from './exchange.js';
import type { InstanceMeta } from './instance-meta.js';
import type { AttemptOutcome, AttemptReport, RetryVerdict } from '../observe/observer.js';
import type { UpstreamHandler } from '../upstream/client.js';

/** How a failed attempt is reported to the observers. */
export const OUTCOME: Record<AttemptFailure, AttemptOutcome> = { connect: 'connect_failure', reset: 'reset', timeout: 'timeout', invalid_response: 'error', other: 'error' };

/** The client hung up: nothing to answer, nothing to count against the instance. */
export class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
}

export class HeadersTimeoutError extends Error {
  override readonly name = 'HeadersTimeoutError';
  readonly code = 'UPSTREAM_HEADERS_TIMEOUT';
}

/** Another attempt of the same request got its response headers first. */
export class HedgeLostError extends Error {
  override readonly name = 'HedgeLostError';
}

/**
 * One request to one instance, as the upstream client's handler: no promise,
 * stream or header object sits between the instance's bytes and the client's
 * socket. Its deadline is the per-try timeout of a hedged request.
 */
export class Attempt implements AttemptReport, UpstreamHandler, Expiring {
  abort: ((err?: Error) => void) | null = null;
  /** Per-try timeout (hedgeable requests only). */
  tryDeadline: Deadline | null = null;
  /** The request's deadline passed while this attempt waited. */
  timedOut = false;
  /** Its per-try timeout passed without response headers. */
  slow = false;
  /** Started as a hedge while an earlier attempt was still waiting. */
  hedge = false;
  /** Another attempt answered first: this one was abandoned. */
  lost = false;
  /** Its end was reported to the balancer (once per attempt). */
  settled = false;
  /** Headers reached the client: from here on the answer is this attempt's. */
  answered = false;
  over = false;
  // What the observer is told, filled in once the outcome is known.
  readonly startedAt = performance.now();
  outcome: AttemptOutcome = 'ok';
  status = 0;
  ms = 0;
  retry: RetryVerdict = 'none';
  ejected = false;

  constructor(
    readonly x: Exchange,
    readonly inst: Instance,
    readonly meta: InstanceMeta,
    readonly body: BodyRelay | null,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    if (this.x.clientGone) abort(new ClientGoneError());
  }

  /** The whole request is out: a request with a body is on the clock from here. */
  onRequestSent(): void {
    if (this.over || this.answered) return;
    this.x.armDeadline();
  }

  /** The per-try timeout: decided after this turn's I/O, so an answer already in the socket wins over a hedge. */
  expire(): void {
    this.tryDeadline = null;
    if (this.over || this.answered) return;
    this.slow = true;
    setImmediate(onTryTimeout, this);
  }

  onHeaders(status: number, raw: string[], resume: () => void): boolean {
    this.tryDeadline?.cancel();
    return this.x.onHeaders(this, status, raw, resume);
  }

  onData(chunk: Buffer, last: boolean): boolean {
    return this.x.onData(chunk, last);
  }

  onComplete(): void {
    this.over = true;
    this.x.onComplete();
  }

  onError(err: Error): void {
    this.tryDeadline?.cancel();
    if (this.over) return;
    this.over = true;
    this.x.onAttemptError(this, err);
  }
}

const onTryTimeout = (a: Attempt) => a.x.onTryTimeout(a);
