import type { IncomingMessage, ServerResponse } from 'node:http';
import { classifyFailure, errorCode, isRetryable, type AttemptFailure, type Instance, type Logger, type RouteTable } from '@stack/shared';
import { BodyRelay, ClientBodyError, UpstreamStallError, type BodyLimits } from './body.js';
import type { Deadline, Deadlines, Expiring } from './deadlines.js';
import { GatewayError, sendError } from './errors.js';
import { clientResponseHeaders, upstreamRequestHeaders, type RequestHead } from './headers.js';
import { instanceKey, instanceMeta, type InstanceMeta } from './instance-meta.js';
import type { OutlierDetector } from './outlier.js';
import type { InstancePicker } from './instance-picker.js';
import type { AttemptOutcome, AttemptReport, ProxyObserver, RetryVerdict } from './observer.js';
import type { RetryBudget } from './retry-budget.js';
import type { UpstreamClient, UpstreamHandler } from './upstream/client.js';

export interface ExchangeOptions {
  upstreamTimeoutMs: number;
  retries: number;
  retryAfterS: number;
  body: BodyLimits;
  /** This hop's name in Via. */
  viaName: string;
}

/** What every exchange shares: the live table and the proxy's policies. */
export interface ExchangeDeps {
  table: () => RouteTable;
  picker: InstancePicker;
  outliers: OutlierDetector;
  budget: RetryBudget;
  upstream: UpstreamClient;
  /** UPSTREAM_TIMEOUT_MS deadlines, one list for every attempt. */
  deadlines: Deadlines;
  log: Logger;
  options: ExchangeOptions;
  /** Called once per exchange when it is over, with the status the client got (499: it left). */
  done: (x: Exchange, status: number) => void;
  /** Sees each attempt's outcome (metrics, live stats). */
  observer?: ProxyObserver;
}

/** Largest whole response body sent as a string with its head (copied once more, so kept small). */
const STRING_BODY_BYTES = 16 * 1024;

const OUTCOME: Record<AttemptFailure, AttemptOutcome> = { connect: 'connect_failure', reset: 'reset', timeout: 'timeout', invalid_response: 'error', other: 'error' };

/** The client hung up: nothing to answer, nothing to count against the instance. */
class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
}

class HeadersTimeoutError extends Error {
  override readonly name = 'HeadersTimeoutError';
  readonly code = 'UPSTREAM_HEADERS_TIMEOUT';
}

/**
 * One request to one instance, as the upstream client's handler: no promise,
 * stream or header object sits between the instance's bytes and the client's
 * socket.
 */
class Attempt implements AttemptReport, UpstreamHandler, Expiring {
  abort: ((err?: Error) => void) | null = null;
  deadline: Deadline | null = null;
  timedOut = false;
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

  /** The whole request is out: only now is the instance on the clock. */
  onRequestSent(): void {
    if (this.over || this.answered) return;
    this.deadline = this.x.deps.deadlines.add(this);
  }

  expire(): void {
    this.timedOut = true;
    this.abort?.(new HeadersTimeoutError());
  }

  onHeaders(status: number, raw: string[], resume: () => void): boolean {
    this.deadline?.cancel();
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
    this.deadline?.cancel();
    if (this.over) return;
    this.over = true;
    this.x.onAttemptError(this, err);
  }
}

/**
 * One client request on its way through the proxy: its attempts, one after
 * another, then the answer streamed back. Instances come from the route table
 * as it is at each attempt, so a retry already sees an instance Consul just
 * removed as gone.
 */
export class Exchange {
  clientGone = false;
  attempts = 0;
  instance: Instance | null = null;
  #tried: string[] = [];
  /** Consul nodes of the failed attempts: a retry looks elsewhere first. */
  #failedNodes: string[] = [];
  /** Retries after a reset or a timeout; retries after a connection failure are not counted (#mayRetry). */
  #retriesSpent = 0;
  #timeoutRetried = false;
  #current: Attempt | null = null;
  #finished = false;
  /** The response was ended with the body's last piece. */
  #ended = false;
  #drain: (() => void) | null = null;

  constructor(
    readonly deps: ExchangeDeps,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly service: string,
    /** Upstream path with its query string. */
    readonly path: string,
    readonly head: RequestHead,
    readonly requestId: string,
    /** performance.now() when the proxy received the request. */
    readonly startedAt: number = performance.now(),
  ) {}

