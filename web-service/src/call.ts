import http from 'node:http';
import axios, { isAxiosError, type AxiosInstance } from 'axios';
import {
  classifyFailure,
  errorCode,
  hasPathTraversal,
  isRetryable,
  isTimeout,
  isValidServiceName,
  RoundRobin,
  type AttemptFailure,
  type ErrorCode,
  type Instance,
  type Logger,
} from '@stack/shared';
import { HttpError } from './http.js';
import type { CallOutcome } from './metrics.js';

/**
 * What /call needs from discovery. shared's Discovery fits as is; tests pass
 * a fake. watchService starts (or reuses) a watch and resolves once the first
 * answer is in `table`, or after timeoutMs with whatever is known.
 */
export interface ServiceDirectory {
  watchService(name: string, timeoutMs: number): Promise<void>;
  readonly table: { readonly services: ReadonlyMap<string, readonly Instance[]> };
}

export interface CallRequest {
  service: string;
  /** Raw (still percent-encoded) path, '' or starting with '/'. */
  path: string;
  /** Raw query string without '?'. */
  query: string;
  requestId: string;
  /** The Via header to send: the incoming one plus our "(call)" entry (see call-policy.ts). */
  via?: string;
  /** Aborts the upstream request when our own client has gone. */
  signal?: AbortSignal;
}

export interface CallResult {
  service: string;
  target: { id: string; address: string; port: number };
  status: number;
  body: unknown;
  attempts: number;
}

export interface Caller {
  /** Resolves with the upstream answer (any status); throws HttpError otherwise. */
  call(req: CallRequest): Promise<CallResult>;
  close(): void;
}

export interface CallerOptions {
  directory: ServiceDirectory;
  /** For the whole call, a retry included. */
  timeoutMs: number;
  discoveryTimeoutMs: number;
  /** Distinct services /call may watch: user input must not create unbounded watches. */
  maxServices: number;
  log: Logger;
  picker?: RoundRobin;
  http?: AxiosInstance;
  /** Told how each call ended and how many instances it tried (metrics). */
  observe?: (outcome: CallOutcome, attempts: number) => void;
}

const MAX_BODY_BYTES = 1024 * 1024;

export function createCaller(opts: CallerOptions): Caller {
  const picker = opts.picker ?? new RoundRobin();
  const agent = opts.http ? undefined : new http.Agent({ keepAlive: true, maxSockets: 64 });
  const client =
    opts.http ??
    axios.create({
      httpAgent: agent,
      proxy: false, // never route through HTTP_PROXY from the environment
      maxRedirects: 0,
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(d: unknown) => d],
      maxContentLength: MAX_BODY_BYTES,
    });
  const watched = new Set<string>();

  /** One GET to `inst`; `deadline` is the whole call's, so a retry gets only what is left. */
  async function attempt(inst: Instance, req: CallRequest, attempts: number, deadline: number): Promise<CallResult> {
    const url = upstreamUrl(inst.address, inst.port, req.path, req.query);
    const left = Math.max(1, deadline - Date.now());
    const timeout = AbortSignal.timeout(left); // axios' own timeout is per socket idle
    try {
      const res = await client.get(url.href, {
        timeout: left,
        signal: req.signal ? AbortSignal.any([timeout, req.signal]) : timeout,
        headers: {
          'X-Request-Id': req.requestId,
          Accept: 'application/json, text/plain;q=0.9, */*;q=0.1',
          ...(req.via ? { Via: req.via } : {}),
        },
      });
      return {
        service: req.service,
        target: { id: inst.id, address: inst.address, port: inst.port },
        status: res.status,
        body: parseBody(res.data, res.headers['content-type']),
        attempts,
      };
    } catch (err) {
      throw Object.assign(err as Error, { timedOut: timeout.aborted });
    }
  }

  /** The call itself; `seen.attempts` counts the instances tried. */
  async function call(req: CallRequest, seen: { attempts: number }): Promise<CallResult> {
    const { service } = req;
    if (!isValidServiceName(service)) {
      throw new HttpError('invalid_service_name', 'service name must be letters, digits and dashes (1-63)', { service });
    }
    checkPath(req.path); // before touching discovery
    const key = service.toLowerCase();
    if (!watched.has(key)) {
      if (watched.size >= opts.maxServices) {
        throw new HttpError('too_many_services', `this instance already watches ${opts.maxServices} services, the most /call may`, { service });
      }
      watched.add(key);
    }
    await opts.directory.watchService(service, opts.discoveryTimeoutMs);
    const instances = opts.directory.table.services.get(key);
    if (!instances) {
      throw new HttpError('discovery_unavailable', `no answer from consul within ${opts.discoveryTimeoutMs} ms`, { service }, { 'Retry-After': '1' });
    }
    const first = picker.pick(key, instances);
    if (!first) {
      throw new HttpError('no_instance', `no passing instance of ${service}`, { service }, { 'Retry-After': '1' });
    }
    const deadline = Date.now() + opts.timeoutMs;
    try {
      seen.attempts = 1;
      return await attempt(first, req, 1, deadline);
    } catch (err) {
      const kind = failureKind(err);
      // Once, on another instance: a GET that could not connect or was reset. Not a timeout:
      // a second one would run past the budget the gateway gives us.
      const retry = kind !== 'timeout' && isRetryable(kind, 'GET', false) && !req.signal?.aborted && Date.now() < deadline;
      const second = retry ? picker.pick(key, instances, (i) => i === first) : undefined;
      if (!second) throw upstreamError(err, service, first, opts, req.requestId);
      opts.log.warn({ requestId: req.requestId, service, target: first.id, failure: kind, err: describe(err) }, 'call failed; trying another instance');
      try {
        seen.attempts = 2;
        return await attempt(second, req, 2, deadline);
      } catch (err2) {
        throw upstreamError(err2, service, second, opts, req.requestId);
      }
    }
  }

  return {
    async call(req) {
      const seen = { attempts: 0 };
      try {
        const result = await call(req, seen);
        opts.observe?.('ok', seen.attempts);
        return result;
      } catch (err) {
        opts.observe?.(callOutcome(err), seen.attempts);
        throw err;
      }
    },
    close() {
      agent?.destroy();
    },
  };
}

