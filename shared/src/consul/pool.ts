import http from 'node:http';
import https from 'node:https';
import Consul from 'consul';
import type { ConsulAddress } from './addresses.js';

// Idle keep-alive sockets kept per agent after a burst of reads; the rest are
// closed, so discovery at rest holds its long polls and little else.
const IDLE_SOCKETS = 2;

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