  start(): void {
    // on, not once: a response closes once, and once's wrapper is a measurable cost per request.
    this.res.on('close', this.#onClientClose);
    this.deps.budget.recordRequest(this.startedAt);
    this.#next();
  }

  #onClientClose = () => {
    if (this.res.writableFinished) return;
    this.clientGone = true;
    this.#current?.abort?.(new ClientGoneError());
    // Between attempts there is nothing to abort: the next one sees the flag.
    if (!this.#current || this.#current.over) this.#finish(499);
  };

  #next(): void {
    if (this.clientGone) return this.#finish(499);
    const { deps } = this;
    const instances = deps.table().services.get(this.service) ?? [];
    const inst = deps.picker.pick(this.service, instances, this.#tried, this.#failedNodes);
    if (!inst) {
      return this.#fail(
        new GatewayError('no_instance', `"${this.service}" has no passing instance right now`, { service: this.service, retryAfterS: deps.options.retryAfterS }),
      );
    }
    const meta = instanceMeta(inst);
    this.#tried.push(meta.key);
    this.attempts++;
    this.instance = inst;
    const hasBody = this.head.chunked || this.head.contentLength > 0;
    const body = hasBody ? new BodyRelay(this.req, deps.options.body) : null;
    const attempt = new Attempt(this, inst, meta, body);
    this.#current = attempt;
    const req = this.req;
    deps.upstream.dispatch(
      {
        host: meta.host,
        port: inst.port,
        path: this.path,
        method: req.method ?? 'GET',
        headers: upstreamRequestHeaders(this.head, {
          clientIp: clientIp(req),
          proto: 'http',
          host: this.head.host ?? ownAddress(req),
          requestId: this.requestId,
          upstreamHost: meta.authority,
          via: { protocol: req.httpVersion, receivedBy: deps.options.viaName },
        }),
        body,
        contentLength: this.head.chunked ? null : this.head.contentLength,
      },
      attempt,
    );
  }

  onHeaders(a: Attempt, status: number, raw: string[], resume: () => void): boolean {
    const { res } = this;
    this.deps.outliers.success(a.meta.key);
    if (this.clientGone) {
      a.abort?.(new ClientGoneError());
      return false;
    }
    try {
      res.writeHead(
        status,
        clientResponseHeaders(raw, ['x-request-id', this.requestId, 'x-upstream-instance', a.meta.headerId]),
      );
    } catch (err) {
      // Nothing reached the client yet: release the upstream socket now and
      // answer for ourselves rather than leave the client waiting.
      a.over = true;
      a.abort?.(err as Error);
      this.#report(a, 'error', status);
      this.deps.log.warn({ requestId: this.requestId, service: this.service, instance: a.inst.id, err: (err as Error).message }, 'upstream response headers could not be passed on');
      return this.#fail(new GatewayError('upstream_unreachable', `"${this.service}" sent a response the gateway cannot pass on`, { service: this.service })), false;
    }
    a.answered = true;
    this.#drain = resume;
    this.#report(a, 'ok', status);
    return true;
  }

