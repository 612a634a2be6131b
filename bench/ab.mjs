// `npm run bench:ab -- A B`: two builds of the gateway compared for CPU per request, side by side
// at the same moment. Both run on core 0, each under its own wrk (-c25) on core 1, through the
// same minimal upstreams and a real Consul; each round reads both processes' CPU time, so what the
// machine does in that round (a noisy neighbour, a frequency change) reaches both alike. On a 2-core
// VM, rounds of the interleaved `npm run bench` move ±15 µs per request; the difference between the
// two processes of a round here moves ±1–6 µs, so changes worth a few µs show. Use it to decide a
// change, and `npm run bench` for what the gateway does against nginx.
//   A, B: checkouts with gateway/dist built (the repository root, a git worktree, ...).
//   --rounds=N (default 12), --duration=S (default 4), --node=24|20 (default 24, the images' Node)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ensureBinary } from './lib/apt.mjs';
import { startConsul } from './lib/consul.mjs';
import { ensureNode, imageNodeVersion } from './lib/node24.mjs';
import { killAllNow, sleep, stopAll, which } from './lib/proc.mjs';
import { cpuSecondsOf } from './lib/procstat.mjs';
import { startTarget, startUpstreams } from './lib/targets.mjs';
import { runWrk } from './lib/wrk.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const say = (msg) => console.error(`[ab] ${msg}`);
const USAGE = 'usage: npm run bench:ab -- [--rounds=N] [--duration=S] [--node=24|20] DIR_A DIR_B';

let tmp;
process.on('exit', () => {
  killAllNow();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

let code = 0;
try {
  await main();
} catch (err) {
  say(`ERROR: ${err.message}`);
  code = 1;
} finally {
  await stopAll();
}
process.exit(code);

function options() {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: { rounds: { type: 'string' }, duration: { type: 'string' }, node: { type: 'string' } },
  });
  const int = (v, def, min, max, name) => {
    const n = v === undefined ? def : Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}\n${USAGE}`);
    return n;
  };
  if (positionals.length !== 2) throw new Error(USAGE);
  const node = values.node ?? '24';
  if (!['24', '20'].includes(node)) throw new Error(`--node must be 24 or 20\n${USAGE}`);
  const dirs = positionals.map((d) => path.resolve(d));
  for (const d of dirs) if (!fs.existsSync(path.join(d, 'gateway/dist/index.js'))) throw new Error(`${d}/gateway/dist/index.js is missing: build it first`);
  return { dirs, node, rounds: int(values.rounds, 12, 2, 200, 'rounds'), duration: int(values.duration, 4, 1, 60, 'duration') };
}

async function main() {
  const o = options();
  if (os.cpus().length < 2 || !which('taskset')) throw new Error('needs 2 cores and taskset: both builds on one core, the load on the other');
  const consulBin = which('consul');
  if (!consulBin) throw new Error('consul not found (see `npm run bench -- --help`)');
  // This runner goes with the load, off the builds' core.
  execFileSync(which('taskset'), ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const bins = { wrk: ensureBinary('wrk', 'wrk', say) };
  const nodes = { [o.node]: o.node === '24' ? ensureNode(imageNodeVersion(ROOT), say) : process.execPath };
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'consul-stack-ab-'));
  fs.mkdirSync(path.join(tmp, 'consul'));
  const consul = await startConsul({ bin: consulBin, dataDir: path.join(tmp, 'consul'), logFile: path.join(tmp, 'consul.log'), cpu: 1 });
  const ups = await startUpstreams('minimal', { root: ROOT, dir: tmp, cpu: 1, consulAddr: consul.addr });
  const ids = [];
  for (const p of ups.ports) ids.push(await consul.register(ups.service, p));
  const ctx = { root: ROOT, dir: tmp, set: 'minimal', bins, nodes, consul, cpu: 0, connections: 25 };
  const targets = [];
  for (const [i, root] of o.dirs.entries()) {
    const row = { id: `gateway-${'ab'[i]}`, family: 'gateway', node: o.node, root, label: `${'AB'[i]} ${root}` };
    targets.push(await startTarget(row, ups, ctx));
  }
  say(`A = ${o.dirs[0]}\n[ab] B = ${o.dirs[1]}\n[ab] node ${o.node}, ${o.rounds} rounds of ${o.duration} s, after a 2 × 4 s warm-up`);
  // Which load starts first alternates by round, so neither build always gets the head start.
  const both = async (duration, bFirst) => {
    const run = (t) => runWrk({ bin: bins.wrk, url: t.url, duration, connections: 25, cpu: 1 });
    const [first, second] = bFirst ? [run(targets[1]), run(targets[0])] : [run(targets[0]), run(targets[1])];
    const [x, y] = await Promise.all([first, second]);
    return bFirst ? [y, x] : [x, y];
  };
  for (let w = 0; w < 2; w++) await both(4, w % 2 === 1);
  const diffs = [];
  console.log('| round | A µs/req | B µs/req | B − A | A req | B req |\n|--:|--:|--:|--:|--:|--:|');
  for (let r = 1; r <= o.rounds; r++) {
    await consul.pass(ids);
    const cpu0 = targets.map((t) => cpuSecondsOf(t.pids()));
    const runs = await both(o.duration, r % 2 === 0);
    const us = targets.map((t, i) => ((cpuSecondsOf(t.pids()) - cpu0[i]) * 1e6) / runs[i].requests);
    for (const [i, m] of runs.entries()) if (m.non2xx || m.socketErrors || !m.requests) throw new Error(`round ${r}: ${'AB'[i]} had ${m.non2xx} non-2xx, ${m.socketErrors} socket errors, ${m.requests} requests`);
    diffs.push(us[1] - us[0]);
    console.log(`| ${r} | ${us[0].toFixed(1)} | ${us[1].toFixed(1)} | ${(us[1] - us[0]).toFixed(1)} | ${runs[0].requests} | ${runs[1].requests} |`);
    await sleep(300);
  }
  const sorted = [...diffs].sort((a, b) => a - b);
  const median = (sorted[(sorted.length - 1) >> 1] + sorted[sorted.length >> 1]) / 2;
  const mean = diffs.reduce((a, b) => a + b, 0) / diffs.length;
  const sd = Math.sqrt(diffs.reduce((a, d) => a + (d - mean) ** 2, 0) / (diffs.length - 1));
  console.log(
    `\nB − A, CPU µs per request: median ${median.toFixed(1)}, mean ${mean.toFixed(1)} ± ${(sd / Math.sqrt(diffs.length)).toFixed(1)} (standard error), ` +
      `B cheaper in ${diffs.filter((d) => d < 0).length} of ${diffs.length} rounds`,
  );
}
