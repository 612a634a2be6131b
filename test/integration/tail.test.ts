import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ConsulAgent } from '../lib/consul.js';
import { startGateway, startWeb, type ServiceProcess } from '../lib/procs.js';
import { sleep, waitFor } from '../lib/ports.js';
import { LoadLoop, type Summary } from '../lib/load.js';
import { recordFigure } from '../lib/figures.js';
import { routedIds } from '../lib/gateway.js';

// Tail tolerance (docs/tail-tolerance.md) against a real Consul agent, real web
// instances and the real gateway at its shipped defaults (peak-EWMA balancing,
// hedging after a derived per-try timeout, UPSTREAM_TIMEOUT_MS 5 s).
// Goals (issue 23, measured on the compose stack): max ≤ 1,500 ms, p99 ≤ 100 ms
// with a frozen instance; with one instance 300 ms slow, p99 ≤ 2× the healthy
// p99 and the slow one gets ≤ 5 % of requests. Here the bounds keep room for a
// loaded 2-core machine, and every figure is printed.
const RPS = 50;
const MAX_MS = 1_500;
const P99_ROOM_MS = 250;
// 2x the healthy p99 is the goal; a loopback p99 of a few ms doubles within scheduling noise, hence the added room.
const SLOW_P99_ROOM_MS = 30;
const SLOW_SHARE_MAX = 0.05;

class Stack {
  consul: ConsulAgent | undefined;
  webs: ServiceProcess[] = [];
  gw: ServiceProcess | undefined;
  holes: net.Server[] = [];

  async web(container: string, env: Record<string, string> = {}) {
    const w = await startWeb({ ENABLE_FAULTS: 'true', ...env });
    this.webs.push(w);
    const id = await this.consul!.register({ container, name: 'service-web', address: '127.0.0.1', port: w.port });
    // The web service's own id (its x-instance-id), to count its share of the answers.
    const res = await fetch(`http://127.0.0.1:${w.port}/`);
    await res.text();
    return { w, id, instanceId: res.headers.get('x-instance-id')! };
  }

  async teardown() {
    for (const w of this.webs) if (w.proc.exitCode === null) w.proc.kill('SIGCONT');
    await this.gw?.stop().catch(() => this.gw?.kill());
    for (const w of this.webs) w.kill();
    for (const h of this.holes) h.close();
    await this.consul?.stop();
  }
}

function figure(name: string, s: Summary) {
  recordFigure('tail', name, `${s.failures} failed / ${s.requests} requests at ${RPS} req/s; p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms`);
}

/** Hedge counts, and attempts in all and at one instance (its Consul id), from the gateway's /metrics. */
async function hedges(gw: ServiceProcess, instanceId = ''): Promise<{ sent: number; won: number; attempts: number; at: number }> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const sum = (re: RegExp) => [...text.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
  const attempts = [...text.matchAll(/^gateway_upstream_attempts_total\{([^}]*)\} (\d+)/gm)].filter((m) => m[1]!.includes('service="service-web"'));
  return {
    sent: sum(/^gateway_hedges_total\{service="service-web"\} (\d+)/gm),
    won: sum(/^gateway_hedges_won_total\{service="service-web"\} (\d+)/gm),
    attempts: attempts.reduce((n, m) => n + Number(m[2]), 0),
    at: attempts.filter((m) => m[1]!.includes(`instance_id="${instanceId}"`)).reduce((n, m) => n + Number(m[2]), 0),
  };
}