  onData(chunk: Buffer, last: boolean): boolean {
    if (last) {
      // The whole answer is here: head and body leave in one end() (one write, no corking round trip).
      this.#ended = true;
      // A small one as a latin1 string, which is the same bytes: node then joins it to the head
      // and writes one string, where a Buffer goes through its output queue first (~9 µs of CPU
      // less per request in `npm run bench:ab`). A large one stays a Buffer: no copy.
      if (chunk.length <= STRING_BODY_BYTES) this.res.end(chunk.toString('latin1'), 'latin1');
      else this.res.end(chunk);
      return true;
    }
    if (this.res.write(chunk)) return true;
    // The client is slower than the instance: stop reading the instance until it drains.
    this.res.once('drain', this.#drain!);
    return false;
  }

  onComplete(): void {
    if (!this.#ended) this.res.end();
    this.#finish(this.res.statusCode);
  }

  onAttemptError(a: Attempt, err: Error): void {
    const { deps, service } = this;
    if (a.answered) {
      // Headers are out: all that is left is to cut the connection and note it.
      if (!this.clientGone) deps.log.warn({ requestId: this.requestId, service, instance: a.inst.id, code: errorCode(err) }, 'response stream broke');
      this.res.destroy();
      return this.#finish(this.clientGone ? 499 : this.res.statusCode);
    }
    if (this.clientGone || err instanceof ClientGoneError) return this.#finish(499);
    if (err instanceof ClientBodyError) {
      if (err.kind === 'client_abort') {
        this.res.destroy();
        return this.#finish(499);
      }
      return this.#fail(
        err.kind === 'body_too_large'
          ? new GatewayError('body_too_large', `the request body is over ${deps.options.body.maxBytes} bytes`, { service, close: true })
          : new GatewayError('request_timeout', `the request body stalled for ${deps.options.body.idleMs} ms`, { service, close: true }),
      );
    }
    const kind: AttemptFailure = a.timedOut || err instanceof UpstreamStallError ? 'timeout' : classifyFailure(err);
    if (!this.#failedNodes.includes(a.inst.node)) this.#failedNodes.push(a.inst.node);
    // Only what the instance did counts against it: it refused, reset, or
    // sat on a request that had been fully sent.
    let ejectedMs: number | null = null;
    if (kind !== 'other') {
      const pool = (deps.table().services.get(service) ?? []).map(instanceKey);
      ejectedMs = deps.outliers.failure(a.meta.key, pool, kind);
      if (ejectedMs) deps.log.warn({ service, instance: a.inst.id, upstream: a.meta.key, ejectedMs }, 'instance ejected after consecutive failures');
    }
    const bodyStarted = a.body?.started === true;
    const retryable =
      this.#mayRetry(kind) &&
      // Fresh from the table: an instance Consul just dropped is no reason to stop.
      (deps.table().services.get(service) ?? []).some((i) => !this.#tried.includes(instanceKey(i))) &&
      isRetryable(kind, this.req.method ?? 'GET', bodyStarted) &&
      !(kind === 'timeout' && this.#timeoutRetried);
    const retry = retryable && deps.budget.tryRetry();
    if (retry && kind !== 'connect') this.#retriesSpent++;
    if (kind === 'timeout') this.#timeoutRetried = true;
    a.retry = retry ? 'retried' : retryable ? 'refused' : 'none';
    a.ejected = !!ejectedMs;
    this.#report(a, OUTCOME[kind], 0);
    deps.log.warn(
      { requestId: this.requestId, service, instance: a.inst.id, upstream: a.meta.key, failure: kind, code: errorCode(err), retry },
      'upstream attempt failed',
    );
    if (retry) return this.#next();
    // A body we started to send can't be read to its end any more.
    const close = bodyStarted;
    this.#fail(
      kind === 'timeout'
        ? new GatewayError('upstream_timeout', `"${service}" did not answer within ${deps.options.upstreamTimeoutMs} ms`, { service, close })
        : new GatewayError('upstream_unreachable', `could not get an answer from "${service}" (${kind})`, { service, close }),
    );
  }

  /**
   * A connection failure reached no instance, so (as nginx's proxy_next_upstream
   * error with its default of no try limit) every untried instance may get the
   * request, for up to UPSTREAM_TIMEOUT_MS from the first attempt (gone
   * instances Consul still lists, several at once when a node goes). A reset or
   * a timeout may have been acted on: at most UPSTREAM_RETRIES of those. 0
   * turns both off.
   */
  #mayRetry(kind: AttemptFailure): boolean {
    const { retries, upstreamTimeoutMs } = this.deps.options;
    if (retries === 0) return false;
    if (kind === 'connect') return performance.now() - this.startedAt < upstreamTimeoutMs;
    return this.#retriesSpent < retries;
  }

  #report(a: Attempt, outcome: AttemptOutcome, status: number): void {
    const o = this.deps.observer;
    if (!o) return;
    a.outcome = outcome;
    a.status = status;
    a.ms = performance.now() - a.startedAt;
    o.attempt(this.service, a);
  }

  #fail(e: GatewayError): void {
    if (!this.clientGone) sendError(this.res, e, this.requestId, this.deps.log);
    this.#finish(this.clientGone ? 499 : e.status);
  }

  #finish(status: number): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#current = null;
    this.deps.done(this, status);
  }
}

const plainIp = (ip: string) => (ip.startsWith('::ffff:') ? ip.slice(7) : ip);

export function clientIp(req: IncomingMessage): string {
  return plainIp(req.socket.remoteAddress ?? '');
}

/** host:port the client reached the gateway on: X-Forwarded-Host for a request without Host. */
function ownAddress(req: IncomingMessage): string {
  const ip = plainIp(req.socket.localAddress ?? '');
  return `${ip.includes(':') ? `[${ip}]` : ip}:${req.socket.localPort ?? ''}`;
}
