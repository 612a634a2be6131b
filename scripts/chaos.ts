// Chaos run against a running stack: steady traffic through the gateway while
// web instances are scaled, killed, paused and (with ENABLE_FAULTS=true) slowed
// by 300 ms, and a Consul server is stopped; then a timeline and a table with
// each fault's p99, max and the gateway's hedges. Shares its steps and load
// loop with the e2e fault tests (test/lib).
//   npm run chaos -- [--rps 50] [--project consul-stack] [--gateway-port 3000] [--consul-port 8500] [--pause-s 10]
import { parseArgs } from 'node:util';
import { ComposeStack, docker } from '../test/lib/compose.js';
import { hedgeCounts, hedgeDelta, type HedgeCounts } from '../test/lib/hedges.js';
import { LoadLoop, type Summary } from '../test/lib/load.js';
import { sleep } from '../test/lib/ports.js';
import { killContainer, pauseContainer, scaleWeb, startContainer, stopConsulLeader, type StepResult } from '../test/lib/steps.js';

const { values } = parseArgs({
  options: {
    rps: { type: 'string', default: '50' },
    project: { type: 'string', default: 'consul-stack' },
    'gateway-port': { type: 'string', default: process.env.GATEWAY_PORT ?? '3000' },
    'consul-port': { type: 'string', default: process.env.CONSUL_UI_PORT ?? '8500' },
    'pause-s': { type: 'string', default: '10' },
  },
});
const rps = Number(values.rps);
const stack = new ComposeStack(values.project);
stack.gatewayPort = Number(values['gateway-port']);
stack.consulPort = Number(values['consul-port']);

async function main() {
  const health = await fetch(`${stack.gatewayUrl}/_gateway/health`).catch(() => undefined);
  if (health?.status !== 200) {
    console.error(`no healthy gateway at ${stack.gatewayUrl}: start the stack first (docker compose up -d --wait)`);
    process.exit(2);
  }
  // Consul runs with ACLs on: the drills read Consul with the stack's management token.
  stack.consulToken = await stack.managementToken();
  const initial = (await stack.containers('web-service')).length;
  const loop = new LoadLoop({ url: `${stack.gatewayUrl}/service-web/`, rps, maxDurationMs: 15 * 60_000, timeoutMs: 30_000 }).start();
  const t0 = Date.now();
  const steps: StepResult[] = [];
  // The gateway's hedge counters at the loop's start and as each step starts, for the table.
  const zero: HedgeCounts = { sent: 0, won: 0, attempts: 0, retries: 0, requests: 0 };
  const readCounts = () => hedgeCounts(stack.gatewayUrl).catch(() => zero);
  const startCounts = await readCounts();
  const counts: HedgeCounts[] = [];
  const log = async (run: Promise<StepResult | null>) => {
    const at = readCounts();
    const s = await run;
    if (!s) return;
    counts.push(await at);
    steps.push(s);
    const figs = Object.entries(s.figures).map(([k, v]) => `${k}=${v}`).join(' ');
    console.log(`[+${((s.startedAt - t0) / 1000).toFixed(1)}s] ${s.step} (${s.endedAt - s.startedAt} ms) ${figs}`);
  };
  const settle = () => sleep(3000);

  console.log(`chaos run: ${rps} req/s to ${stack.gatewayUrl}/service-web/ (project ${stack.project}, ${initial} web instances)`);
  await sleep(3000);
  await log(scaleWeb(stack, 5));
  await settle();
  await log(scaleWeb(stack, 2));
  await settle();
  await log(scaleWeb(stack, 3));
  await settle();
  const [victim] = await stack.containers('web-service');
  await log(killContainer(stack, victim!));
  await settle();
  await log(scaleWeb(stack, 3));
  await settle();
  const [frozen] = await stack.containers('web-service');
  await log(pauseContainer(stack, frozen!, Number(values['pause-s']) * 1000));
  await settle();
  const [slow] = await stack.containers('web-service');
  await log(slowContainer(slow!, 300, Number(values['pause-s']) * 1000));
  await settle();
  const stopping = stopConsulLeader(stack);
  await log(stopping);
  const leader = await stopping;
  await settle();
  await log(startContainer(stack, leader.stopped));
  await settle();
  await log(scaleWeb(stack, initial));
  await settle();
  await loop.stop();
  const endCounts = await readCounts();

  // Hedges per row: the counters as its step started and as the next one did.
  const hedgeCell = (a: HedgeCounts | undefined, b: HedgeCounts | undefined) => {
    if (!a || !b || b.requests === a.requests) return '-';
    const d = hedgeDelta(a, b);
    return `${d.sent} (${d.hedgePct} %)`;
  };
  const rows: Array<[string, Summary, string]> = steps.map((s, i) => {
    const end = steps[i + 1]?.startedAt ?? Infinity;
    return [s.step, loop.summary(s.startedAt, end), hedgeCell(counts[i], counts[i + 1] ?? endCounts)];
  });
  rows.unshift(['(baseline)', loop.summary(0, steps[0]!.startedAt), hedgeCell(startCounts, counts[0])]);
  rows.push(['TOTAL', loop.summary(), hedgeCell(startCounts, endCounts)]);
  const head = ['step (window until the next step)', 'requests', 'failed', 'p50 ms', 'p99 ms', 'max ms', 'hedges'];
  const table = rows.map(([name, s, h]) => [...[name, s.requests, s.failures, s.p50, s.p99, s.max].map(String), h]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log('\n' + line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of table) console.log(line(r));
  const total = loop.summary();
  if (total.failures > 0) console.log(`\nfailures by kind: ${JSON.stringify(total.errors)}`);
  console.log(`\nrequests per instance: ${JSON.stringify(total.byInstance)}`);
  process.exit(total.failures > 0 ? 1 : 0);
}

/**
 * Puts one web instance in its slow fault mode (every answer `delayMs` late)
 * for `forMs`, through docker exec, as the web service's fault routes listen
 * only inside the stack. Null when the stack runs without ENABLE_FAULTS.
 */
async function slowContainer(c: { id: string; name: string }, delayMs: number, forMs: number): Promise<StepResult | null> {
  const set = (body: object) =>
    docker([
      'exec',
      c.id,
      'node',
      '-e',
      `fetch('http://127.0.0.1:3000/fault/mode',{method:'POST',headers:{'content-type':'application/json'},body:${JSON.stringify(JSON.stringify(body))}}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))`,
    ]).then(
      () => true,
      () => false,
    );
  const startedAt = Date.now();
  if (!(await set({ mode: 'slow', delayMs }))) {
    console.log('(slow step skipped: the web instances run without ENABLE_FAULTS=true)');
    return null;
  }
  await sleep(forMs);
  await set({ mode: 'ok' });
  return { step: `slow ${c.name} by ${delayMs} ms for ${forMs / 1000} s`, startedAt, endedAt: Date.now(), figures: {} };
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(2);
});
