import net from 'node:net';
import type { UpstreamClient } from './client.js';
import { Connection } from './connection.js';

/** The sockets to one instance (host:port). */
export class OriginPool {
  readonly idle: Connection[] = [];
  readonly all = new Set<Connection>();

  constructor(
    readonly client: UpstreamClient,
    readonly key: string,
    readonly host: string,
    readonly port: number,
  ) {}

  /** The most recently used idle socket still fresh enough (LIFO keeps few sockets warm), or a new one. */
  acquire(): Connection {
    const now = performance.now();
    for (let c = this.idle.pop(); c; c = this.idle.pop()) {
      if (!c.dead && now - c.idleSince < c.idleLimitMs) return c;
      c.close();
    }
    const c = new Connection(net.connect({ host: this.host, port: this.port }), this);
    this.all.add(c);
    return c;
  }

  release(c: Connection): void {
    c.idleSince = performance.now();
    this.idle.push(c);
  }

  remove(c: Connection): void {
    this.all.delete(c);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.client.closing) this.client.checkClosed();
  }

  /** Closes the sockets idle past their limit. */
  sweep(now: number): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const c = this.idle[i]!;
      if (now - c.idleSince >= c.idleLimitMs) c.close();
    }
  }
}
