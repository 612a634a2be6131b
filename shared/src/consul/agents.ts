import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import Consul from 'consul';
import type { Logger } from 'pino';

/**
 * The Consul agents and the one HTTP layer to them: CONSUL_HTTP_ADDR's agents
 * and their failover, every endpoint the stack reads, one plain read, what a
 * failure means, what an answer's headers say, and the guard that keeps a
 * listener's bug from passing for Consul's; the blocking query on top of it is
 * blocking-query.ts. Nothing else calls the `consul` client.
 */

// ---------------------------------------------------------------- CONSUL_HTTP_ADDR

export interface ConsulAddress {
  host: string;
  port: number;
  secure: boolean;
  /** Normalised form for logs: http://host:port */
  url: string;
}

/**
 * Parses CONSUL_HTTP_ADDR: `host:port`, `http://host:port` or `https://host:port`,
 * or a comma-separated list of those (agents to fail over between, in order).
 * Throws with a message naming the bad entry.
 */
export function parseConsulAddrs(value: string): ConsulAddress[] {
  const entries = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (entries.length === 0) throw new Error('expected host:port or http://host:port');
  return entries.map(parseOne);
}

function parseOne(entry: string): ConsulAddress {
  const bad = (why: string) => new Error(`"${entry}" ${why}`);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(entry)?.[1]?.toLowerCase() ?? 'http';
  if (scheme !== 'http' && scheme !== 'https') throw new Error(`"${entry}": scheme must be http or https`);
  const rest = entry.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  if (rest.includes('@') || /[/?#]./.test(rest)) throw bad('must be just a host and port');
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::(\d{1,5}))?\/?$/i.exec(rest);
  const port = m?.[2] === undefined ? 8500 : Number(m[2]);
  if (!m || port < 1 || port > 65535) throw bad('is not host:port or http://host:port (port 1-65535)');
  const bracketed = m[1]!.toLowerCase();
  const host = bracketed.replace(/^\[(.*)\]$/, '$1');
  return { host, port, secure: scheme === 'https', url: `${scheme}://${bracketed}:${port}` };
}

// ---------------------------------------------------------------- what a failed call means

/**
 * What a failed Consul call means for discovery. Only trouble reaching
 * Consul moves the preference to the next agent: a 403 or a 400 is a
 * misconfiguration that every agent answers the same way, and a cluster
 * without a leader is the same cluster whichever agent we ask.
 */
export type ConsulErrorKind =
  /** No answer: refused, reset, timed out, or a 5xx from the agent. */
  | 'unreachable'
  /** The agent answered but the cluster has no leader (only non-stale reads see this). */
  | 'no-leader'
  /** 401/403: the ACL token (or its absence) does not allow the read. */
  | 'denied'
  /** Any other 4xx: a request Consul will never accept as sent (a malformed name, a proxy in the way). */
  | 'rejected';

export interface ConsulError {
  kind: ConsulErrorKind;
  status?: number;
  message: string;
  /** Worth retrying soon (with backoff). Misconfigurations are retried only slowly. */
  retryable: boolean;
  /** Worth trying the next agent in CONSUL_HTTP_ADDR. */
  failover: boolean;
}

export function classifyConsulError(err: unknown): ConsulError {
  const e = err as { message?: unknown; statusCode?: unknown; response?: { statusCode?: unknown } } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const raw = e?.statusCode ?? e?.response?.statusCode;
  const status = typeof raw === 'number' ? raw : undefined;
  if (/no cluster leader/i.test(message)) return { kind: 'no-leader', status, message, retryable: true, failover: false };
  if (status === 401 || status === 403) return { kind: 'denied', status, message, retryable: false, failover: false };
  // 429 is Consul's rate limit: back off, and another agent may well answer.
  if (status !== undefined && status >= 400 && status < 500 && status !== 429)
    return { kind: 'rejected', status, message, retryable: false, failover: false };
  return { kind: 'unreachable', status, message, retryable: true, failover: true };
}

/** A short, log- and health-friendly description: "403 Permission denied". */
export function describeConsulError(e: ConsulError): string {
  return e.status !== undefined && !e.message.startsWith(String(e.status)) ? `${e.status} ${e.message}` : e.message;
}

// ---------------------------------------------------------------- what an answer's headers say

/** What Consul said about its own state alongside an answer. */
export interface QueryMeta {
  agent: string;
  /** X-Consul-Index: the raft index of the answer (0 when absent or unreadable). */
  index: bigint;
  /** X-Consul-KnownLeader: false while the answering server knows no leader. */
  knownLeader: boolean;
  /** X-Consul-LastContact: ms since the answering server last heard from the leader. */
  lastContactMs: number;
  /** True when the answer came from a read without ?stale (the leader's view). */
  fresh: boolean;
  at: number;
}

export interface Response {
  headers: Record<string, string | string[] | undefined>;
}

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function readMeta(res: Response, agent: string, fresh = false): QueryMeta {
  let index = 0n;
  try {
    index = BigInt(header(res, 'x-consul-index') ?? '0');
  } catch {
    index = 0n;
  }
  const lastContact = Number(header(res, 'x-consul-lastcontact') ?? 0);
  return {
    agent,
    index: index < 0n ? 0n : index,
    knownLeader: header(res, 'x-consul-knownleader') !== 'false',
    lastContactMs: Number.isFinite(lastContact) && lastContact > 0 ? lastContact : 0,
    fresh,
    at: Date.now(),
  };
}

// ---------------------------------------------------------------- the agents and every endpoint

// Idle keep-alive sockets kept per agent after a burst of reads; the rest are
// closed, so discovery at rest holds its long polls and little else.
const IDLE_SOCKETS = 2;

/** One HTTP call to Consul through a client, with the query options given (stale, index, wait, timeout, ctx). */
export type Call = (client: Consul, opts: Record<string, unknown>) => Promise<unknown>;

/**
 * Every Consul endpoint the stack reads, in one place: the only code that
 * calls the `consul` client. Reads go through readOnce or a BlockingQuery
 * (both below), which add the agent, the timeout, ?stale and
 * the failover.
 */
export const endpoints = {
  /** /v1/catalog/services */
  catalogServices: (): Call => (client, o) => client.catalog.service.list(o as never),
  /** /v1/health/state/any, with a bexpr filter (asked for on every request) */
  healthState:
    (filter?: () => string): Call =>
    (client, o) =>
      client.health.state({ ...o, state: 'any', ...(filter ? { filter: filter() } : {}) } as never),
  /** /v1/health/service/<name>: all entries, not ?passing (the checks tell a dead instance from a lost agent) */
  healthService: (name: string): Call => (client, o) => client.health.service({ ...o, service: name } as never),
  /** /v1/catalog/nodes */
  catalogNodes: (): Call => (client, o) => client.catalog.node.list(o as never),
  /** /v1/catalog/service/<name> */
  serviceNodes: (name: string): Call => (client, o) => client.catalog.service.nodes({ ...o, service: name } as never),
};

/** Endpoints whose answers are compared as bytes, not parsed: read with readRaw. */
export const rawEndpoints = {
  /** /v1/agent/services: the agent's own registrations (agent-hint.ts) */
  agentServices: '/v1/agent/services',
  /** /v1/catalog/node/<node>: a node's services (the node scan, node-answers.ts) */
  nodeServices: (node: string) => `/v1/catalog/node/${encodeURIComponent(node)}`,
};

/**
 * One consul client per agent in CONSUL_HTTP_ADDR. Every query asks for the
 * preferred agent; a failure reaching it moves the preference to the next one,
 * so all queries fail over together instead of each finding out on its own.
 */
export class ConsulAgents {
  readonly clients: Consul[];
  /** Each client's connection pool, shared by readRaw. */
  readonly #pools: http.Agent[];
  #preferred = 0;

  /** `token`: the ACL token sent on every call (X-Consul-Token); none means Consul's anonymous token. */
  constructor(
    readonly addresses: readonly ConsulAddress[],
    readonly token?: string,
  ) {
    if (addresses.length === 0) throw new Error('ConsulAgents needs at least one address');
    this.#pools = addresses.map((a) => new (a.secure ? https : http).Agent({ keepAlive: true, maxFreeSockets: IDLE_SOCKETS }));
    this.clients = addresses.map(
      (a, i) => new Consul({ host: a.host, port: a.port, secure: a.secure, agent: this.#pools[i], ...(token ? { defaults: { token } } : {}) }),
    );
  }

  current(): { client: Consul; index: number; address: ConsulAddress; pool: http.Agent } {
    const index = this.#preferred;
    return { client: this.clients[index]!, index, address: this.addresses[index]!, pool: this.#pools[index]! };
  }

  /** Called when a request to agent `index` failed to reach it: prefer the next agent. */
  reportFailure(index: number): void {
    if (index === this.#preferred) this.#preferred = (index + 1) % this.clients.length;
  }

  close(): void {
    for (const c of this.clients) c.destroy();
  }
}

/** Consul's raft status reads (no ACL token needed), for the gateway's dashboard. */
export interface ConsulStatusReads {
  /** /v1/status/leader: "ip:port" of the raft leader, or "" without one. */
  leader(): Promise<unknown>;
  /** /v1/status/peers: the raft peers. */
  peers(): Promise<unknown>;
}

/** The status reads through the preferred agent (at the time of each read), each bounded by `timeoutMs`. */
export function consulStatus(agents: ConsulAgents, timeoutMs = 2_000): ConsulStatusReads {
  return {
    leader: () => agents.current().client.status.leader({ timeout: timeoutMs } as never),
    peers: () => agents.current().client.status.peers({ timeout: timeoutMs } as never),
  };
}

// ---------------------------------------------------------------- one plain read

// A plain read answers in milliseconds; past this the agent is stuck.
const READ_TIMEOUT_MS = 5_000;

/** A failed read, with what it means for discovery. */
export class ReadError extends Error {
  constructor(
    readonly consul: ConsulError,
    readonly agent: string,
  ) {
    super(consul.message);
  }
}

/**
 * One non-blocking read from the preferred agent: ?stale by default (any
 * server answers), or `fresh` (no ?stale: the leader answers, so a removal a
 * stale answer suggested can be confirmed). A failure reaching the agent moves
 * the preference to the next one, as a blocking query's would.
 */
export async function readOnce<T>(agents: ConsulAgents, call: Call, fresh = false): Promise<{ body: T; meta: QueryMeta }> {
  const { client, index, address } = agents.current();
  try {
    const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
    const [res, body] = (await call(client, { ...(fresh ? {} : { stale: true }), timeout: READ_TIMEOUT_MS, ctx })) as [Response, T];
    return { body, meta: readMeta(res, address.url, fresh) };
  } catch (err) {
    const e = classifyConsulError(err);
    if (e.failover) agents.reportFailure(index);
    throw new ReadError(e, address.url);
  }
}

/**
 * readOnce for an answer that is compared rather than read (the agent's
 * registrations, agent-hint.ts; a node's services, node-answers.ts): the
 * body's bytes, not parsed, through the same connections, token, timeout and
 * failover. `path`: one of rawEndpoints; `fresh` as readOnce's.
 */
export async function readRaw(agents: ConsulAgents, path: string, fresh = false): Promise<{ body: Buffer; meta: QueryMeta }> {
  const { index, address, pool } = agents.current();
  try {
    const res = await getRaw(address, pool, agents.token, fresh ? path : `${path}${path.includes('?') ? '&' : '?'}stale=1`);
    return { body: res.body, meta: readMeta(res, address.url, fresh) };
  } catch (err) {
    const e = classifyConsulError(err);
    if (e.failover) agents.reportFailure(index);
    throw new ReadError(e, address.url);
  }
}

/** One GET; a status of 400 or more rejects with it and Consul's message (its body's first line), as the client's errors do. */
function getRaw(address: ConsulAddress, pool: http.Agent, token: string | undefined, path: string): Promise<Response & { body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = (address.secure ? https : http).get(
      { host: address.host, port: address.port, path, agent: pool, timeout: READ_TIMEOUT_MS, headers: token ? { 'x-consul-token': token } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve({ headers: res.headers, body });
          const said = body.toString('utf8', 0, Math.min(body.length, 200)).split('\n')[0]!.trim();
          reject(Object.assign(new Error(said || http.STATUS_CODES[status] || `status ${status}`), { statusCode: status }));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${READ_TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------- a listener's bug is not Consul's fault

/**
 * A listener's bug is not Consul's fault: `what` (a listener, the handling of
 * an answer) threw. Logged at error level with `fields` and the error, and
 * never counted as a Consul failure (no failover, no backoff, no retry).
 */
export function logBug(log: Logger, what: string, fields: Record<string, unknown>, err: unknown): void {
  log.error({ ...fields, err }, `bug: ${what} threw; consul is not at fault`);
}

/** Runs `fn` (a listener, the handling of an answer); what it throws is logged by logBug. Its result, or `fallback` if it threw. */
export function guard<T>(log: Logger, what: string, fields: Record<string, unknown>, fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch (err) {
    logBug(log, what, fields, err);
    return fallback;
  }
}

/**
 * Emits on behalf of a Consul query, so that what a listener does can never
 * pass for a Consul problem: an 'error' nobody listens to is logged instead
 * of crashing the process, and a listener that throws is logged as the bug it
 * is, while the query carries on as if nothing happened.
 */
export function deliver(emitter: EventEmitter, log: Logger, query: string, event: string, ...args: unknown[]): void {
  if (event === 'error' && emitter.listenerCount('error') === 0) {
    const [err, agent] = args as [{ message?: string } | undefined, string | undefined];
    log.warn({ query, agent, err: err?.message }, 'consul query failed');
    return;
  }
  guard(log, `a listener of the ${query} query`, { query, event }, () => emitter.emit(event, ...args), false);
}
