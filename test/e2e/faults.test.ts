import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ComposeStack, docker } from '../lib/compose.js';
import { LoadLoop } from '../lib/load.js';
import { sleep, waitFor } from '../lib/ports.js';
import { recordFigure } from '../lib/figures.js';
import { hedgeCounts, hedgeDelta } from '../lib/hedges.js';
import { killContainer, pauseContainer, scaleWeb, waitServersBack } from '../lib/steps.js';

const RPS = 50;
const UPSTREAM_TIMEOUT_MS = 5000;
// Bounds asserted on the figures below: what the design guarantees, with room
// for a loaded 2-core CI machine; README.md's Figures section quotes them.
// Scale-down: SIGTERM fails /health at once and DRAIN_GRACE_MS (3 s) keeps
// serving, so an instance leaves the table before the grace ends; measured from
// the start of `compose up --scale`, so 1 s more for compose. Observed 1.0-1.3 s.
const SCALE_DOWN_UNROUTED_MAX_MS = 4_000;
// docker kill: registrator deregisters on the die event, the 1 s HTTP check fails
// on its own by 2 s. Observed 0.24 s.
const KILL_UNROUTED_MAX_MS = 3_000;
// docker pause: the 1 s check with its 1 s timeout goes critical within ~2 s. Observed 1.5 s.
const PAUSE_OUT_MAX_MS = 5_000;
// unpause: the next passing check, plus at most one base ejection (EJECT_BASE_MS 5 s)
// from the requests that timed out on it. Observed 4.6 s.
const UNPAUSE_BACK_MAX_MS = 15_000;
// Tail tolerance (docs/tail-tolerance.md): a request that meets a frozen or vanished
// instance waits one per-try timeout (derived from the service's p99, at least 50 ms,
// at most 1 s), then a hedge on another instance answers. Goal: max 1,500 ms, p99
// 100 ms for the 30 s pause at 50 req/s; the bounds keep room for a loaded CI machine.
const FROZEN_MAX_MS = 2_000;
const FROZEN_P99_MS = 250;
const KILL_MAX_MS = 2_000;
const NEW_LEADER_MAX_MS = 20_000; // Consul's election (raft_multiplier 1): observed 5.6 s
// Observed 2.1 s after the discovery rework (within one poll before it), likely a query that failed
// during the election waiting out its backoff (at most CONSUL_BACKOFF_MAX_MS, 5 s) before asking again.
const AFTER_LEADER_LOSS_ROUTED_MAX_MS = 6_000;
// Two servers stopped: the probe (every 2 s) sees no known leader. Observed 3.6 s at most.
const DEGRADED_MAX_MS = 10_000;
// Agent back: discovery retries at most CONSUL_BACKOFF_MAX_MS (5 s) apart. Observed 0.5 s.
const RECONNECT_MAX_MS = 10_000;

/** Steady traffic through the gateway for one scenario. */
function loop(stack: ComposeStack, maxDurationMs = 240_000) {
  return new LoadLoop({ url: `${stack.gatewayUrl}/service-web/`, rps: RPS, maxDurationMs, timeoutMs: 30_000 }).start();
}

function figure(name: string, s: { failures: number; requests: number; p50: number; p99: number; max: number }) {
  recordFigure('faults', name, `${s.failures} failed / ${s.requests} requests at ${RPS} req/s; p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms`);
}

