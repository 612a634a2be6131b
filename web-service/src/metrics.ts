import type { Middleware } from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds, 1 ms to 10 s. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Requests no route matched (404, 405): one label, however many paths are asked for. */
export const UNMATCHED = '(unmatched)';

/** How a /call ended. */
export type CallOutcome =
  | 'ok' // the called service answered (any status)
  | 'refused' // call policy: a denied name or too many hops (403, 508)
  | 'invalid' // bad service name or path (400)
  | 'too_many_services'
  | 'discovery_unavailable'
  | 'no_instances'
  | 'timeout'
  | 'unreachable'
  | 'upstream_error'
  | 'canceled' // our own client left
  | 'error';

const CODES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const;
const codeIndex = (status: number) => (status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : 5);

type Inc = { inc(value?: number): void };
interface RouteChildren {
  codes: Inc[];
  duration: { observe(value: number): void };
}

export interface WebMetricsDeps {
  /** Whether the instance is draining (drain.ts). */
  draining: () => boolean;
  /** Process metrics (CPU, memory, event loop, GC); off in tests that make many registries. */
  processMetrics?: boolean;
}

/**
 * The web service's Prometheus metrics (prom-client): requests by matched
 * route pattern (never the raw path) and status class, their latency, the
 * drain state and /call outcomes.
 */
export class WebMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'route' | 'code'>;
  readonly #duration: Histogram<'route'>;
  readonly #calls: Counter<'outcome'>;
  readonly #callRetries: Counter;
  #routes = new Map<string, RouteChildren>();

  constructor(deps: WebMetricsDeps) {
    const registers = [this.registry];
    if (deps.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'web_' });
    this.#requests = new Counter({
      name: 'web_requests_total',
      help: 'Requests by matched route pattern and status class (499: the client left).',
      labelNames: ['route', 'code'],
      registers,
    });
    this.#duration = new Histogram({
      name: 'web_request_duration_seconds',
      help: 'Time to answer a request, by matched route pattern.',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#calls = new Counter({
      name: 'web_calls_total',
      help: '/call requests by outcome: ok (the called service answered, any status), refused, invalid, too_many_services, discovery_unavailable, no_instances, timeout, unreachable, upstream_error, canceled, error.',
      labelNames: ['outcome'],
      registers,
    });
    this.#callRetries = new Counter({
      name: 'web_call_retries_total',
      help: '/call attempts retried on another instance.',
      registers,
    });
    const { draining } = deps;
    new Gauge({
      name: 'web_draining',
      help: 'Whether the instance is draining after SIGTERM (1) or serving normally (0).',
      registers,
      collect() {
        this.set(draining() ? 1 : 0);
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Outermost middleware: sees the final status, errors included. */
  middleware(): Middleware {
    return async (ctx, next) => {
      const t0 = performance.now();
      try {
        await next();
      } finally {
        const matched = (ctx as { _matchedRoute?: string | RegExp })._matchedRoute;
        this.request(matched === undefined ? UNMATCHED : String(matched), ctx.status, performance.now() - t0);
      }
    };
  }

  request(route: string, status: number, ms: number): void {
    const r = this.#route(route);
    r.codes[codeIndex(status)]!.inc();
    r.duration.observe(ms / 1000);
  }

  /** One /call is over: its outcome and how many instances it tried. */
  call(outcome: CallOutcome, attempts: number): void {
    this.#calls.labels(outcome).inc();
    if (attempts > 1) this.#callRetries.inc(attempts - 1);
  }

  // Route patterns are the router's own, a fixed set: children are cached per pattern.
  #route(route: string): RouteChildren {
    let r = this.#routes.get(route);
    if (!r) {
      r = { codes: CODES.map((code) => this.#requests.labels(route, code)), duration: this.#duration.labels(route) };
      this.#routes.set(route, r);
    }
    return r;
  }
}
