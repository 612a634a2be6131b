#!/usr/bin/env node
// Measures discovery at scale against a real Consul: starts a one-server agent (or `-dev`)
// on free loopback ports (default limits, so http_max_conns_per_client = 200),
// registers S services x I instances the way registrator does (agent API, one
// check each), then runs the shared Discovery in a child process following the
// whole catalog, as the gateway does, and reports:
//   - first sync time (watchCatalog() -> 'synced')
//   - TCP connections the child holds to the agent, at rest
//   - child CPU and memory at rest
//   - change -> routing latency for one instance's check flipping (median, p99)
//   - change -> routed latency for each kind of single change: an instance added and removed
//     with a passing check and without any check, and an address change (re-registered on
//     another port), each on a service nothing changed recently (cold) and repeated on one
//     service (repeat); RSS after them
// --nodes N spreads the instances over N nodes, as registrator on N hosts would: the agent's own
// node (agent API, where every change is made) and N-1 nodes registered through the catalog API.
// With --nodes 1 (the default, and the worst case for discovery's node scan) every instance sits
// on the agent's node, so a change there costs one read of all of them: `agentNodeRead` reports
// how long that read takes (Consul's answer and its parsing: the floor of a change found by the node
// scan), and `agentServicesRead` the read of the agent's own registrations that discovery makes
// first (the agent's hint, Consul's answer alone: the floor of a change made through the agent).
// Everything it starts it stops; the whole run is bounded by --deadline-s.
//
//   npm run build -w shared
//   node scripts/scale-discovery.mjs [--services 500] [--instances 4] [--changes 60]
//        [--adds 10] [--nodes 1] [--agent server|dev] [--sync-timeout-s 30] [--rest-s 10] [--deadline-s 240]
//        [--shared shared/dist/index.js] [--json]
import { fork } from 'node:child_process';
import http from 'node:http';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { connectionsTo } from './lib/connections.mjs';
import {
  clockTicks, CommitWatch, consulVersion, cpuTicks, Inbox, inParallel, now, request, round, sleep, startConsul, summary, waitFor,
} from './lib/scale-consul.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values: args } = parseArgs({
  options: {
    services: { type: 'string', default: '500' },
    instances: { type: 'string', default: '4' },
    changes: { type: 'string', default: '60' },
    adds: { type: 'string', default: '10' },
    nodes: { type: 'string', default: '1' },
    agent: { type: 'string', default: 'server' },
    'sync-timeout-s': { type: 'string', default: '30' },
    'rest-s': { type: 'string', default: '10' },
    'deadline-s': { type: 'string', default: '240' },
    shared: { type: 'string', default: join(root, 'shared/dist/index.js') },
    json: { type: 'boolean', default: false },
    child: { type: 'string' }, // internal: run the discovery side against this agent
    'probe-services': { type: 'string' },
    'log-level': { type: 'string', default: 'warn' }, // the child's discovery log (stdout)
  },
});

// A single change is one made once discovery's loops have settled: each blocking-query loop goes
// at consul-template's pace (at most 10 answers a second, 3 back to back; shared/src/consul/blocking-query.ts), so changes
// closer than that are a burst, and a burst's later changes wait for the loop by design.
const SETTLE_MS = 300;


// ---------------------------------------------------------------- child side

/** The discovery under test, through the same public API the gateway uses. */
async function runChild(addr, sharedPath, probes) {
  const shared = await import(pathToFileURL(resolve(sharedPath)).href);
  const { z } = await import('zod');
  const config = shared.parseEnv(z.object(shared.discoveryEnv), { CONSUL_HTTP_ADDR: addr });
  // ConsulPool: its name before issue #22, so that --shared can point at an older build to compare with.
  const agents = new (shared.ConsulAgents ?? shared.ConsulPool)(config.CONSUL_HTTP_ADDR);
  const discovery = new shared.Discovery(agents, shared.discoveryOptions(config, ['consul']), shared.createLogger('scale', args['log-level']));
  const last = new Map();
  const instances = (t) => [...t.services.values()].reduce((n, l) => n + l.length, 0);
  // Reports each change of a probed service's instance count, timestamped at once.
  const probed = probes.split(',');
  discovery.on('change', (t) => {
    for (const service of probed) {
      const list = t.services.get(service);
      const n = list?.length ?? -1;
      const members = (list ?? []).map((i) => `${i.id}@${i.port}`).sort();
      const sig = members.join(',');
      if (last.get(service) !== sig) {
        last.set(service, sig);
        process.send({ type: 'probe', service, at: now(), n, members });
      }
    }
  });
  discovery.on('synced', () => {
    const t = discovery.table;
    process.send({ type: 'synced', at: now(), services: t.services.size, instances: instances(t) });
  });
  process.on('message', (m) => {
    if (m.type === 'stats') {
      const t = discovery.table;
      const mem = process.memoryUsage();
      process.send({ type: 'stats', services: t.services.size, instances: instances(t), synced: discovery.synced, rss: mem.rss, heapUsed: mem.heapUsed, state: discovery.state() });
    } else if (m.type === 'probe-also') {
      // One more service to report on, from its members now.
      if (!probed.includes(m.service)) probed.push(m.service);
      last.set(m.service, (discovery.table.services.get(m.service) ?? []).map((i) => `${i.id}@${i.port}`).sort().join(','));
      process.send({ type: 'probe-added', service: m.service });
    } else if (m.type === 'stop') {
      discovery.stop();
      agents.close();
      process.exit(0);
    }
  });
  process.send({ type: 'start', at: now() });
  discovery.watchCatalog();
}

