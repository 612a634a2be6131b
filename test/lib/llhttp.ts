import http from 'node:http';
import net from 'node:net';
import { createRequire } from 'node:module';

// llhttp, Node's own HTTP parser, as the reference: through node:http for
// what a Node client does with an instance's bytes, and bare (the parser
// node:http uses, from node's `_http_common`) to read the gateway's answers
// off a raw client connection byte for byte.
const { HTTPParser } = createRequire(import.meta.url)('_http_common') as {
  HTTPParser: {
    new (): LlhttpParser;
    RESPONSE: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
    kOnExecute: number;
  };
};
interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  execute(b: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  [k: number]: unknown;
}

/** What node:http made of an instance's answer. */
export interface OracleResult {
  /** The final head was delivered (a 101 counts as no head: node:http hands the socket over). */
  headSeen: boolean;
  /** The whole message was read (llhttp's message-complete); false: refused, broken or still waiting. */
  accepted: boolean;
  status: number;
  body: Buffer;
  /** What ended it when not accepted: an error code, 'upgrade', 'aborted' or 'no end within N ms'. */
  why: string;
}

/** Sends `method path` to 127.0.0.1:port with node:http (no agent) and reports what it made of the answer. */
export function oracle(port: number, method: string, path: string, waitMs: number): Promise<OracleResult> {
  return new Promise((resolve) => {
    const out: OracleResult = { headSeen: false, accepted: false, status: 0, body: Buffer.alloc(0), why: '' };
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      out.why = out.accepted ? '' : why;
      out.body = Buffer.concat(chunks);
      req.destroy();
      resolve({ ...out });
    };
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false });
    const timer = setTimeout(() => done(`no end within ${waitMs} ms`), waitMs);
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      done('upgrade');
    });
    // Before the head, an error is llhttp refusing the answer. After it, only the response's own
    // end counts: bytes after a whole response make node:http report an error on the request
    // (and close), but the response stands and still ends.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (!out.headSeen) done(err.code ?? err.message);
    });
    req.on('response', (res) => {
      out.headSeen = true;
      out.status = res.statusCode ?? 0;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => undefined);
      res.on('end', () => {
        out.accepted = res.complete;
        done('incomplete');
      });
      res.on('close', () => setImmediate(() => done(res.complete ? 'incomplete' : 'aborted')));
    });
    req.end();
  });
}

/** One response as llhttp read it off the gateway's client connection. */
export interface ClientMessage {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  keepAlive: boolean;
}

/**
 * A raw client connection to the gateway whose answers are read by llhttp,
 * one message after another: whatever bytes the gateway sends, a second
 * request on the connection can only get what llhttp reads as the next
 * response, as any HTTP/1.1 client (or a front proxy pooling connections)
 * would.
 */
export class ClientConn {
  readonly socket: net.Socket;
  readonly messages: ClientMessage[] = [];
  /** A parse error, or the connection closed: no more messages. */
  ended: string | null = null;
  #parser: LlhttpParser;
  #methods: string[] = [];
  #current: { status: number; headers: string[]; body: Buffer[]; keepAlive: boolean } | null = null;
  #wake: (() => void) | null = null;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    const p = new HTTPParser();
    p.initialize(HTTPParser.RESPONSE, {}, 0, 0);
    p[HTTPParser.kOnHeaders] = (h: string[]) => this.#current?.headers.push(...h);
    p[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, headers: string[] | undefined, _m: unknown, _u: unknown, status: number, _sm: unknown, _up: unknown, keepAlive: boolean) => {
      const prior = this.#current?.headers ?? [];
      this.#current = { status, headers: [...prior, ...(headers ?? [])], body: [], keepAlive };
      if (status >= 100 && status < 200) return 0;
      // As node:http: no body for a HEAD answer or a 304, whatever the head says.
      return this.#methods[0] === 'HEAD' || status === 304 ? 1 : 0;
    };
    p[HTTPParser.kOnBody] = (b: Buffer) => this.#current?.body.push(Buffer.from(b));
    p[HTTPParser.kOnMessageComplete] = () => {
      const c = this.#current;
      this.#current = null;
      if (!c || (c.status >= 100 && c.status < 200)) return;
      this.#methods.shift();
      const headers: Record<string, string> = {};
      for (let i = 0; i < c.headers.length; i += 2) headers[c.headers[i]!.toLowerCase()] = c.headers[i + 1]!;
      this.messages.push({ status: c.status, headers, body: Buffer.concat(c.body), keepAlive: c.keepAlive });
      this.#wake?.();
    };
    p[HTTPParser.kOnExecute] = () => undefined;
    this.#parser = p;
    this.socket.on('data', (d) => {
      if (this.ended) return;
      const r = this.#parser.execute(d);
      if (r instanceof Error) this.#end(`parse error ${(r as NodeJS.ErrnoException).code}`);
    });
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.#end(err.code ?? err.message));
    this.socket.on('close', () => {
      if (!this.ended) {
        const r = this.#parser.finish();
        this.#end(r instanceof Error ? `closed mid-response (${(r as NodeJS.ErrnoException).code})` : 'closed');
      }
    });
  }

  #end(why: string): void {
    if (!this.ended) this.ended = why;
    this.#wake?.();
  }

  /** Writes requests (several at once: a pipelining client). */
  send(reqs: Array<{ method: string; path: string }>): void {
    let out = '';
    for (const r of reqs) {
      this.#methods.push(r.method);
      out += `${r.method} ${r.path} HTTP/1.1\r\nHost: gateway.test\r\n\r\n`;
    }
    this.socket.write(out, 'latin1');
  }

  /** The n-th message (0-based), or null once the connection ended without it or `ms` passed ('hang'). */
  async message(n: number, ms: number): Promise<ClientMessage | 'hang' | null> {
    const deadline = Date.now() + ms;
    while (this.messages.length <= n) {
      if (this.ended) return null;
      const left = deadline - Date.now();
      if (left <= 0) return 'hang';
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.#wake = null;
    }
    return this.messages[n]!;
  }

  close(): void {
    this.socket.destroy();
    this.#parser.close();
  }
}
