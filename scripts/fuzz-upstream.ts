// `npm run fuzz:upstream -- --seconds N --seed N [--workers N]`: the seeded mutation fuzz of the
// differential suite (test/integration/upstream-differential.test.ts) for as long as you like:
// a real Consul agent, a real gateway process (gateway/dist: run `npm run build` first), raw TCP
// instances writing mutated responses, each case run through the gateway and through node:http
// (llhttp). Prints the seed and the case count; exits 1 with each failing case (rebuild one with
// fuzzCase(seed, index) from test/lib/upstream-fuzz.ts). docs/upstream-client.md.
import { parseArgs } from 'node:util';
import { ConsulAgent } from '../test/lib/consul.js';
import { startGateway } from '../test/lib/procs.js';
import { waitFor } from '../test/lib/ports.js';
import { HostileUpstream } from '../test/lib/hostile-upstream.js';
import type { DiffEnv } from '../test/lib/differential.js';
import { runFuzz } from '../test/lib/upstream-fuzz.js';

const USAGE = 'usage: npm run fuzz:upstream -- [--seconds N] [--seed N] [--workers N]';
const { values } = parseArgs({ options: { seconds: { type: 'string' }, seed: { type: 'string' }, workers: { type: 'string' }, help: { type: 'boolean' } } });
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const int = (v: string | undefined, def: number, min: number, max: number, name: string) => {
  const n = v === undefined ? def : Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`--${name} must be an integer from ${min} to ${max}\n${USAGE}`);
    process.exit(2);
  }
  return n;
};
const seconds = int(values.seconds, 60, 1, 86_400, 'seconds');
const seed = int(values.seed, Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31 - 1, 'seed');
const workers = int(values.workers, 3, 1, 16, 'workers');

const consul = await new ConsulAgent({ mode: 'dev' }).start();
const benign = await new HostileUpstream().start();
const hostiles: HostileUpstream[] = [];
let gw: Awaited<ReturnType<typeof startGateway>> | undefined;
let code = 1;
try {
  await consul.register({ container: 'benign', name: 'benign', address: '127.0.0.1', port: benign.port });
  for (let w = 0; w < workers; w++) {
    const h = await new HostileUpstream().start();
    hostiles.push(h);
    await consul.register({ container: `hostile-${w}`, name: `hostile-${w}`, address: '127.0.0.1', port: h.port });
  }
  gw = await startGateway(consul.httpAddr, { UPSTREAM_TIMEOUT_MS: '2000', UPSTREAM_BODY_TIMEOUT_MS: '800', UPSTREAM_KEEPALIVE_MS: '1000' });
  const g = gw;
  await waitFor('the services routed', async () => {
    for (const s of ['benign', ...hostiles.map((_, w) => `hostile-${w}`)]) {
      const r = await fetch(`${g.url}/${s}/ok/ready`);
      await r.arrayBuffer();
      if (r.status !== 200) return false;
    }
    return true;
  }, 30_000);
  const envs: DiffEnv[] = hostiles.map((h, w) => ({ gatewayPort: g.port, upstream: h, service: `hostile-${w}`, benign: 'benign', upstreamTimeoutMs: 2000, bodyTimeoutMs: 800, oracleWaitMs: 600 }));
  const gatewayLog = (id: string) => JSON.stringify(g.logs.filter((l) => l.requestId === id));
  const r = await runFuzz(envs, { seed, seconds, log: (s) => console.log(s), gatewayLog, maxFailures: 50 });
  for (const f of r.failures) console.log(f);
  code = r.failures.length ? 1 : 0;
} finally {
  await gw?.stop().catch(() => gw?.kill());
  for (const h of hostiles) await h.stop();
  await benign.stop();
  await consul.stop();
}
process.exit(code);