// --------------------------------------------------------------- parent side

async function main() {
  const S = Number(args.services);
  const I = Number(args.instances);
  const deadline = Date.now() + Number(args['deadline-s']) * 1000;
  const cleanup = [];
  const runCleanup = async () => {
    while (cleanup.length) await cleanup.pop()().catch(() => undefined);
  };
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => void runCleanup().then(() => process.exit(130)));
  const overall = setTimeout(() => {
    console.error(`deadline of ${args['deadline-s']} s reached: stopping`);
    void runCleanup().then(() => process.exit(2));
  }, Number(args['deadline-s']) * 1000);

  if (!['dev', 'server'].includes(args.agent)) throw new Error(`--agent must be dev or server, got ${args.agent}`);
  const N = Number(args.nodes);
  if (!Number.isInteger(N) || N < 1) throw new Error(`--nodes must be a whole number >= 1, got ${args.nodes}`);
  const report = { services: S, instancesPerService: I, nodes: N, agent: args.agent, consul: consulVersion(), node: process.version, shared: args.shared };
  try {
    const consul = await startConsul(args.agent);
    cleanup.push(() => consul.stop());
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    cleanup.push(async () => agent.destroy());
    const api = (method, path, body) => request(agent, consul.port, method, path, body);

    log(`consul ${report.consul} (${args.agent === 'dev' ? '-dev' : 'one server, not -dev'}) on 127.0.0.1:${consul.port}; registering ${S} x ${I} instances on ${N} node(s)`);
    const t0 = Date.now();
    const name = (s) => `svc-${String(s).padStart(4, '0')}`;
    // Two different services, inside the catalog at any --services >= 2.
    const probe = name(Math.min(7, S - 1));
    const addTo = name(S >= 12 ? 11 : Math.max(0, S - 2));
    const jobs = [];
    for (let s = 0; s < S; s++) for (let i = 0; i < I; i++) jobs.push([s, i]);
    // Node 0 is the agent's (its checks are TTL checks the flips drive); the probe lives there.
    const nodeOf = (s, i) => (name(s) === probe ? 0 : (s * I + i) % N);
    await inParallel(jobs, 8, ([s, i]) => {
      const svc = { ID: `${name(s)}-${i}`, Name: name(s), Address: '127.0.0.1', Port: 20000 + i };
      const k = nodeOf(s, i);
      if (k === 0) return api('PUT', '/v1/agent/service/register', { ...svc, Check: { CheckID: `check-${name(s)}-${i}`, TTL: '1h', Status: 'passing' } });
      return api('PUT', '/v1/catalog/register', {
        Node: `host-${k}`,
        Address: `127.0.1.${k % 250}`,
        Service: { ID: svc.ID, Service: svc.Name, Address: svc.Address, Port: svc.Port },
        Check: { CheckID: `check-${name(s)}-${i}`, Name: 'service check', Status: 'passing', ServiceID: svc.ID },
      });
    });
    await waitFor('catalog to list every service', async () => Object.keys(JSON.parse(await api('GET', '/v1/catalog/services'))).length >= S, 60_000);
    report.registerMs = Date.now() - t0;
    // What one read of the agent's node costs (the node scan's read for a change there: Consul's answer and
    // its parsing), and one of the agent's own registrations (the agent's hint, read first: Consul's answer
    // alone, since discovery compares it with the last as bytes and parses only what differs).
    const nodeReads = [];
    const hintReads = [];
    let onNode = 0;
    for (let k = 0; k < 7; k++) {
      let t = now();
      onNode = Object.keys(JSON.parse(await api('GET', `/v1/catalog/node/${consul.node}?stale`)).Services ?? {}).length;
      nodeReads.push(now() - t);
      t = now();
      await api('GET', '/v1/agent/services');
      hintReads.push(now() - t);
    }
    report.agentNodeRead = { services: onNode, ...summary(nodeReads) };
    report.agentServicesRead = summary(hintReads);
    agent.destroy(); // the measurement counts the child's connections only; ours are gone
    log(`registered in ${report.registerMs} ms; one read of the agent's node (${onNode} services): median ${report.agentNodeRead.median} ms; of the agent's own registrations: median ${report.agentServicesRead.median} ms`);
    const child = fork(fileURLToPath(import.meta.url), ['--child', `127.0.0.1:${consul.port}`, '--shared', args.shared, '--probe-services', `${probe},${addTo}`, '--log-level', args['log-level']], {
      stdio: ['ignore', args['log-level'] === 'warn' ? 'ignore' : 'inherit', 'inherit', 'ipc'],
    });
    cleanup.push(async () => {
      if (child.exitCode === null) {
        child.send({ type: 'stop' });
        await Promise.race([new Promise((r) => child.once('exit', r)), sleep(2000)]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });
    const inbox = new Inbox(child);
    const start = await inbox.next((m) => m.type === 'start', 10_000);
    const synced = await inbox.next((m) => m.type === 'synced', Number(args['sync-timeout-s']) * 1000).catch(() => null);
    const stats0 = await stats(child, inbox);
    report.firstSync = synced
      ? { ms: round(synced.at - start.at), services: synced.services, instances: synced.instances }
      : { ms: null, note: `not synced within ${args['sync-timeout-s']} s`, servicesInTable: stats0.services, instancesInTable: stats0.instances, reasons: stats0.state.reasons };
    log(synced ? `first sync ${report.firstSync.ms} ms (${synced.services} services, ${synced.instances} instances)` : `NOT synced within ${args['sync-timeout-s']} s: ${stats0.services} services in the table`);

    // At rest: nothing changes in Consul for --rest-s seconds.
    await sleep(2000);
    const conns0 = connectionsTo(child.pid, consul.port);
    const cpu0 = cpuTicks(child.pid);
    const restS = Number(args['rest-s']);
    await sleep(restS * 1000);
    const cpu1 = cpuTicks(child.pid);
    const conns1 = connectionsTo(child.pid, consul.port);
    const rest = await stats(child, inbox);
    report.atRest = {
      connectionsToAgent: Math.max(conns0.mine, conns1.mine),
      allConnectionsToAgent: Math.max(conns0.all, conns1.all),
      cpuPercentOfOneCore: round(((cpu1 - cpu0) / clockTicks() / restS) * 100, 2),
      rssMB: round(rest.rss / 2 ** 20, 1),
      heapUsedMB: round(rest.heapUsed / 2 ** 20, 1),
    };
    log(`at rest: ${report.atRest.connectionsToAgent} connections to the agent, ${report.atRest.cpuPercentOfOneCore} % CPU, RSS ${report.atRest.rssMB} MB`);

    const commits = new CommitWatch(consul.port);
    cleanup.push(async () => commits.stop());
    // From each change's commit (Consul announcing it) to the table holding it, per series and kind.
    const fromCommit = new Map();
    const sinceCommit = async (label, t, seenAt) => {
      if (label === undefined) return; // an untimed change
      const c = await commits.after(t);
      if (!fromCommit.has(label)) fromCommit.set(label, []);
      fromCommit.get(label).push(c === undefined || seenAt === undefined ? Infinity : seenAt - c);
    };

    // One instance's check flips: fail, pass, fail, ... each must reach the table.
    const flips = [];
    const refused = [];
    const flipId = `check-${probe}-1`;
    let expected;
    for (let k = 0; k < Number(args.changes) && Date.now() < deadline - 20_000; k++) {
      const fail = k % 2 === 0;
      expected = fail ? I - 1 : I;
      inbox.drop((m) => m.type === 'probe');
      const t = now();
      // With the agent's per-client connection limit exhausted, Consul resets even this call.
      if (!(await api('PUT', `/v1/agent/check/${fail ? 'fail' : 'pass'}/${flipId}`).then(() => true, (err) => (refused.push(err.message), false)))) {
        flips.push(Infinity);
        continue;
      }
      const seen = await inbox.next((m) => m.type === 'probe' && m.service === probe && m.n === expected, 5000).catch(() => null);
      flips.push(seen ? seen.at - t : Infinity);
      await sinceCommit('check', t, seen?.at);
      await sleep(SETTLE_MS + Math.random() * 100);
    }
    report.checkChangeToRoutedMs = summary(flips);
    report.checkCommitToRoutedMs = summary(fromCommit.get('check') ?? []);
    log(`check change -> routed: ${JSON.stringify(report.checkChangeToRoutedMs)}; from its commit: ${JSON.stringify(report.checkCommitToRoutedMs)}`);

    // Single changes of every kind, one at a time, each timed from the call that makes it in Consul
    // to the table holding it (the first routed request; for a removal, the last one): an instance
    // added and removed with a passing check and without any check (registrator's default), and
    // an instance re-registered on another port (an address change). Two series:
    //  - repeat: every change on one service, as a scale-up or a deploy makes them. Discovery reads
    //    the services whose instances changed last at once, so after the first this is that path.
    //  - cold: every change on a service picked at random that nothing changed recently: before
    //    each, two untimed changes on two other services push it out of "changed last", so the node
    //    scan has to find it. This is the "any single change" figure.
    // With --nodes > 1, cold also has changes on another node than the agent's.
    const repeat = { addWithCheck: [], removeWithCheck: [], addWithoutCheck: [], removeWithoutCheck: [], addressChange: [] };
    const cold = { addWithCheck: [], removeWithCheck: [], addWithoutCheck: [], removeWithoutCheck: [], addressChange: [] };
    if (N > 1) Object.assign(cold, { addOnOtherNode: [], removeOnOtherNode: [] });
    const watched = new Set([probe, addTo]);
    const watch = async (service) => {
      if (watched.has(service)) return;
      child.send({ type: 'probe-also', service });
      await inbox.next((m) => m.type === 'probe-added' && m.service === service, 5000);
      watched.add(service);
    };
    const labels = new Map();
    for (const [series, kinds] of [['cold', cold], ['repeat', repeat]]) for (const [k, list] of Object.entries(kinds)) labels.set(list, `${series} ${k}`);
    const timed = async (list, service, call, pred) => {
      inbox.drop((m) => m.type === 'probe');
      const t = now();
      if (!(await call().then(() => true, (err) => (refused.push(err.message), false)))) return void list.push(Infinity);
      const seen = await inbox.next((m) => m.type === 'probe' && m.service === service && pred(m.members), 5000).catch(() => null);
      list.push(seen ? seen.at - t : Infinity);
      await sinceCommit(labels.get(list), t, seen?.at);
      await sleep(SETTLE_MS + Math.random() * 100);
    };
    const register = (service, id, port, check) =>
      api('PUT', '/v1/agent/service/register', { ID: id, Name: service, Address: '127.0.0.1', Port: port, ...(check ? { Check: { CheckID: `check-${id}`, TTL: '1h', Status: 'passing' } } : {}) });
    const has = (id, port) => (members) => members.includes(`${id}@${port}`);
    const lacks = (id) => (members) => !members.some((m) => m.startsWith(`${id}@`));
    const pick = (avoid) => {
      for (;;) {
        const s = name(Math.floor(Math.random() * S));
        if (s !== probe && s !== addTo && !avoid.includes(s)) return s;
      }
    };
    // Untimed changes on two other services, each awaited in the table; removed at the end.
    const fillers = [];
    const flush = async (target) => {
      for (let j = 0; j < 2; j++) {
        const s = pick([target]);
        await watch(s);
        const id = `${s}-filler-${fillers.length}`;
        const port = 26000 + fillers.length;
        inbox.drop((m) => m.type === 'probe');
        await register(s, id, port, false);
        await inbox.next((m) => m.type === 'probe' && m.service === s && has(id, port)(m.members), 5000).catch(() => null);
        fillers.push(id);
      }
      await sleep(SETTLE_MS);
    };
    for (let k = 0; k < Number(args.adds) && Date.now() < deadline - 30_000; k++) {
      {
        const withCheck = `${addTo}-new-${k}`;
        const without = `${addTo}-nocheck-${k}`;
        // The cold series in between changed other services: one untimed change here first.
        await timed([], addTo, () => register(addTo, `${addTo}-warm-${k}`, 27000 + k, false), has(`${addTo}-warm-${k}`, 27000 + k));
        await api('PUT', `/v1/agent/service/deregister/${addTo}-warm-${k}`);
        await inbox.next((m) => m.type === 'probe' && m.service === addTo && lacks(`${addTo}-warm-${k}`)(m.members), 5000).catch(() => null);
        await sleep(SETTLE_MS);
        await timed(repeat.addWithCheck, addTo, () => register(addTo, withCheck, 21000 + k, true), has(withCheck, 21000 + k));
        await timed(repeat.addressChange, addTo, () => register(addTo, withCheck, 22000 + k, true), has(withCheck, 22000 + k));
        await timed(repeat.removeWithCheck, addTo, () => api('PUT', `/v1/agent/service/deregister/${withCheck}`), lacks(withCheck));
        await timed(repeat.addWithoutCheck, addTo, () => register(addTo, without, 23000 + k, false), has(without, 23000 + k));
        await timed(repeat.removeWithoutCheck, addTo, () => api('PUT', `/v1/agent/service/deregister/${without}`), lacks(without));
      }
      {
        const a = pick([]);
        const b = pick([a]);
        await watch(a);
        await watch(b);
        const withCheck = `${a}-cold-${k}`;
        const without = `${b}-cold-${k}`;
        // The fillers' own scans settle first, as a single change's would have to (see SETTLE_MS).
        const coldly = async (list, service, call, pred) => (await flush(service), await sleep(SETTLE_MS), timed(list, service, call, pred));
        await coldly(cold.addWithCheck, a, () => register(a, withCheck, 21000 + k, true), has(withCheck, 21000 + k));
        await coldly(cold.addressChange, a, () => register(a, withCheck, 22000 + k, true), has(withCheck, 22000 + k));
        await coldly(cold.removeWithCheck, a, () => api('PUT', `/v1/agent/service/deregister/${withCheck}`), lacks(withCheck));
        await coldly(cold.addWithoutCheck, b, () => register(b, without, 23000 + k, false), has(without, 23000 + k));
        await coldly(cold.removeWithoutCheck, b, () => api('PUT', `/v1/agent/service/deregister/${without}`), lacks(without));
        if (N > 1) {
          const c = pick([]);
          await watch(c);
          const other = `${c}-other-${k}`;
          const h = 1 + Math.floor(Math.random() * (N - 1));
          const service = { ID: other, Service: c, Address: '127.0.0.1', Port: 24000 + k };
          await coldly(cold.addOnOtherNode, c, () => api('PUT', '/v1/catalog/register', { Node: `host-${h}`, Address: `127.0.1.${h % 250}`, Service: service }), has(other, 24000 + k));
          await coldly(cold.removeOnOtherNode, c, () => api('PUT', '/v1/catalog/deregister', { Node: `host-${h}`, ServiceID: other }), lacks(other));
        }
      }
    }
    for (const id of fillers) await api('PUT', `/v1/agent/service/deregister/${id}`).catch(() => undefined);
    const summarise = (kinds) => Object.fromEntries(Object.entries(kinds).map(([k, v]) => [k, summary(v)]));
    report.changeToRoutedMs = { cold: summarise(cold), repeat: summarise(repeat) };
    const commitSeries = (series) => Object.fromEntries(Object.keys(series === 'cold' ? cold : repeat).map((k) => [k, summary(fromCommit.get(`${series} ${k}`) ?? [])]));
    report.commitToRoutedMs = { cold: commitSeries('cold'), repeat: commitSeries('repeat') };
    // "Any single change": every cold change of every kind, one distribution (its p99 is not just the slowest of 25).
    report.commitToRoutedMs.everyColdChange = summary(Object.keys(cold).flatMap((k) => fromCommit.get(`cold ${k}`) ?? []));
    const end = await stats(child, inbox);
    report.afterChanges = { rssMB: round(end.rss / 2 ** 20, 1), heapUsedMB: round(end.heapUsed / 2 ** 20, 1) };
    report.ourCallsRefusedByConsul = refused.length;
    for (const [series, kinds] of Object.entries(report.changeToRoutedMs))
      for (const [k, v] of Object.entries(kinds))
        log(`${series} ${k} -> routed: from the call ${JSON.stringify(v)}; from its commit ${JSON.stringify(report.commitToRoutedMs[series][k])}`);
    log(`every cold change, all kinds -> routed, from its commit: ${JSON.stringify(report.commitToRoutedMs.everyColdChange)}`);
    log(`RSS after the changes: ${report.afterChanges.rssMB} MB`);
  } finally {
    clearTimeout(overall);
    await runCleanup();
  }
  if (args.json) console.log(JSON.stringify(report));
  else console.log(JSON.stringify(report, null, 2));
}

async function stats(child, inbox) {
  child.send({ type: 'stats' });
  return inbox.next((m) => m.type === 'stats', 5000);
}

function log(msg) {
  console.error(`[scale] ${msg}`);
}

// Last, so every class and function above is initialised before it runs.
if (args.child) await runChild(args.child, args.shared, args['probe-services']);
else await main();