describe('faults under steady load on the real stack', { timeout: 40 * 60_000 }, () => {
  let stack: ComposeStack;

  before(async () => {
    stack = await ComposeStack.forTests(process.env.E2E_PROJECT ?? 'faults-e2e', { ENABLE_FAULTS: 'true', REGISTRATOR_RESYNC: '5', UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS) });
    await stack.down();
    await stack.compose(['build'], { timeoutMs: 900_000 });
    await stack.up({ files: stack.withScale() });
    await stack.waitRouted(5);
  });

  after(async () => {
    if (process.env.E2E_KEEP !== '1') await stack?.down();
  });

  test('0. nothing wrong for 30 s: extra upstream requests (hedges, retries) at most 2 % of requests', async () => {
    const h0 = await hedgeCounts(stack.gatewayUrl);
    const l = loop(stack);
    await sleep(30_000);
    const s = await l.stop();
    const d = hedgeDelta(h0, await hedgeCounts(stack.gatewayUrl));
    figure('at rest, 30 s', s);
    recordFigure('faults', 'at rest, 30 s: hedges and extra attempts', d.text);
    assert.equal(s.failures, 0, JSON.stringify(s.errors));
    assert.ok(d.extraPct <= 2, d.text);
  });

  test('1. graceful scale-down 5→2, three times: 0 failed requests', async () => {
    for (let round = 1; round <= 3; round++) {
      if (round > 1) await scaleWeb(stack, 5);
      const l = loop(stack);
      await sleep(1000);
      const step = await scaleWeb(stack, 2);
      await sleep(1000);
      const s = await l.stop();
      figure(`scale-down 5→2, round ${round}`, s);
      recordFigure('faults', `scale-down 5→2, round ${round}: stop → unrouted (ms)`, step.figures.stopToUnroutedMs);
      assert.equal(s.failures, 0, JSON.stringify(s.errors));
      assert.ok(step.figures.stopToUnroutedMs! <= SCALE_DOWN_UNROUTED_MAX_MS, `round ${round}: unrouted after ${step.figures.stopToUnroutedMs} ms`);
    }
    await scaleWeb(stack, 4);
  });

  // 0 failures is what runs show (GETs reset or refused by the dead instance are
  // retried elsewhere), but a response cut after its first byte cannot be
  // retried: so the bound asserted is the requests in flight at the kill.
  test('2. docker kill (SIGKILL): failures at most the requests in flight on it; none from 1 s after', async () => {
    const h0 = await hedgeCounts(stack.gatewayUrl);
    const l = loop(stack);
    await sleep(2000);
    const victim = (await stack.containers('web-service'))[0]!;
    const killedAt = Date.now();
    // Requests to the victim in flight at the kill: sent before it, unanswered at it.
    const step = await killContainer(stack, victim);
    await sleep(3000);
    const s = await l.stop();
    const inFlight = l.samples.filter((x) => x.at <= killedAt && x.at + x.ms >= killedAt).length;
    const after1s = l.summary(killedAt + 1000);
    figure('docker kill', s);
    recordFigure('faults', 'docker kill: hedges', hedgeDelta(h0, await hedgeCounts(stack.gatewayUrl)).text);
    recordFigure('faults', 'docker kill: kill → unrouted (ms)', step.figures.killToUnroutedMs);
    recordFigure('faults', 'docker kill: requests in flight at the kill (all instances)', inFlight);
    assert.ok(s.failures <= inFlight, `${s.failures} failures, ${inFlight} in flight: ${JSON.stringify(s.errors)}`);
    assert.equal(after1s.failures, 0, JSON.stringify(after1s.errors));
    assert.ok(step.figures.killToUnroutedMs! <= KILL_UNROUTED_MAX_MS, `unrouted ${step.figures.killToUnroutedMs} ms after the kill`);
    // A request on a socket to the vanished instance waits one per-try timeout, then a hedge answers.
    assert.ok(s.max <= KILL_MAX_MS, `slowest request ${s.max} ms`);
    await scaleWeb(stack, 4);
  });

  test('3. docker pause for 30 s: 0 failed, no request waits a timeout (hedged after the per-try timeout); ejected, then readmitted', async () => {
    const h0 = await hedgeCounts(stack.gatewayUrl);
    const l = loop(stack);
    await sleep(2000);
    const victim = (await stack.containers('web-service'))[0]!;
    const step = await pauseContainer(stack, victim, 30_000);
    await sleep(2000);
    const s = await l.stop();
    figure('docker pause 30 s', s);
    recordFigure('faults', 'docker pause 30 s: hedges', hedgeDelta(h0, await hedgeCounts(stack.gatewayUrl)).text);
    recordFigure('faults', 'docker pause 30 s: p99 / max (ms), goal 100 / 1500', `${s.p99} / ${s.max}`);
    recordFigure('faults', 'docker pause: pause → out of rotation (ms)', step.figures.pauseToOutMs);
    recordFigure('faults', 'docker pause: unpause → back in rotation (ms)', step.figures.unpauseToBackMs);
    assert.equal(s.failures, 0, JSON.stringify(s.errors));
    assert.ok(s.max <= FROZEN_MAX_MS, `slowest request ${s.max} ms`);
    assert.ok(s.p99 <= FROZEN_P99_MS, `p99 ${s.p99} ms`);
    assert.ok(step.figures.pauseToOutMs! <= PAUSE_OUT_MAX_MS, `out of rotation ${step.figures.pauseToOutMs} ms after pause`);
    assert.ok(step.figures.unpauseToBackMs! <= UNPAUSE_BACK_MAX_MS, `back ${step.figures.unpauseToBackMs} ms after unpause`);
  });

  test('4. kill the Consul leader: 0 failed requests; a scale-up is routed within 6 s of passing, after the new leader', async () => {
    const l = loop(stack);
    await sleep(2000);
    const leader = await stack.leaderContainer();
    const t0 = Date.now();
    await docker(['kill', leader.id]);
    await waitFor('a new leader', async () => {
      const now = await stack.leader().catch(() => '');
      return now && !now.startsWith(`${leader.ip}:`);
    }, 60_000, 100);
    const newLeaderMs = Date.now() - t0;
    recordFigure('faults', 'kill Consul leader: new leader elected (ms)', newLeaderMs);
    const step = await scaleWeb(stack, 5);
    recordFigure('faults', 'kill Consul leader: scale-up check passing → routed, max (ms)', step.figures.passToRoutedMax);
    const s = await l.stop();
    figure('kill Consul leader', s);
    assert.equal(s.failures, 0, JSON.stringify(s.errors));
    assert.ok(step.figures.passToRoutedMax! <= AFTER_LEADER_LOSS_ROUTED_MAX_MS, `${step.figures.passToRoutedMax} ms`);
    assert.ok(newLeaderMs <= NEW_LEADER_MAX_MS, `new leader after ${newLeaderMs} ms`);
    await docker(['start', leader.id]);
    await waitServersBack(stack, async () => /:/.test(await stack.leader()));
  });

  test('5. two of three Consul servers down for a minute: 0 failed requests, degraded health, table right within 5 s of quorum', async () => {
    const l = loop(stack, 300_000);
    await sleep(2000);
    const servers = (await Promise.all([1, 2, 3].map((i) => stack.containers(`consul-server-${i}`)))).flat();
    const down = servers.slice(0, 2);
    await Promise.all(down.map((c) => docker(['stop', '-t', '5', c.id])));
    const stoppedAt = Date.now();
    await waitFor('gateway reports discovery degraded', async () => {
      const h = await stack.json<{ status: string; consul: { degraded: boolean } }>(`${stack.gatewayUrl}/_gateway/health`);
      return h.status === 'degraded' && h.consul.degraded;
    }, 15_000, 250);
    const degradedMs = Date.now() - stoppedAt;
    recordFigure('faults', 'both servers stopped → /_gateway/health degraded (ms)', degradedMs);
    const health = await fetch(`${stack.gatewayUrl}/_gateway/health`);
    assert.equal(health.status, 200, 'still routing on the last good table');
    await sleep(Math.max(0, 60_000 - (Date.now() - stoppedAt)));
    const during = l.summary();
    await Promise.all(down.map((c) => docker(['start', c.id])));
    const startedAt = Date.now();
    await waitFor('a leader again', async () => /:/.test(await stack.leader().catch(() => '')), 120_000, 200);
    recordFigure('faults', 'servers back → leader (ms)', Date.now() - startedAt);
    const leaderAt = Date.now();
    const expected = (await stack.containers('web-service')).map(ComposeStack.serviceId).sort();
    await waitFor('gateway table matches the containers', async () => JSON.stringify((await stack.routed()).map((r) => r.id).sort()) === JSON.stringify(expected), 5_000, 100);
    recordFigure('faults', 'quorum back → table matches containers (ms)', Date.now() - leaderAt);
    await waitFor('health ok again', async () => (await stack.json<{ status: string }>(`${stack.gatewayUrl}/_gateway/health`)).status === 'ok', 30_000, 250);
    const s = await l.stop();
    figure('two of three Consul servers down for 60 s', s);
    assert.equal(during.failures, 0, JSON.stringify(during.errors));
    assert.equal(s.failures, 0, JSON.stringify(s.errors));
    assert.ok(degradedMs <= DEGRADED_MAX_MS, `degraded ${degradedMs} ms after both stops returned`);
    // Leave a whole cluster for the next scenario: three servers alive in serf.
    await waitServersBack(stack);
  });

  test('6. stop the Consul client agent the gateway watches: 0 failed requests', async () => {
    const l = loop(stack);
    await sleep(2000);
    const [agent] = await stack.containers('consul-agent');
    await docker(['stop', '-t', '5', agent!.id]);
    await sleep(10_000);
    const h = await fetch(`${stack.gatewayUrl}/_gateway/health`);
    assert.equal(h.status, 200);
    assert.equal(((await h.json()) as { consul: { reachable: boolean } }).consul.reachable, false);
    await docker(['start', agent!.id]);
    const t0 = Date.now();
    await waitFor('gateway reaches Consul again', async () => (await stack.json<{ consul: { reachable: boolean } }>(`${stack.gatewayUrl}/_gateway/health`)).consul.reachable, 60_000, 250);
    const reconnectMs = Date.now() - t0;
    recordFigure('faults', 'agent restarted → gateway reconnected (ms)', reconnectMs);
    assert.ok(reconnectMs <= RECONNECT_MAX_MS, `reconnected ${reconnectMs} ms after the agent was started`);
    await sleep(2000);
    const s = await l.stop();
    figure('consul-agent stopped for 10 s', s);
    assert.equal(s.failures, 0, JSON.stringify(s.errors));
    await stack.waitRouted(5, 30_000);
  });

  test('7. restart the gateway: in-flight requests complete, back within a few seconds', async () => {
    // Slow requests (2 s, through the test-only fault route) in flight during the restart.
    const slow = Array.from({ length: 5 }, () =>
      fetch(`${stack.gatewayUrl}/service-web/fault/delay?ms=2000`).then(async (r) => ({ status: r.status, body: await r.text() })),
    );
    await sleep(300);
    const t0 = Date.now();
    const restart = stack.compose(['restart', '-t', '10', 'gateway'], { files: stack.withScale() });
    const results = await Promise.all(slow);
    for (const r of results) assert.equal(r.status, 200, r.body);
    await restart;
    await waitFor('gateway healthy again', async () => (await fetch(`${stack.gatewayUrl}/_gateway/health`)).status === 200, 30_000, 100);
    const back = Date.now() - t0;
    recordFigure('faults', 'gateway restart: in-flight slow requests ok / back after (ms)', `${results.length}/${results.length} ok; ${back} ms`);
    assert.ok(back < 15_000, `${back} ms`);
  });
});
