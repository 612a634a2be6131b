import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createShutdown, type ShutdownOptions } from './shutdown.js';

// The process-level behaviour (signals, exit codes, /health 503) is tested on
// the built web service: web-service/src/index.test.ts.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every 5 ms until it is true; fails after `ms`. */
async function until(what: string, fn: () => boolean, ms = 3_000): Promise<void> {
  for (const end = Date.now() + ms; !fn(); await sleep(5)) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}

interface Harness {
  server: http.Server;
  port: number;
  lines: Array<{ level: number; msg: string }>;
  exits: number[];
  events: string[];
  shutdown: (signal: string) => Promise<void>;
}

const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.closeAllConnections(), s.close();
});

/** A server whose /wait?ms=N answers after N ms; every other path at once. */
async function harness(over: Partial<ShutdownOptions> = {}): Promise<Harness> {
  const server = http.createServer((req, res) => {
    const ms = Number(new URL(req.url!, 'http://x').searchParams.get('ms') ?? 0);
    setTimeout(() => res.end('ok'), ms).unref(); // a cut request's timer must not hold the test process
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const lines: Harness['lines'] = [];
  const sink = new Writable({ write: (chunk, _enc, cb) => (lines.push(JSON.parse(String(chunk))), cb()) });
  const exits: number[] = [];
  const events: string[] = [];
  const shutdown = createShutdown({
    server,
    log: pino({ level: 'debug' }, sink),
    graceMs: 100,
    timeoutMs: 1000,
    exit: (code) => void exits.push(code),
    onDraining: () => void events.push('draining'),
    onStopped: () => void events.push('stopped'),
    ...over,
  });
  return { server, port: (server.address() as AddressInfo).port, lines, exits, events, shutdown };
}

/** GET over a fresh connection; resolves with the body, or 'cut' / 'refused'. */
function get(port: number, path = '/', agent: http.Agent | false = false): Promise<string> {
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
        res.on('error', () => resolve('cut'));
      })
      .on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : 'cut'));
  });
}

test('drain hook at once, serves through the grace, finishes in-flight requests, then onStopped', async () => {
  const h = await harness({ graceMs: 400 });
  const arrived = new Promise((r) => h.server.once('request', r));
  const slow = get(h.port, '/wait?ms=600');
  await arrived; // in flight when the stop begins
  const t0 = Date.now();
  const done = h.shutdown('SIGTERM');
  assert.deepEqual(h.events, ['draining'], 'onDraining runs synchronously');
  assert.equal(await get(h.port), 'ok', 'still answering during the grace');
  assert.equal(await slow, 'ok', 'the in-flight request completes');
  await done;
  const took = Date.now() - t0;
  // Done when the slow request is (600 ms after it arrived), not before the grace; waiting for
  // the timeout anyway (the bug) would be 400 + 1000 = 1400.
  assert.ok(took >= 400 && took < 1_300, `took ${took} ms`);
  assert.deepEqual(h.events, ['draining', 'stopped']);
  assert.equal(await get(h.port), 'refused', 'no longer listening');
  assert.deepEqual(h.exits, []);
  assert.deepEqual(
    h.lines.map((l) => l.msg),
    ['shutting down: draining', 'stopped accepting connections; waiting for in-flight requests', 'stopped'],
  );
});

test('idle keep-alive connections close at once, busy ones as soon as they go idle', async () => {
  const h = await harness({ graceMs: 0, timeoutMs: 5000 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  // Two kept-alive sockets: one idle, one about to carry a slow request.
  await Promise.all([get(h.port, '/', agent), get(h.port, '/', agent)]);
  const sockets = Object.values(agent.freeSockets).flat();
  assert.equal(sockets.length, 2);
  const closedAt: number[] = [];
  for (const s of sockets) s!.once('close', () => closedAt.push(Date.now()));
  const arrived = new Promise((r) => h.server.once('request', r));
  const busy = get(h.port, '/wait?ms=300', agent);
  await arrived; // the request is in flight: its connection is busy, not idle
  const t0 = Date.now();
  await h.shutdown('SIGTERM');
  assert.equal(await busy, 'ok');
  const took = Date.now() - t0;
  // 300 ms of work; left until the 5 s timeout (the bug) it would be 5000.
  assert.ok(took < 2_500, `server closed after ${took} ms, not at the 5 s timeout`);
  await until('the client sees both sockets close', () => closedAt.length === 2);
  agent.destroy();
});

test('a request outliving timeoutMs is cut and the stop still completes', async () => {
  const h = await harness({ graceMs: 50, timeoutMs: 200 });
  const slow = get(h.port, '/wait?ms=10000');
  await sleep(30);
  const t0 = Date.now();
  await h.shutdown('SIGTERM');
  const took = Date.now() - t0;
  assert.ok(took >= 250 && took < 800, `took ${took} ms`);
  assert.equal(await slow, 'cut');
  assert.deepEqual(h.events, ['draining', 'stopped']);
  assert.ok(h.lines.some((l) => l.level === 40 && /outlived the shutdown timeout/.test(l.msg)));
  assert.deepEqual(h.exits, []);
});

test('a second signal exits(1) at once', async () => {
  const h = await harness({ graceMs: 300 });
  const first = h.shutdown('SIGTERM');
  await sleep(20);
  await h.shutdown('SIGINT');
  assert.deepEqual(h.exits, [1]);
  assert.ok(h.lines.some((l) => l.msg === 'second signal: exiting now'));
  await first;
});

test('a hung stop hook hits the backstop: exit(1) at grace + timeout + backstop', async () => {
  let exitedAt = 0;
  const h = await harness({
    graceMs: 50,
    timeoutMs: 100,
    backstopMs: 150,
    onStopped: () => new Promise(() => {}),
    exit: () => void (exitedAt = Date.now()),
  });
  const t0 = Date.now();
  void h.shutdown('SIGTERM');
  await until('the backstop fired', () => exitedAt > 0);
  const at = exitedAt - t0;
  // Not before 50 + 100 + 150 ms; the default backstop (2000 ms, the option ignored) would be 2150.
  // Three timers in a row, each read with Date.now()'s whole milliseconds: one 299 ms was seen.
  assert.ok(at >= 297 && at < 1_500, `backstop after ${at} ms`);
  assert.ok(h.lines.some((l) => l.level === 60 && l.msg === 'shutdown did not finish in time; exiting'));
});

test('the backstop is cleared once the stop finishes', async () => {
  const h = await harness({ graceMs: 0, timeoutMs: 50, backstopMs: 50 });
  await h.shutdown('SIGTERM');
  await sleep(200);
  assert.deepEqual(h.exits, []);
});

test('a failing hook rejects the stop (the caller exits 1) and clears the backstop', async () => {
  const h = await harness({ graceMs: 0, timeoutMs: 50, backstopMs: 50, onStopped: () => Promise.reject(new Error('boom')) });
  await assert.rejects(h.shutdown('SIGTERM'), /boom/);
  await sleep(200);
  assert.deepEqual(h.exits, []);
});