/**
 * http://address:port + path. The origin comes only from discovery; the path
 * is set as a path and may not hold dot segments, empty segments or
 * backslashes, so no input can point the request at another host.
 */
export function upstreamUrl(address: string, port: number, path: string, query: string): URL {
  checkPath(path);
  const origin = new URL(`http://${address.includes(':') ? `[${address}]` : address}:${port}`);
  const url = new URL(origin.href);
  url.pathname = path || '/';
  url.search = query;
  if (url.origin !== origin.origin) throw badPath();
  return url;
}

/** Throws a 400 for anything but '' or '/seg/seg...' with plain segments. */
function checkPath(path: string): void {
  if ((path !== '' && !path.startsWith('/')) || hasPathTraversal(path) || path.includes('//')) throw badPath();
  try {
    decodeURIComponent(path);
  } catch {
    throw badPath();
  }
}

function badPath(): HttpError {
  return new HttpError('invalid_path', 'path may not contain empty or dot segments or backslashes');
}

function parseBody(data: unknown, contentType: unknown): unknown {
  const text = typeof data === 'string' ? data : String(data ?? '');
  if (typeof contentType === 'string' && /json/i.test(contentType)) {
    try {
      return JSON.parse(text);
    } catch {
      // Not the JSON it claims: show it as text.
    }
  }
  return text;
}

/** What failed, in shared's terms; a timeout is one of our own deadline. */
function failureKind(err: unknown): AttemptFailure {
  if ((err as { timedOut?: boolean }).timedOut === true || isTimeout(err)) return 'timeout';
  return classifyFailure(err);
}

const OUTCOME_BY_CODE: Partial<Record<ErrorCode, CallOutcome>> = {
  invalid_service_name: 'invalid',
  invalid_path: 'invalid',
  too_many_services: 'too_many_services',
  discovery_unavailable: 'discovery_unavailable',
  no_instance: 'no_instances',
  upstream_timeout: 'timeout',
  upstream_unreachable: 'unreachable',
  upstream_error: 'upstream_error',
};

/** How a failed call ended: the answer it became, or our client having left. */
export function callOutcome(err: unknown): CallOutcome {
  if (err instanceof HttpError) return OUTCOME_BY_CODE[err.code] ?? 'error';
  return isAxiosError(err) && err.code === 'ERR_CANCELED' ? 'canceled' : 'error';
}

function describe(err: unknown): string {
  return errorCode(err) ?? (err as Error)?.message ?? 'unknown';
}

function upstreamError(err: unknown, service: string, inst: Instance, opts: CallerOptions, requestId: string): unknown {
  if (err instanceof HttpError || !isAxiosError(err)) return err;
  const kind = failureKind(err);
  if (err.code === 'ERR_CANCELED' && kind !== 'timeout') return err; // our client left; nothing to answer
  const target = { id: inst.id, address: inst.address, port: inst.port };
  const code = describe(err);
  opts.log.warn({ requestId, service, target: inst.id, failure: kind, err: code }, 'call failed');
  if (kind === 'timeout') {
    return new HttpError('upstream_timeout', `${service} did not answer within ${opts.timeoutMs} ms`, { service, target });
  }
  if (kind === 'connect' || kind === 'reset') {
    return new HttpError('upstream_unreachable', `could not reach ${service} (${code})`, { service, target });
  }
  return new HttpError('upstream_error', `bad answer from ${service}: ${err.message}`, { service, target });
}
