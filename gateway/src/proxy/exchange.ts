import type { IncomingMessage, ServerResponse } from 'node:http';
import { classifyFailure, errorCode, isRetryable, type AttemptFailure, type Instance, type Logger, type RouteTable } from '@stack/shared';
import { Attempt, ClientGoneError, HedgeLostError, HeadersTimeoutError, OUTCOME } from './attempt.js';
import { BodyRelay, ClientBodyError, UpstreamStallError, type BodyLimits } from './body.js';
import { clientIp, ownAddress } from './client-address.js';
import type { Deadline, Deadlines, Expiring } from './deadlines.js';
import { hedgeable, type TryBudget } from '../balancing/hedge.js';
import { GatewayError, sendError } from './errors.js';
import { clientResponseHeaders, upstreamRequestHeaders, type RequestHead } from './headers.js';
import { instanceMeta } from './instance-meta.js';
import type { OutlierDetector } from '../balancing/outlier.js';
import type { InstancePicker } from '../balancing/instance-picker.js';
import type { AttemptOutcome, ProxyObserver } from '../observe/observer.js';
import type { RetryBudget } from '../balancing/retry-budget.js';
import type { UpstreamClient } from '../upstream/client.js';

export interface ExchangeOptions {
  /** The longest a request waits for response headers, all its attempts together. */
  upstreamTimeoutMs: number;
  /** Safe requests without a body get a second attempt elsewhere after the per-try timeout (hedge.ts). */
  hedging?: boolean;
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
  /** UPSTREAM_TIMEOUT_MS deadlines (one per request) and per-try timeouts, one list. */
  deadlines: Deadlines;
  /** The per-try timeout of hedged requests; without it nothing is hedged. It learns latencies as one of the observers. */
  tryBudget?: TryBudget;
  log: Logger;
  options: ExchangeOptions;
  /** Called once per exchange when it is over, with the status the client got (499: it left). */
  done: (x: Exchange, status: number) => void;
  /** Sees each attempt's outcome (metrics, live stats). */
  observer?: ProxyObserver;
}

/** Largest whole response body sent as a string with its head (copied once more, so kept small). */
const STRING_BODY_BYTES = 16 * 1024;

/**
 * One client request on its way through the proxy: its attempts, then the
 * answer streamed back. Instances come from the route table as it is at each
 * attempt, so a retry already sees an instance Consul just removed as gone.
 *
 * Time: the request waits at most UPSTREAM_TIMEOUT_MS for response headers,
 * all attempts together (from its receipt; with a body, from when the body
 * was sent). A safe request without a body also has a per-try timeout
 * (hedge.ts): when it passes, a second attempt goes to another instance while
 * the first keeps waiting; the first headers win and the other attempt is
 * aborted. Hedges and retries share UPSTREAM_RETRIES and the retry budget.
 */
