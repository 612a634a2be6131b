// One wrk run (`wrk --latency`), parsed: req/s, p50/p99, requests, errors.
import { execFileSync } from 'node:child_process';
import { start } from './proc.mjs';

export function wrkVersion(bin) {
  try {
    // `wrk -v` prints its version and exits 1.
    execFileSync(bin, ['-v'], { encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    const m = /wrk\s+(?:debian\/)?(\S+)/.exec(`${err.stdout ?? ''}${err.stderr ?? ''}`);
    if (m) return m[1];
  }
  return 'unknown';
}

/** Runs wrk for `duration` s; killed if it overruns by 30 s, so a run is always bounded. */
export async function runWrk({ bin, url, duration, connections, cpu }) {
  const args = ['-t1', `-c${connections}`, `-d${duration}s`, '--latency', '--timeout', '5s', url];
  const child = start('wrk', bin, args, { cpu, pipe: true });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), (duration + 30) * 1000);
  const code = await new Promise((r) => {
    child.on('exit', (c, s) => r(c ?? s));
    child.on('error', (e) => r(e.message));
  });
  clearTimeout(timer);
  if (code !== 0) throw new Error(`wrk ${url} failed (${code}): ${err.trim() || out.trim()}`);
  return { ...parseWrk(out), raw: out };
}

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const toMs = (v, unit) => Number(v) * UNIT_MS[unit];

export function parseWrk(text) {
  const pct = (p) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(text);
    return m ? toMs(m[1], m[2]) : null;
  };
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m|h)/.exec(text);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const requests = done ? Number(done[1]) : 0;
  const socketErrors = sock ? sock.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0;
  const bad = non2xx ? Number(non2xx[1]) : 0;
  return {
    requests,
    seconds: done ? toMs(done[2], done[3]) / 1000 : null,
    rps: rps ? Number(rps[1]) : 0,
    p50Ms: pct(50),
    p99Ms: pct(99),
    non2xx: bad,
    socketErrors,
    socketDetail: sock ? { connect: +sock[1], read: +sock[2], write: +sock[3], timeout: +sock[4] } : null,
    ok: Math.max(0, requests - bad),
  };
}
