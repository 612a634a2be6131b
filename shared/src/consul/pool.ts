import Consul from 'consul';
import type { ConsulAddress } from './addresses.js';

/**
 * One consul client per agent in CONSUL_HTTP_ADDR. Every watch asks for the
 * preferred agent; a failure on it moves the preference to the next one, so
 * all watches fail over together instead of each finding out on its own.
 */
export class ConsulPool {
  readonly clients: Consul[];
  #preferred = 0;

  constructor(readonly addresses: readonly ConsulAddress[]) {
    if (addresses.length === 0) throw new Error('ConsulPool needs at least one address');
    this.clients = addresses.map((a) => new Consul({ host: a.host, port: a.port, secure: a.secure }));
  }

  current(): { client: Consul; index: number; address: ConsulAddress } {
    const index = this.#preferred;
    return { client: this.clients[index]!, index, address: this.addresses[index]! };
  }

  /** Called when a request to agent `index` failed: prefer the next agent. */
  reportFailure(index: number): void {
    if (index === this.#preferred) this.#preferred = (index + 1) % this.clients.length;
  }

  close(): void {
    for (const c of this.clients) c.destroy();
  }
}
