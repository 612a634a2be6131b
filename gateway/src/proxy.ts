import type { Context } from 'koa';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import type { Instance, Logger, RouteTable } from '@stack/shared';
import { GatewayError } from './errors.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { instanceKey, type Picker } from './picker.js';
import type { OutlierDetector } from './outlier.js';
import type { RetryBudget } from './retry-budget.js';
import { classifyFailure, errorCode, isRetryable, type AttemptFailure } from './upstream-error.js';

export interface ProxyOptions {
  upstreamTimeoutMs: number;
  bodyTimeoutMs: number;
  retries: number;
  maxInflight: number;
  retryAfterS: number;
}

export interface ProxyDeps {
  table: () => RouteTable;
  synced: () => boolean;
  picker: Picker;
  outliers: OutlierDetector;
  budget: RetryBudget;
  dispatcher: Dispatcher;
  log: Logger;
  options: ProxyOptions;
}

class AttemptError extends Error {
  constructor(
    readonly kind: AttemptFailure | 'client_abort',
    override readonly cause: unknown,
  ) {
    super(kind);
  }
  override readonly name = 'AttemptError';
}

/**
 * Sends a request to one instance of `service` and streams the answer back.
 * Instances come from the route table as it is at each attempt, so a retry
 * already sees the instance Consul just removed as gone.
 */
export function createProxy(deps: ProxyDeps) {
  const { options: o, log } = deps;
  let inflight = 0;

  async function proxy(ctx: Context, service: string, path: string): Promise<void> {
    const first = deps.table().services.get(service);
    if (!first) {
      if (!deps.synced()) throw new GatewayError('not_ready', 'the gateway has not synced with Consul yet', service, o.retryAfterS);
      throw new GatewayError('unknown_service', `no service named "${service}" is registered in Consul`, service);
    }
    if (first.length === 0)
      throw new GatewayError('no_instance', `"${service}" has no passing instance right now`, service, o.retryAfterS);
    if (inflight >= o.maxInflight)
      throw new GatewayError('overloaded', 'too many requests in flight; try again shortly', service, o.retryAfterS);

    inflight++;
    try {
      await forward(ctx, service, path);
    } finally {
      inflight--;
    }
  }

  async function forward(ctx: Context, service: string, path: string): Promise<void> {
    const requestId = ctx.state.requestId as string;
    const method = ctx.method;
    const hasBody = ctx.req.headers['transfer-encoding'] !== undefined || Number(ctx.req.headers['content-length'] ?? 0) > 0;
    let bodyStarted = false;
    // The body is handed to undici lazily: until undici reads it, the client's
    // stream is untouched and the request can still go to another instance.
    const body = () =>
      hasBody
        ? Readable.from(
            (async function* () {
              bodyStarted = true;
              for await (const chunk of ctx.req) yield chunk as Buffer;
            })(),
            { objectMode: false },
          )
        : undefined;

    const tried = new Set<string>();
    let timeoutRetried = false;
    deps.budget.recordRequest();

    for (let attempt = 0; ; attempt++) {
      const instances = deps.table().services.get(service) ?? [];
      const inst = deps.picker.pick(service, instances, tried);
      if (!inst) throw new GatewayError('no_instance', `"${service}" has no passing instance right now`, service, o.retryAfterS);
      tried.add(instanceKey(inst));
      try {
        const res = await send(ctx, inst, path, requestId, body());
        recordOutcome(service, inst, instances, res.statusCode >= 500);
        await respond(ctx, inst, res, service);
        return;
      } catch (err) {
        if (!(err instanceof AttemptError)) throw err;
        if (err.kind === 'client_abort') {
          ctx.respond = false;
          return;
        }
        const ejected = recordOutcome(service, inst, instances, true);
        const retry =
          attempt < o.retries &&
          // Fresh from the table: an instance Consul just dropped is no reason to stop.
          deps.table().services.get(service)?.some((i) => !tried.has(instanceKey(i))) === true &&
          isRetryable(err.kind, method, bodyStarted) &&
          !(err.kind === 'timeout' && timeoutRetried) &&
          deps.budget.tryRetry();
        if (err.kind === 'timeout') timeoutRetried = true;
        log.warn(
          { requestId, service, instance: inst.id, upstream: instanceKey(inst), failure: err.kind, code: errorCode(err.cause), retry, ejectedMs: ejected ?? undefined },
          'upstream attempt failed',
        );
        if (retry) continue;
        if (err.kind === 'timeout')
          throw new GatewayError('upstream_timeout', `"${service}" did not answer within ${o.upstreamTimeoutMs} ms`, service);
        throw new GatewayError('upstream_unreachable', `could not get an answer from "${service}" (${err.kind})`, service);
      }
    }
  }

  /** One attempt: resolves once response headers arrived, or throws an AttemptError. */
  async function send(
    ctx: Context,
    inst: Instance,
    path: string,
    requestId: string,
    body: Readable | undefined,
  ): Promise<Dispatcher.ResponseData> {
    const ac = new AbortController();
    let timedOut = false;
    let clientGone = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, o.upstreamTimeoutMs);
    const onClose = () => {
      if (!ctx.res.writableFinished) {
        clientGone = true;
        ac.abort();
      }
    };
    ctx.res.once('close', onClose);
    const host = inst.address.includes(':') ? `[${inst.address}]` : inst.address;
    try {
      return await deps.dispatcher.request({
        origin: `http://${host}:${inst.port}`,
        path: ctx.querystring ? `${path}?${ctx.querystring}` : path,
        method: ctx.method as Dispatcher.HttpMethod,
        headers: upstreamRequestHeaders(ctx.req.headers, {
          clientIp: (ctx.req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
          proto: ctx.protocol,
          host: ctx.get('host') || undefined,
          requestId,
          upstreamHost: `${host}:${inst.port}`,
        }),
        body,
        signal: ac.signal,
        bodyTimeout: o.bodyTimeoutMs,
        // Our own timer is the time-to-headers limit; undici's is coarser.
        headersTimeout: 0,
      });
    } catch (err) {
      if (clientGone) throw new AttemptError('client_abort', err);
      if (timedOut) throw new AttemptError('timeout', err);
      throw new AttemptError(classifyFailure(err), err);
    } finally {
      clearTimeout(timer);
      ctx.res.off('close', onClose);
    }
  }

  async function respond(ctx: Context, inst: Instance, res: Dispatcher.ResponseData, service: string) {
    ctx.respond = false;
    const headers = clientResponseHeaders(res.headers);
    headers['x-upstream-instance'] = inst.id;
    ctx.status = res.statusCode;
    ctx.res.writeHead(res.statusCode, headers);
    try {
      await pipeline(res.body, ctx.res);
    } catch (err) {
      // The client went away, or the upstream broke mid-body: headers are
      // out, so all that is left is to drop the connection and note it.
      if (!ctx.res.writableFinished && ctx.req.socket.destroyed) return;
      log.warn({ requestId: ctx.state.requestId, service, instance: inst.id, code: errorCode(err) }, 'response stream broke');
    }
  }

  /** Feeds passive health; returns the ejection time when this ejected the instance. */
  function recordOutcome(service: string, inst: Instance, instances: readonly Instance[], failed: boolean) {
    const key = instanceKey(inst);
    if (!failed) {
      deps.outliers.success(key);
      return null;
    }
    const ms = deps.outliers.failure(key, instances.map(instanceKey));
    if (ms) log.warn({ service, instance: inst.id, upstream: key, ejectedMs: ms }, 'instance ejected after consecutive failures');
    return ms;
  }

  return { proxy, inflight: () => inflight };
}
