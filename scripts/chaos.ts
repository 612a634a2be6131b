// Chaos run against a running stack: steady traffic through the gateway while
// web instances are scaled, killed and paused and a Consul server is stopped;
// then a timeline and a table. Shares its steps and load loop with the e2e
// fault tests (test/lib).
//   npm run chaos -- [--rps 50] [--project consul-stack] [--gateway-port 3000] [--consul-port 8500] [--pause-s 10]
import { parseArgs } from 'node:util';
import { ComposeStack } from '../test/lib/compose.js';
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
  const log = (s: StepResult) => {
    steps.push(s);
    const figs = Object.entries(s.figures).map(([k, v]) => `${k}=${v}`).join(' ');
    console.log(`[+${((s.startedAt - t0) / 1000).toFixed(1)}s] ${s.step} (${s.endedAt - s.startedAt} ms) ${figs}`);
  };
  const settle = () => sleep(3000);

  console.log(`chaos run: ${rps} req/s to ${stack.gatewayUrl}/service-web/ (project ${stack.project}, ${initial} web instances)`);
  await sleep(3000);
  log(await scaleWeb(stack, 5));
  await settle();
  log(await scaleWeb(stack, 2));
  await settle();
  log(await scaleWeb(stack, 3));
  await settle();
  const [victim] = await stack.containers('web-service');
  log(await killContainer(stack, victim!));
  await settle();
  log(await scaleWeb(stack, 3));
  await settle();
  const [frozen] = await stack.containers('web-service');
  log(await pauseContainer(stack, frozen!, Number(values['pause-s']) * 1000));
  await settle();
  const leader = await stopConsulLeader(stack);
  log(leader);
  await settle();
  log(await startContainer(stack, leader.stopped));
  await settle();
  log(await scaleWeb(stack, initial));
  await settle();
  await loop.stop();

  const rows: Array<[string, Summary]> = steps.map((s, i) => {
    const end = steps[i + 1]?.startedAt ?? Infinity;
    return [s.step, loop.summary(s.startedAt, end)];
  });
  rows.unshift(['(baseline)', loop.summary(0, steps[0]!.startedAt)]);
  rows.push(['TOTAL', loop.summary()]);
  const head = ['step (window until the next step)', 'requests', 'failed', 'p50 ms', 'p99 ms', 'max ms'];
  const table = rows.map(([name, s]) => [name, s.requests, s.failures, s.p50, s.p99, s.max].map(String));
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

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(2);
});
