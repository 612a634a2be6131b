// Helpers of scripts/scale-discovery.mjs: a Consul agent of its own on free loopback ports, the
// watch that timestamps Consul's commits, the child's message inbox, and the figures' summary.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const now = () => performance.timeOrigin + performance.now(); // sub-ms, comparable across processes
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Messages from the child, awaited by predicate. */
export class Inbox {
  #queue = [];
  #waiters = [];
  constructor(child) {
    child.on('message', (m) => {
      const w = this.#waiters.find((x) => x.pred(m));
      if (w) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(m);
      } else this.#queue.push(m);
    });
    child.on('exit', (code) => {
      for (const w of this.#waiters.splice(0)) w.reject(new Error(`child exited (${code})`));
    });
  }
  drop(pred) {
    this.#queue = this.#queue.filter((m) => !pred(m));
  }
  next(pred, timeoutMs) {
    const i = this.#queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.#queue.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (m) => (clearTimeout(timer), resolve(m)), reject };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error('timeout'));
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }
}

export function round(x, d = 1) {
  return Math.round(x * 10 ** d) / 10 ** d;
}

/**
 * When Consul announces a write: blocking queries of our own on the catalog's names and on the
 * failing checks (a registration moves the first, a check write the second), each answer
 * timestamped. A change's commit is the first announcement after its call started, so
 * "from the commit" leaves out the time Consul takes to make the write (the agent's local state,
 * its sync to the servers, the raft commit) and counts what discovery is answerable for.
 */
export class CommitWatch {
  #wakes = [];
  #agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  #stopped = false;

  constructor(port) {
    for (const path of ['/v1/catalog/services', '/v1/health/state/critical']) void this.#loop(port, path);
  }

  async #loop(port, path) {
    let index = 0;
    while (!this.#stopped) {
      const res = await new Promise((resolve) => {
        const req = http.request({ host: '127.0.0.1', port, path: `${path}?index=${index}&wait=30s`, agent: this.#agent }, (r) => {
          r.resume();
          r.on('end', () => resolve({ at: now(), index: Number(r.headers['x-consul-index'] ?? 0) }));
        });
        req.on('error', () => resolve(null));
        req.end();
      });
      if (this.#stopped) return;
      if (!res) {
        await sleep(100);
        continue;
      }
      if (index > 0 && res.index > index) this.#wakes.push(res.at);
      index = res.index > 0 ? res.index : 1;
    }
  }

  /** The first announcement at or after `t`, waiting up to a second for it. */
  async after(t) {
    for (let k = 0; k < 100; k++) {
      const w = this.#wakes.find((at) => at >= t);
      if (w !== undefined) return w;
      await sleep(10);
    }
    return undefined;
  }

  stop() {
    this.#stopped = true;
    this.#agent.destroy();
  }
}

export function summary(xs) {
  const ok = xs.filter(Number.isFinite).sort((a, b) => a - b);
  const q = (p) => (ok.length ? round(ok[Math.min(ok.length - 1, Math.ceil(p * ok.length) - 1)], 1) : null);
  return { n: xs.length, missed: xs.length - ok.length, median: q(0.5), p90: q(0.9), p99: q(0.99), max: ok.length ? round(ok[ok.length - 1]) : null };
}

export async function inParallel(items, n, fn) {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++]);
    }),
  );
}

export async function waitFor(what, fn, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    await sleep(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function request(agent, port, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function consulBin() {
  return process.env.CONSUL_BIN || 'consul';
}

function hasGrpcTls() {
  const m = /v1\.(\d+)\./.exec(consulVersion());
  return m !== null && Number(m[1]) >= 14;
}

export function consulVersion() {
  const r = spawnSync(consulBin(), ['version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`no consul binary (tried "${consulBin()}"); set CONSUL_BIN`);
  return r.stdout.split('\n')[0].replace('Consul ', '');
}

export async function startConsul(agentMode = 'server') {
  const port = await freePort();
  const [lan, wan, server] = [await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'scale-consul-'));
  let output = '';
  // -dev pretty-prints every answer (agent/http.go marshalJSON): a node of 2,000 services is 1.8 MB
  // and costs Consul about twice as long to write. A real agent answers compact JSON, so by default
  // this runs a one-server agent configured as one would deploy it; 'dev' runs -dev.
  const mode = agentMode === 'dev' ? ['-dev'] : ['-server', '-bootstrap-expect', '1', '-ui=false'];
  const proc = spawn(consulBin(), ['agent', ...mode, '-bind', '127.0.0.1', '-client', '127.0.0.1', '-http-port', String(port),
    '-dns-port', '-1', '-grpc-port', '-1', '-serf-lan-port', String(lan), '-serf-wan-port', String(wan),
    '-server-port', String(server), '-node', `scale-${port}`, '-log-level', 'warn', '-data-dir', dir,
    // 1.14+ also listens for gRPC over TLS on 8503 in dev mode: off, so two runs (or a test agent) can't collide.
    ...(hasGrpcTls() ? ['-hcl', 'ports { grpc_tls = -1 }'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  const take = (b) => (output = (output + b).slice(-5000));
  proc.stdout.on('data', take);
  proc.stderr.on('data', take);
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGKILL');
      await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(5000)]);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('consul to elect itself', async () => {
      if (proc.exitCode !== null) throw new Error(`consul exited: ${output}`);
      const res = await fetch(`http://127.0.0.1:${port}/v1/status/leader`);
      return res.ok && (await res.text()).includes(':');
    }, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, stop, node: `scale-${port}` };
}


export function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}

export function clockTicks() {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  return Number(r.stdout.trim()) || 100;
}
