import { runCase, type DiffEnv, type HostileCase, type Mode } from './differential.js';
import type { Script } from './hostile-upstream.js';

/** mulberry32: a small seeded generator, so a case is rebuilt from (seed, index) alone. */
function rng(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Valid answers the mutations start from. */
const SEEDS: Array<{ method: 'GET' | 'HEAD'; raw: string }> = [
  { method: 'GET', raw: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello' },
  { method: 'GET', raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n6;q="x y"\r\n world\r\n0\r\nX-T: 1\r\n\r\n' },
  { method: 'GET', raw: 'HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n' },
  { method: 'GET', raw: 'HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\nuntil the close' },
  { method: 'GET', raw: 'HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n' },
  { method: 'GET', raw: 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 5\r\n\r\n' },
  { method: 'HEAD', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n' },
  { method: 'GET', raw: 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' },
  { method: 'GET', raw: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n' },
  { method: 'GET', raw: 'HTTP/1.1 404 Not Found\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nConnection: x-secret\r\nX-Secret: s\r\nContent-Length: 3\r\n\r\nnope' },
  { method: 'GET', raw: 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbye.' },
];

const BYTES = ['\r', '\n', '\x00', ' ', '\t', ':', ';', ',', '=', '"', '\\', '0', '1', '5', '9', 'a', 'f', 'x', '\x7f', '\x80', '\xff', '\x01', '\x0b'];
const LINES = [
  'Content-Length: 5', 'Content-Length: 0', 'Content-Length: 99', 'Content-Length: 5, 5', 'Content-Length: 5\t',
  'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip', 'Transfer-Encoding: ', 'Transfer-Encoding: chunked, gzip', 'Transfer-Encoding: gzip, chunked',
  'Connection: close', 'Connection: keep-alive', 'Connection: content-length', 'Connection: x-a, transfer-encoding',
  ' folded', '\tfolded: x', 'X-N:\x00', 'Trailer: X-T', 'X-Long: ' + 'z'.repeat(300),
];
const TAILS = ['HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL', 'garbage', '\r\n', '0\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Le'];

/** One mutation of `s`. */
function mutate(s: string, r: () => number): string {
  const pick = <T>(a: readonly T[]) => a[Math.floor(r() * a.length)]!;
  const at = () => Math.floor(r() * (s.length + 1));
  // Truncation can leave nothing: start again from one byte.
  if (s.length === 0) return pick(BYTES);
  switch (Math.floor(r() * 9)) {
    case 0: {
      const i = Math.floor(r() * s.length);
      return s.slice(0, i) + pick(BYTES) + s.slice(i + 1);
    }
    case 1: {
      const i = at();
      return s.slice(0, i) + pick(BYTES) + s.slice(i);
    }
    case 2: {
      const i = Math.floor(r() * s.length);
      return s.slice(0, i) + s.slice(i + 1 + Math.floor(r() * 3));
    }
    case 3: {
      // A whole field line inserted after the status line (or after another line).
      const lines = s.split('\r\n');
      const i = 1 + Math.floor(r() * Math.max(1, lines.indexOf('') > 0 ? lines.indexOf('') - 1 : 1));
      lines.splice(i, 0, pick(LINES));
      return lines.join('\r\n');
    }
    case 4: {
      const lines = s.split('\r\n');
      const i = Math.floor(r() * lines.length);
      lines.splice(i, 0, lines[i]!);
      return lines.join('\r\n');
    }
    case 5:
      return s.slice(0, at());
    case 6:
      return s + pick(TAILS);
    case 7: {
      const i = Math.floor(r() * s.length);
      const c = s[i]!;
      return s.slice(0, i) + (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()) + s.slice(i + 1);
    }
    default: {
      // A digit changed: lengths, chunk sizes, the status code.
      const digits = [...s.matchAll(/[0-9]/g)].map((m) => m.index);
      if (digits.length === 0) return s;
      const i = pick(digits);
      return s.slice(0, i) + String(Math.floor(r() * 10)) + s.slice(i + 1);
    }
  }
}

/** Case `index` of the run seeded `seed`: a seed answer, 1-3 mutations, how it is written and what follows. */
function fuzzCase(seed: number, index: number): HostileCase {
  const r = rng((seed ^ Math.imul(index + 1, 0x9e3779b9)) | 0);
  const base = SEEDS[Math.floor(r() * SEEDS.length)]!;
  let raw = base.raw;
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) raw = mutate(raw, r);
  // Most instances close after their bytes (an answer that never ends costs the oracle's wait).
  const then: Script['then'] = r() < 0.8 ? 'close' : 'keep';
  const split = r();
  let script: Script;
  if (split < 0.1) script = { pieces: [raw], then, bytewise: true };
  else if (split < 0.3 && raw.length > 2) {
    const cut = 1 + Math.floor(r() * (raw.length - 1));
    script = { pieces: [raw.slice(0, cut), raw.slice(cut)], then };
  } else script = { pieces: [raw], then };
  return { cls: 'fuzz', name: `fuzz seed ${seed} case ${index}`, method: base.method, script };
}

export interface FuzzResult {
  cases: number;
  failures: string[];
  ms: number;
}

/**
 * Runs fuzz cases on the workers until `seconds` pass: each through the gateway and node:http
 * with runCase's rules, alternating a kept-alive second request and a pipelining client.
 * Prints the seed and the count; a failure names its case index (rebuild it with fuzzCase).
 */
export async function runFuzz(
  envs: DiffEnv[],
  o: { seed: number; seconds: number; log: (s: string) => void; maxFailures?: number; gatewayLog?: (requestId: string) => string },
): Promise<FuzzResult> {
  const t0 = Date.now();
  const end = t0 + o.seconds * 1000;
  const failures: string[] = [];
  let next = 0;
  let done = 0;
  let lastLog = t0;
  o.log(`upstream fuzz: seed ${o.seed}, ${o.seconds} s, ${envs.length} workers`);
  await Promise.all(envs.map(async (env) => {
    while (Date.now() < end && failures.length < (o.maxFailures ?? 20)) {
      const index = next++;
      const c = fuzzCase(o.seed, index);
      const mode: Mode = index % 2 === 0 ? 'keepalive' : 'pipelined';
      const res = await runCase(env, c, `f${o.seed}-${index}`, mode);
      done++;
      if (res.violations.length) {
        const logs = res.requestId && o.gatewayLog ? `\n    gateway log: ${o.gatewayLog(res.requestId)}` : '';
        failures.push(`seed ${o.seed} case ${index} (${mode}, ${c.method} ${JSON.stringify(c.script)}; llhttp: ${res.oracle.accepted ? `read ${res.oracle.status}` : `refused: ${res.oracle.why}`}; gateway: ${res.gateway})\n    ${res.violations.join('\n    ')}${logs}`);
      }
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        o.log(`  ${done} cases, ${Math.round((Date.now() - t0) / 1000)} s`);
      }
    }
  }));
  const ms = Date.now() - t0;
  o.log(`upstream fuzz: seed ${o.seed}: ${done} cases in ${(ms / 1000).toFixed(1)} s, ${failures.length} failing`);
  return { cases: done, failures, ms };
}
