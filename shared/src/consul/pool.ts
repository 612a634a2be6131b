import http from 'node:http';
import https from 'node:https';
import Consul from 'consul';
import type { ConsulAddress } from './addresses.js';

// Idle keep-alive sockets kept per agent after a burst of reads; the rest are
// closed, so discovery at rest holds its long polls and little else.
const IDLE_SOCKETS = 2;

/** One HTTP call to Consul through a client, with the query options given (stale, index, wait, timeout, ctx). */
export type Call = (client: Consul, opts: Record<string, unknown>) => Promise<unknown>;

/**
 * Every Consul endpoint the stack reads, in one place: the only code that
 * calls the `consul` client. Reads go through readOnce (read.ts) or a
 * BlockingQuery (blocking.ts), which add the agent, the timeout, ?stale and
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
  /** /v1/catalog/node/<node> */
  nodeServices: (node: string): Call => (client, o) => client.catalog.node.services({ ...o, node } as never),
  /** /v1/catalog/service/<name> */
  serviceNodes: (name: string): Call => (client, o) => client.catalog.service.nodes({ ...o, service: name } as never),
};

/**
 * One consul client per agent in CONSUL_HTTP_ADDR. Every query asks for the
 * preferred agent; a failure reaching it moves the preference to the next one,
 * so all queries fail over together instead of each finding out on its own.
 */
export class ConsulPool {
  readonly clients: Consul[];
  #preferred = 0;

  /** `token`: the ACL token sent on every call (X-Consul-Token); none means Consul's anonymous token. */
  constructor(readonly addresses: readonly ConsulAddress[], token?: string) {
    if (addresses.length === 0) throw new Error('ConsulPool needs at least one address');
    this.clients = addresses.map((a) => {
      const agent = new (a.secure ? https : http).Agent({ keepAlive: true, maxFreeSockets: IDLE_SOCKETS });
      return new Consul({ host: a.host, port: a.port, secure: a.secure, agent, ...(token ? { defaults: { token } } : {}) });
    });
  }

  current(): { client: Consul; index: number; address: ConsulAddress } {
    const index = this.#preferred;
    return { client: this.clients[index]!, index, address: this.addresses[index]! };
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
export function consulStatus(pool: ConsulPool, timeoutMs = 2_000): ConsulStatusReads {
  return {
    leader: () => pool.current().client.status.leader({ timeout: timeoutMs } as never),
    peers: () => pool.current().client.status.peers({ timeout: timeoutMs } as never),
  };
}
