import net from 'node:net';

/** What a hostile instance answers to one request, byte for byte. */
export interface Script {
  /** The bytes (one char per byte, latin1), in pieces written one after another. */
  pieces: string[];
  /** After the last piece: close the connection (FIN), or keep it open. */
  then: 'close' | 'keep';
  /** One byte per write, each on its own turn of the event loop (a byte per read, on loopback). */
  bytewise?: boolean;
}

/** One connection from the gateway (or the oracle), as the instance saw it. */
export interface UpstreamConn {
  socket: net.Socket;
  closed: boolean;
  /** Request targets, in order. */
  targets: string[];
  /** Set once a script ran on it: the connection is no longer in a known state. */
  scripted: string | null;
  /** What happened on it, in order, for a failing case's report. */
  events: string[];
}

const wait = () => new Promise<void>((r) => setImmediate(r));

/**
 * A raw TCP "instance" registered in Consul like any other, answering
 * `/case/<id>` with the bytes of a script, `/ok/<token>` with a plain valid
 * response naming the token, and `/health` for Consul's check. It records
 * which connection carried each case and every request each connection got,
 * so a test can tell whether the gateway closed or reused a connection.
 */
export class HostileUpstream {
  server!: net.Server;
  port = 0;
  readonly scripts = new Map<string, Script>();
  /** The connection each case's request came on (the gateway's, not the oracle's). */
  readonly caseConns = new Map<string, UpstreamConn>();
  readonly conns = new Set<UpstreamConn>();

  async start(): Promise<this> {
    this.server = net.createServer((socket) => this.#accept(socket));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Open connections that carried a case. */
  openCaseConns(): UpstreamConn[] {
    return [...this.caseConns.values()].filter((c) => !c.closed);
  }

  #accept(socket: net.Socket): void {
    const conn: UpstreamConn = { socket, closed: false, targets: [], scripted: null, events: [`open :${socket.remotePort}`] };
    this.conns.add(conn);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('end', () => conn.events.push('peer end'));
    socket.on('close', () => {
      conn.events.push('closed');
      conn.closed = true;
      if (!conn.scripted) this.conns.delete(conn);
    });
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      // The gateway's requests here never carry a body: a request ends at its blank line.
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const line = buf.slice(0, buf.indexOf('\r\n'));
        buf = buf.slice(end + 4);
        const target = line.split(' ')[1] ?? '';
        conn.targets.push(target);
        conn.events.push(`request ${line}`);
        // Answered even after a script ran on the connection: if the gateway wrongly reused it, the
        // script's leftover bytes reach the next request, which is what a test must be able to see.
        void this.#answer(conn, target, line.startsWith('HEAD '));
      }
    });
  }

  async #answer(conn: UpstreamConn, target: string, head: boolean): Promise<void> {
    const { socket } = conn;
    const m = /^\/case\/([^/?]+)(\?oracle)?/.exec(target);
    if (!m) {
      const body = target === '/health' ? 'ok' : target.startsWith('/ok/') ? `ok ${target.slice(4)}` : 'no such path';
      const status = target === '/health' || target.startsWith('/ok/') ? '200 OK' : '404 Not Found';
      socket.write(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${head ? '' : body}`, 'latin1');
      return;
    }
    const id = m[1]!;
    const script = this.scripts.get(id);
    conn.scripted = id;
    if (!m[2]) this.caseConns.set(id, conn);
    if (!script) {
      conn.events.push('no script: 500 and end');
      socket.end('HTTP/1.1 500 No Script\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    // A pause between pieces, never after the last: a close must follow the last byte at once, or
    // the gateway may fairly reuse a connection whose close is still to come (the usual keep-alive race).
    const bytes = script.bytewise ? [...script.pieces.join('')] : script.pieces;
    for (let i = 0; i < bytes.length; i++) {
      if (socket.destroyed) return;
      if (i > 0) await (script.bytewise ? wait() : new Promise((r) => setTimeout(r, 5)));
      socket.write(bytes[i]!, 'latin1');
    }
    conn.events.push(`script ${id} written${script.then === 'close' ? ', end' : ''}`);
    if (script.then === 'close' && !socket.destroyed) socket.end();
  }
}
