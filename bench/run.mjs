// `npm run bench`: the gateway side by side with nginx, HAProxy, a raw Node proxy and no proxy at
// all, on the same upstreams and load, in one run. `--help` for the options. Wiring only: the
// parts live in bench/lib/.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBinary } from './lib/apt.mjs';
import { consulVersion, startConsul } from './lib/consul.mjs';
import { haproxyVersion } from './lib/haproxy.mjs';
import { nginxVersion } from './lib/nginx.mjs';
import { ensureNode, imageNodeVersion } from './lib/node24.mjs';
import { USAGE, parseOptions, planRows } from './lib/options.mjs';
import { isStopping, killAllNow, stopAll, which } from './lib/proc.mjs';
import { header, table } from './lib/report.mjs';
import { runSet } from './lib/set.mjs';
import { imageNodeFlags, SETS } from './lib/targets.mjs';
import { wrkVersion } from './lib/wrk.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const t0 = Date.now();
const say = (msg) => console.error(`[bench +${Math.round((Date.now() - t0) / 1000)}s] ${msg}`);

let opts;
try {
  opts = parseOptions(process.argv.slice(2));
} catch (err) {
  console.error(`${err.message}\n\n${USAGE}`);
  process.exit(2);
}
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}

// Teardown on every path: normal end (finally), Ctrl-C / kill (signals), crash ('exit' is sync).
let tmp;
const removeTmp = () => tmp && fs.rmSync(tmp, { recursive: true, force: true });
process.on('exit', () => {
  killAllNow();
  removeTmp();
});
let signalled = null;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (signalled) process.exit(130); // a second Ctrl-C: the 'exit' handler SIGKILLs what is left
    signalled = sig;
    say(`${sig}: stopping everything`);
    // Stopping the children makes main() fail fast; this timer bounds it anyway.
    setTimeout(() => process.exit(130), 15_000).unref();
    void stopAll();
  });
}

let failures = [];
try {
  failures = await main();
} catch (err) {
  if (!isStopping()) say(`ERROR: ${err.message}`);
  failures = [err.message];
} finally {
  await stopAll();
  removeTmp();
}
process.exit(signalled ? 130 : failures.length ? 1 : 0);

async function main() {
  const sets = opts.set === 'both' ? ['minimal', 'web'] : [opts.set];
  for (const [file, what] of [['gateway/dist/index.js', 'gateway'], ['web-service/dist/index.js', 'web-service']]) {
    if (what === 'web-service' && !sets.includes('web')) continue;
    if (!fs.existsSync(path.join(ROOT, file))) throw new Error(`${file} is missing: run \`npm run build\` first`);
  }

  // Tools: wrk always; the rest only for the rows that need them.
  const bins = { wrk: ensureBinary('wrk', 'wrk', say) };
  const haproxyWanted = opts.haproxy === 'yes' || (opts.haproxy === 'if-installed' && which('haproxy'));
  let rows = planRows(opts, { nodes: [], haproxy: Boolean(haproxyWanted) });
  const failures = [];
  const warnings = []; // printed, but do not fail the run
  const nodes = {};
  if (opts.node !== '20') {
    const v = imageNodeVersion(ROOT);
    try {
      nodes['24'] = ensureNode(v, say);
    } catch (err) {
      say(`WARNING: ${err.message}. Continuing with Node ${process.versions.node} only.`);
      warnings.push(`node 24 rows skipped: ${err.message}`);
    }
  }
  if (opts.node !== '24') nodes['20'] = process.execPath;
  rows = planRows(opts, { nodes: Object.keys(nodes), haproxy: Boolean(haproxyWanted) });
  if (!rows.length) throw new Error('no rows to run (check --only and --node)');
  const need = (f) => rows.some((r) => r.family === f);
  if (need('nginx')) bins.nginx = ensureBinary('nginx', 'nginx-light', say);
  if (need('haproxy')) bins.haproxy = ensureBinary('haproxy', 'haproxy', say);
  if (need('gateway')) {
    bins.consul = which('consul');
    if (!bins.consul)
      throw new Error('consul not found: install Consul 1.8.7 (Debian bullseye: bash .ci/apt-sources.sh && apt-get install -y consul)');
  }

  // Core 0 for the proxy under test; everything else (this runner included) on core 1.
  const cores = os.cpus().length;
  const pin = cores >= 2 && which('taskset');
  const PROXY_CPU = pin ? 0 : undefined;
  const LOAD_CPU = pin ? 1 : undefined;
  if (pin) execFileSync(which('taskset'), ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  else say('WARNING: fewer than 2 cores or no taskset: nothing is pinned, proxy and load share the CPU');

  const conditions = {
    startedAt: new Date().toISOString(),
    cores,
    cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown',
    kernel: `${os.type()} ${os.release()}`,
    loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    pinning: pin ? 'proxy under test on core 0 (taskset -c 0); wrk, upstreams, Consul and this runner on core 1' : 'none',
    node: Object.fromEntries(
      Object.entries(nodes).map(([k, bin]) => [k, execFileSync(bin, ['-v'], { encoding: 'utf8' }).trim()]),
    ),
    versions: {
      wrk: wrkVersion(bins.wrk),
      nginx: bins.nginx ? nginxVersion(bins.nginx) : null,
      haproxy: bins.haproxy ? haproxyVersion(bins.haproxy) : null,
      consul: bins.consul ? consulVersion(bins.consul) : null,
    },
    gatewayNodeFlags: imageNodeFlags(ROOT),
    rounds: opts.rounds,
    duration: opts.duration,
    warmup: opts.warmup,
    connections: opts.connections,
  };

  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'consul-stack-bench-'));
  let consul = null;
  if (need('gateway')) {
    say('starting consul agent -dev');
    fs.mkdirSync(path.join(tmp, 'consul'));
    consul = await startConsul({ bin: bins.consul, dataDir: path.join(tmp, 'consul'), logFile: path.join(tmp, 'consul.log'), cpu: LOAD_CPU });
  }

  const results = {};
  for (const set of sets) {
    results[set] = await runSet(set, rows, { root: ROOT, tmp, opts, say, bins, nodes, consul, cpu: PROXY_CPU, loadCpu: LOAD_CPU, failures });
  }
  if (consul) await consul.stop();

  const out = [header(conditions)];
  for (const set of sets) out.push('', `### upstreams: ${set}, ${SETS[set].label}`, '', table(results[set]));
  for (const set of sets)
    for (const r of results[set])
      if (!r.failed && r.family !== 'direct' && r.upstreamsSeen.length < 2)
        warnings.push(`${set}/${r.label} answered from ${r.upstreamsSeen.join(', ') || 'no'} upstream(s) in 8 probes, not both`);
  if (warnings.length) out.push('', '**Warnings:**', ...warnings.map((w) => `- ${w}`));
  if (failures.length) out.push('', '**Failures:**', ...failures.map((f) => `- ${f.replaceAll('\n', '\n  ')}`));
  console.log(out.join('\n'));

  const resultsDir = path.join(ROOT, 'bench/results');
  fs.mkdirSync(resultsDir, { recursive: true });
  fs.writeFileSync(path.join(resultsDir, 'latest.json'), JSON.stringify({ conditions, options: opts, sets: results, warnings, failures }, null, 2));
  say(`results written to bench/results/latest.json (${failures.length ? `${failures.length} failure(s)` : 'no failures'})`);
  return failures;
}