describe('tail tolerance against a real Consul', () => {
  let stack = new Stack();
  afterEach(async () => {
    await stack.teardown();
    stack = new Stack();
  });
  after(async () => stack.teardown());

  async function threeWebs(gatewayEnv: Record<string, string> = {}) {
    stack.consul = await new ConsulAgent({ mode: 'dev' }).start();
    const webs = [await stack.web('web-a'), await stack.web('web-b'), await stack.web('web-c')];
    stack.gw = await startGateway(stack.consul.httpAddr, gatewayEnv);
    await waitFor('3 routed', async () => (await routedIds(stack.gw!)).length === 3);
    return webs;
  }

  test('a frozen instance (SIGSTOP for 10 s) under 50 req/s: 0 failed, no request waits a timeout', async () => {
    const [a] = await threeWebs();
    const loop = new LoadLoop({ url: `${stack.gw!.url}/service-web/`, rps: RPS, maxDurationMs: 60_000, timeoutMs: 10_000 }).start();
    await sleep(3_000);
    const before = await hedges(stack.gw!);
    const t0 = Date.now();
    a!.w.proc.kill('SIGSTOP');
    await sleep(10_000);
    a!.w.proc.kill('SIGCONT');
    await sleep(2_000);
    const s = await loop.stop();
    const during = loop.summary(t0, t0 + 10_000);
    const h = await hedges(stack.gw!);
    figure('SIGSTOP 10 s (whole loop)', s);
    figure('SIGSTOP 10 s (while frozen)', during);
    recordFigure('tail', 'SIGSTOP 10 s: hedges sent / won during the loop', `${h.sent - before.sent} / ${h.won - before.won}`);
    assert.equal(s.failures, 0, JSON.stringify(s.errors));
    assert.ok(s.max <= MAX_MS, `slowest request ${s.max} ms`);
    assert.ok(during.p99 <= P99_ROOM_MS, `p99 while frozen ${during.p99} ms`);
  });

  test('a black hole (accepts, never answers, its check passes): 0 failed, ejected by hedged-away attempts', async () => {
    const [a] = await threeWebs();
    const hole = net.createServer(() => undefined); // accepts and holds every connection
    stack.holes.push(hole);
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    const port = (hole.address() as net.AddressInfo).port;
    // Its check asks a healthy instance: Consul keeps it passing for the whole run, as when only the service port hangs.
    await stack.consul!.register({ container: 'black-hole', name: 'service-web', address: '127.0.0.1', port, checkUrl: `http://127.0.0.1:${a!.w.port}/health` });
    await waitFor('4 routed', async () => (await routedIds(stack.gw!)).length === 4);
    const before = await hedges(stack.gw!);
    const loop = new LoadLoop({ url: `${stack.gw!.url}/service-web/`, rps: RPS, maxDurationMs: 60_000, timeoutMs: 10_000 }).start();
    await sleep(15_000);
    const s = await loop.stop();
    const h = await hedges(stack.gw!);
    const explain = (await (await fetch(`${stack.gw!.url}/_gateway/explain/service-web`)).json()) as { summary: string };
    figure('black hole for 15 s', s);
    recordFigure('tail', 'black hole: hedges sent / won / requests', `${h.sent - before.sent} / ${h.won - before.won} / ${s.requests}`);
    recordFigure('tail', 'black hole: explain summary', explain.summary);
    assert.equal(s.failures, 0, JSON.stringify(s.errors));
    assert.ok(s.max <= MAX_MS, `slowest request ${s.max} ms`);
    assert.ok(s.p99 <= P99_ROOM_MS, `p99 ${s.p99} ms`);
    assert.ok(h.won - before.won >= 1, 'hedges answered for the black hole');
  });

  /**
   * 8 s with three healthy instances, then one slowed by 300 ms (the web
   * service's slow fault mode) for 15 s: the service's p99 in each phase, and
   * the slow instance's share of the attempts (from /metrics: the requests it
   * was sent, hedged-away ones included).
   */
  async function slowScenario(env: Record<string, string>) {
    const webs = await threeWebs(env);
    const slow = webs[2]!;
    const loop = new LoadLoop({ url: `${stack.gw!.url}/service-web/`, rps: RPS, maxDurationMs: 60_000, timeoutMs: 10_000 }).start();
    await sleep(8_000);
    const slowAt = Date.now();
    const h0 = await hedges(stack.gw!, slow.id);
    const set = await fetch(`http://127.0.0.1:${slow.w.port}/fault/mode`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ mode: 'slow', delayMs: 300 }) });
    assert.equal(set.status, 200);
    await sleep(15_000);
    await loop.stop();
    const h1 = await hedges(stack.gw!, slow.id);
    const healthy = loop.summary(0, slowAt);
    const slowed = loop.summary(slowAt);
    const share = (h1.at - h0.at) / slowed.requests;
    const explain = (await (await fetch(`${stack.gw!.url}/_gateway/explain/service-web`)).json()) as { summary: string };
    await stack.teardown();
    stack = new Stack();
    return { healthy, slowed, share, hedges: h1.sent - h0.sent, extra: h1.attempts - h0.attempts - slowed.requests, explain: explain.summary };
  }

  // The balancers alone (hedging off), then the shipped defaults. Hedging with
  // passive health also keeps a slow instance's cost low whatever the balancer
  // (its hedged-away attempts eject it), so the balancers are compared without it.
  test('one instance of three 300 ms slow: peak EWMA, least request and round robin side by side, then the defaults', async () => {
    const runs: Array<[string, Record<string, string>]> = [
      ['peak_ewma, no hedging', { LB_POLICY: 'peak_ewma', UPSTREAM_HEDGING: 'false' }],
      ['least_request, no hedging', { LB_POLICY: 'least_request', UPSTREAM_HEDGING: 'false' }],
      ['round_robin, no hedging', { LB_POLICY: 'round_robin', UPSTREAM_HEDGING: 'false' }],
      ['defaults (peak_ewma, hedging)', {}],
    ];
    const rows: Array<[string, Awaited<ReturnType<typeof slowScenario>>]> = [];
    for (const [name, env] of runs) {
      const r = await slowScenario(env);
      rows.push([name, r]);
      recordFigure(
        'tail',
        `one of 3 slowed by 300 ms, ${name}`,
        `healthy p99 ${r.healthy.p99} ms; slowed p99 ${r.slowed.p99} ms, max ${r.slowed.max} ms; slow instance got ${(r.share * 100).toFixed(1)} % of requests; hedges ${r.hedges}, extra attempts ${r.extra} of ${r.slowed.requests} requests; ${r.slowed.failures} failed`,
      );
    }
    const ewma = rows[0]![1];
    const rr = rows[2]![1];
    const defaults = rows[3]![1];
    recordFigure('tail', 'slow instance: explain summary (defaults)', defaults.explain);
    for (const [name, r] of rows) assert.equal(r.slowed.failures + r.healthy.failures, 0, `${name}: ${JSON.stringify(r.slowed.errors)}`);
    assert.ok(rr.share > 0.25, `round robin still sends the slow one its third: ${rr.share}`);
    // The balancers alone are compared, not bounded: on a machine loaded by other work every
    // instance's latency peaks, and peak EWMA alone measured 0.1 % quiet, 5.7 % loaded.
    assert.ok(ewma.share < rr.share / 3, `peak EWMA alone: the slow instance got ${(ewma.share * 100).toFixed(1)} %`);
    assert.ok(defaults.share <= SLOW_SHARE_MAX, `defaults: the slow instance got ${(defaults.share * 100).toFixed(1)} %`);
    assert.ok(defaults.slowed.p99 <= 2 * defaults.healthy.p99 + SLOW_P99_ROOM_MS, `p99 ${defaults.slowed.p99} ms slowed vs ${defaults.healthy.p99} ms healthy`);
    // Its hedged-away attempts count as failures, so explain calls it failing (or slow, once they are old news).
    assert.match(defaults.explain, /gets little traffic \((slow: EWMA \d+ ms vs|failing: its last)/);
  });
});
