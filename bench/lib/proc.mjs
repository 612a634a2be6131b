// Child processes of the bench: pinned to a core, output to a log file, all
// tracked so that teardown (normal end, Ctrl-C, crash) leaves nothing behind.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const children = new Set();
// Set once teardown begins (Ctrl-C, error): nothing new starts after that.
let stopping = false;
export const isStopping = () => stopping;
// Pids we did not spawn but must kill too (nginx workers, should the master die first).
const extraPids = new Set();

/** Absolute path of an executable on PATH (plus the sbin dirs a non-login root shell may lack), or null. */
export function which(bin) {
  if (bin.includes('/')) return isExec(bin) ? bin : null;
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const d of dirs) if (d && isExec(path.join(d, bin))) return path.join(d, bin);
  return null;
}
function isExec(p) {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

const TASKSET = which('taskset');

/**
 * Starts `cmd args` (through `taskset -c cpu` when cpu is a number; taskset execs, so the pid is
 * the program's own). stdout+stderr go to `logFile` unless `pipe` is set.
 */
export function start(name, cmd, args, { cpu, env, cwd, logFile, pipe = false } = {}) {
  if (stopping) throw new Error('interrupted');
  const argv = cpu === undefined || !TASKSET ? [cmd, ...args] : [TASKSET, '-c', String(cpu), cmd, ...args];
  let fd;
  if (!pipe) fd = fs.openSync(logFile, 'a');
  const child = spawn(argv[0], argv.slice(1), {
    cwd,
    env: env ?? process.env,
    stdio: pipe ? ['ignore', 'pipe', 'pipe'] : ['ignore', fd, fd],
  });
  if (fd !== undefined) fs.closeSync(fd);
  child.label = name;
  child.logFile = logFile;
  child.exitInfo = null;
  children.add(child);
  child.on('error', (err) => {
    child.exitInfo = { error: err.message };
    children.delete(child);
  });
  child.on('exit', (code, signal) => {
    child.exitInfo = { code, signal };
    children.delete(child);
  });
  return child;
}

/** Last lines of a child's log, to say why it died before its temp dir is removed. */
export function logTail(child, lines = 12) {
  try {
    const text = fs.readFileSync(child.logFile, 'utf8').trim();
    return text ? text.split('\n').slice(-lines).join('\n') : '(empty)';
  } catch {
    return '(no log)';
  }
}

/** Remembers a pid to kill at teardown, only while its command line still contains `marker`. */
export function trackPid(pid, marker) {
  extraPids.add({ pid, marker });
}

/** The children still running (to stop what one upstream set started, and only that). */
export const liveChildren = () => [...children];

/** SIGTERM, then SIGKILL after graceMs. Resolves once the process is gone. */
export async function stop(child, graceMs = 3000) {
  if (!child || child.exitInfo || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await Promise.race([gone, sleep(graceMs + 2000)]);
  clearTimeout(timer);
}

export async function stopAll() {
  stopping = true;
  await Promise.all([...children].map((c) => stop(c)));
  killExtra();
}

/** Last resort from a synchronous 'exit' handler: no waiting possible. */
export function killAllNow() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
  killExtra();
}
function killExtra() {
  for (const { pid, marker } of extraPids) {
    try {
      // A pid may have been reused since: kill only if it is still the process we tracked.
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) process.kill(pid, 'SIGKILL');
    } catch {}
  }
  extraPids.clear();
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; throws `what` after timeoutMs. */
export async function waitFor(what, fn, { timeoutMs = 30_000, everyMs = 200, child } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    if (child?.exitInfo) throw new Error(`${what}: ${child.label} exited ${JSON.stringify(child.exitInfo)}; its log ends:\n${logTail(child)}`);
    try {
      const v = await fn();
      if (v) return v;
      last = undefined;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`${what}: not ready after ${timeoutMs / 1000} s${last ? ` (${last.message})` : ''}`);
}

/** GET on loopback with a short timeout; resolves { status, text }. */
export async function get(url, timeoutMs = 2000) {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, text: await res.text() };
}

const handedOut = new Set();
/** A loopback port free right now (for TCP, and for UDP too when `udp`: Consul's serf uses both). */
export async function freePort({ udp = false } = {}) {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    if (handedOut.has(port)) continue;
    if (udp && !(await udpFree(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('no free loopback port found');
}
function udpFree(port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