export class Exchange implements Expiring {
  clientGone = false;
  attempts = 0;
  /** The instance of the latest attempt; once answered, the one that answered. */
  instance: Instance | null = null;
  #tried: string[] = [];
  /** Consul nodes of the failed attempts: a retry looks elsewhere first. */
  #failedNodes: string[] = [];
  /** Hedges, and retries after a reset or a timeout; retries after a connection failure are not counted (#mayRetry). */
  #retriesSpent = 0;
  #timeoutRetried = false;
  /** Attempts waiting for headers, or the one streaming the answer. */
  #live: Attempt[] = [];
  #hedgeable = false;
  #deadline: Deadline | null = null;
  /** The request's deadline passed: no more attempts, 504 once the live ones are ended. */
  #expired = false;
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
    const { deps } = this;
    deps.budget.recordRequest(this.startedAt);
    const hasBody = this.head.chunked || this.head.contentLength > 0;
    this.#hedgeable = deps.tryBudget !== undefined && deps.options.hedging !== false && deps.options.retries > 0 && hedgeable(this.req.method ?? 'GET', hasBody);
    if (!hasBody) this.armDeadline();
    this.#next(false);
  }

  /** Starts the request's deadline (once). */
  armDeadline(): void {
    if (this.#deadline || this.#expired || this.#finished) return;
    this.#deadline = this.deps.deadlines.add(this);
  }

  /** UPSTREAM_TIMEOUT_MS passed without response headers: every waiting attempt ends as a timeout. */
  expire(): void {
    this.#deadline = null;
    if (this.#finished) return;
    this.#expired = true;
    for (const a of this.#live.slice()) {
      if (a.answered) continue;
      a.timedOut = true;
      a.abort?.(new HeadersTimeoutError());
    }
  }

  #onClientClose = () => {
    if (this.res.writableFinished) return;
    this.clientGone = true;
    for (const a of this.#live.slice()) a.abort?.(new ClientGoneError());
    // Nothing left to abort: the next attempt (if any) sees the flag.
    if (this.#live.length === 0) this.#finish(499);
  };

  /** Starts an attempt; a hedge avoids the nodes of attempts still waiting. False: no instance for it. */
  #next(hedge: boolean): boolean {
    if (this.clientGone) return this.#finish(499), false;
    const { deps } = this;
    const instances = deps.table().services.get(this.service) ?? [];
    let avoid: readonly string[] = this.#failedNodes;
    if (hedge) avoid = [...this.#failedNodes, ...this.#live.map((a) => a.inst.node)];
    const inst = deps.picker.pick(this.service, instances, this.#tried, avoid);
    if (!inst) {
      if (hedge) return false;
      this.#fail(
        new GatewayError('no_instance', `"${this.service}" has no passing instance right now`, { service: this.service, retryAfterS: deps.options.retryAfterS }),
      );
      return false;
    }
    const meta = instanceMeta(inst);
    this.#tried.push(inst.key);
    this.attempts++;
    this.instance = inst;
    const hasBody = this.head.chunked || this.head.contentLength > 0;
    const body = hasBody ? new BodyRelay(this.req, deps.options.body) : null;
    const attempt = new Attempt(this, inst, meta, body);
    attempt.hedge = hedge;
    this.#live.push(attempt);
    deps.picker.started(inst.key);
    if (this.#hedgeable) attempt.tryDeadline = deps.deadlines.add(attempt, deps.tryBudget!.budgetMs(this.service));
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
    return true;
  }

  /** `a` passed its per-try timeout: hedge it on another instance when UPSTREAM_RETRIES, the budget and the pool allow. */
  onTryTimeout(a: Attempt): void {
    if (a.over || a.answered || this.#finished || this.#expired || this.clientGone) return;
    const { deps, service } = this;
    if (this.#retriesSpent >= deps.options.retries) return;
    if (!(deps.table().services.get(service) ?? []).some((i) => !this.#tried.includes(i.key))) return;
    if (!deps.budget.tryRetry()) {
      deps.observer?.hedge?.(service, 'refused');
      return;
    }
    if (!this.#next(true)) return;
    this.#retriesSpent++;
    deps.observer?.hedge?.(service, 'sent');
    deps.log.debug({ requestId: this.requestId, service, instance: a.inst.id, upstream: a.meta.upstream, hedge: this.instance?.id }, 'per-try timeout: hedged');
  }

  onHeaders(a: Attempt, status: number, raw: string[], resume: () => void): boolean {
    const { res, deps } = this;
    const now = performance.now();
    deps.outliers.success(a.inst.key);
    // An answer is an answer, whatever its status: a 500 on one path says little about the instance (Linkerd counts none).
    // (The per-try budget learns the latency as an observer: recorded here it cost ~3 µs per request in bench:ab.)
    this.#settle(a, now - a.startedAt, false, now);
    this.#deadline?.cancel();
    this.#deadline = null;
    this.instance = a.inst;
    // The first headers win; the other attempts are abandoned (and the slow ones counted against their instance).
    if (this.#live.length > 1) {
      for (const b of this.#live.slice()) {
        if (b === a) continue;
        b.lost = true;
        b.abort?.(new HedgeLostError());
      }
      if (a.hedge) deps.observer?.hedge?.(this.service, 'won');
    }
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
      deps.log.warn({ requestId: this.requestId, service: this.service, instance: a.inst.id, err: (err as Error).message }, 'upstream response headers could not be passed on');
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
    const i = this.#live.indexOf(a);
    if (i >= 0) this.#live.splice(i, 1);
    if (a.answered) {
      // Headers are out: all that is left is to cut the connection and note it.
      if (!this.clientGone) deps.log.warn({ requestId: this.requestId, service, instance: a.inst.id, code: errorCode(err) }, 'response stream broke');
      this.res.destroy();
      return this.#finish(this.clientGone ? 499 : this.res.statusCode);
    }
    const ms = performance.now() - a.startedAt;
    if (a.lost) return this.#lostRace(a, ms);
    if (this.clientGone || err instanceof ClientGoneError) {
      this.#settle(a, null, false);
      if (this.#live.length === 0) this.#finish(499);
      return;
    }
    if (err instanceof ClientBodyError) {
      this.#settle(a, null, false);
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
    this.#settle(a, ms, true);
    if (!this.#failedNodes.includes(a.inst.node)) this.#failedNodes.push(a.inst.node);
    // Only what the instance did counts against it: it refused, reset, or
    // sat on a request that had been fully sent.
    const ejectedMs = kind === 'other' ? null : this.#countFailure(a, kind);
    const bodyStarted = a.body?.started === true;
    // Another attempt of this request is still waiting: its answer may yet come.
    const waiting = this.#live.length > 0;
    const retryable =
      !waiting &&
      !this.#expired &&
      this.#mayRetry(kind) &&
      // Fresh from the table: an instance Consul just dropped is no reason to stop.
      (deps.table().services.get(service) ?? []).some((i) => !this.#tried.includes(i.key)) &&
      isRetryable(kind, this.req.method ?? 'GET', bodyStarted) &&
      !(kind === 'timeout' && this.#timeoutRetried);
    const retry = retryable && deps.budget.tryRetry();
    if (retry && kind !== 'connect') this.#retriesSpent++;
    if (kind === 'timeout') this.#timeoutRetried = true;
    a.retry = retry ? 'retried' : retryable ? 'refused' : 'none';
    a.ejected = !!ejectedMs;
    this.#report(a, OUTCOME[kind], 0);
    deps.log.warn(
      { requestId: this.requestId, service, instance: a.inst.id, upstream: a.meta.upstream, failure: kind, code: errorCode(err), retry, waiting },
      'upstream attempt failed',
    );
    if (waiting) return;
    if (retry) return void this.#next(false);
    // A body we started to send can't be read to its end any more.
    const close = bodyStarted;
    this.#fail(
      kind === 'timeout'
        ? new GatewayError('upstream_timeout', `"${service}" did not answer within ${deps.options.upstreamTimeoutMs} ms`, { service, close })
        : new GatewayError('upstream_unreachable', `could not get an answer from "${service}" (${kind})`, { service, close }),
    );
  }

  /**
   * `a` was abandoned because another attempt answered first. Past its per-try
   * timeout it counts as a timeout against its instance (a frozen instance is
   * ejected by its hedged-away attempts); a hedge that merely lost the race
   * says nothing about its instance.
   */
  #lostRace(a: Attempt, ms: number): void {
    if (!a.slow) return this.#settle(a, null, false);
    this.#settle(a, ms, true);
    const ejectedMs = this.#countFailure(a, 'timeout');
    a.ejected = !!ejectedMs;
    this.#report(a, 'timeout', 0);
  }

  /** Tells the balancer, once, that the attempt is over: `failed` counts as a slow answer; `ms` null (nothing learnt: the client left, a hedge lost the race) only leaves the in-flight count. */
  #settle(a: Attempt, ms: number | null, failed: boolean, at?: number): void {
    if (a.settled) return;
    a.settled = true;
    if (ms === null) this.deps.picker.abandoned(a.inst.key);
    else this.deps.picker.finished(a.inst.key, ms, failed, at);
  }

  #countFailure(a: Attempt, kind: Exclude<AttemptFailure, 'other'>): number | null {
    const { deps, service } = this;
    const pool = (deps.table().services.get(service) ?? []).map((i) => i.key);
    const ejectedMs = deps.outliers.failure(a.inst.key, pool, kind);
    if (ejectedMs) deps.log.warn({ service, instance: a.inst.id, upstream: a.meta.upstream, ejectedMs }, 'instance ejected after consecutive failures');
    return ejectedMs;
  }

  /**
   * A connection failure reached no instance, so (as nginx's proxy_next_upstream
   * error with its default of no try limit) every untried instance may get the
   * request until the request's deadline (gone instances Consul still lists,
   * several at once when a node goes). Hedges, and retries after a reset or a
   * timeout (which may have been acted on): at most UPSTREAM_RETRIES of those.
   * 0 turns both off.
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
    this.#deadline?.cancel();
    this.#deadline = null;
    this.deps.done(this, status);
  }
}
