import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ComposeStack, run } from '../lib/compose.js';
import { LoadLoop, type Summary } from '../lib/load.js';
import { sleep, waitFor } from '../lib/ports.js';
import { recordFigure } from '../lib/figures.js';
import { inQuorum, TestSwarm, type SwarmNode, type Task } from '../lib/swarm.js';

// docker-stack.yml on a real 3-node Docker Swarm: three Docker-in-Docker nodes made by
// scripts/swarm/up.sh (all managers), the stack deployed by scripts/swarm/deploy.sh. Images come
// from the variables in .ci/images.env when set, as in the other e2e suites, and are copied into
// every node (no registry). The nodes have no IPVS here, so the gateway is published in host mode
// on its own node (README "Beyond one machine"); traffic goes to that node's address only.
// Bounds asserted below: what the design guarantees, with room for a loaded 2-core machine.
const DEPLOY_MAX_MS = 240_000; // deploy command → 3 instances routed: observed in the README
const SCALE_MAX_MS = 90_000; // scale 3→9 → all 9 routed (Node start + first passing check each)
const PASS_TO_ROUTED_MAX_MS = 5_000; // Consul has all 9 passing → gateway routes all 9 (polled through docker exec)
const DRAIN_LEAVE_MAX_MS = 30_000; // drain → the node's instances out of the table
const KILL_LEAVE_MAX_MS = 45_000; // node killed → its instances out of the table (serf failure detection)
const KILL_FAILURES_MAX = 40; // at 20 rps: what was in flight to the dead node, plus slack
// Tail tolerance (docs/tail-tolerance.md): a dead node's addresses answer nothing (no RST), so a request
// that meets one waits one per-try timeout (at most 1 s), then a hedge answers. Goal 1,500 ms; room for CI.
const KILL_SLOWEST_MAX_MS = 2_000;
const RPS = 20;
const WEB = 'service-web';

const images = {
  CONSUL_IMAGE: process.env.CONSUL_IMAGE ?? 'hashicorp/consul:1.22',
  REGISTRATOR_IMAGE: process.env.REGISTRATOR_IMAGE ?? 'fayrus/registrator:v9.2.0',
  SOCKET_PROXY_IMAGE: process.env.SOCKET_PROXY_IMAGE ?? 'tecnativa/docker-socket-proxy:v0.4.1',
  GATEWAY_IMAGE: process.env.GATEWAY_IMAGE ?? 'consul-stack/gateway:local',
  WEB_IMAGE: process.env.WEB_IMAGE ?? 'consul-stack/web-service:local',
};

type Routed = Array<{ id: string; address: string; node: string }>;

describe('docker-stack.yml on a 3-node swarm', { timeout: 20 * 60_000 }, () => {
  let swarm: TestSwarm;
  let gatewayNode: SwarmNode;
  let drainVictim: SwarmNode;
  let killVictim: SwarmNode;
  const suiteStart = Date.now();

  const gatewayUrl = () => `http://${gatewayNode.ip}:3000`;
  async function routed(): Promise<Routed> {
    const res = await fetch(`${gatewayUrl()}/_gateway/services`, { signal: AbortSignal.timeout(5_000) });
    const body = (await res.json()) as { services: Record<string, Routed> };
    return body.services[WEB] ?? [];
  }
  /** Waits until the gateway routes exactly the running web tasks, `count` of them; returns them. */
  async function waitRoutedTasks(count: number, timeoutMs: number): Promise<Task[]> {
    return waitFor(
      `the gateway routing exactly the ${count} running web tasks`,
      async () => {
        const [tasks, r] = await Promise.all([swarm.tasks('web-service'), routed()]);
        const want = tasks.map((t) => t.ip).sort();
        const got = r.map((x) => x.address).sort();
        return tasks.length === count && JSON.stringify(want) === JSON.stringify(got) ? tasks : undefined;
      },
      timeoutMs,
      250,
    );
  }
  /** A drained node back to active: its agent, registrator, socket-proxy and Consul server return, 3 voters again. */
  async function backToActive(node: SwarmNode): Promise<void> {
    const t0 = Date.now();
    await swarm.docker(['node', 'update', '--availability', 'active', node.name]);
    for (const svc of ['consul-agent', 'registrator', 'socket-proxy', 'consul-server']) {
      await waitFor(`${svc} back on ${node.name}`, async () => (await swarm.tasks(svc)).some((t) => t.node === node.name), 120_000, 1_000);
    }
    let seen = '';
    await waitFor('3 voters again, each in contact with the leader', async () => {
      const [r, servers] = await Promise.all([
        swarm.consul<{ Servers: Array<{ Node: string; Address: string; Voter: boolean; Leader: boolean }> }>('/v1/operator/raft/configuration'),
        swarm.raftServers(),
      ]);
      seen = JSON.stringify({ raft: r.Servers, servers });
      const voters = new Set(r.Servers.filter((x) => x.Voter).map((x) => x.Address.split(':')[0]));
      const leaders = new Set(servers.filter(inQuorum).map((x) => x.leader || `${x.ip}:8300`));
      // each running server a voter, in contact with one same leader. Asked of each server itself, not
      // of one agent's member list: see raftServers (a rejoined server can stay "leaving" in gossip).
      return voters.size === 3 && servers.length === 3 && servers.every((x) => voters.has(x.ip) && inQuorum(x)) && leaders.size === 1;
      // Once over 120 s on CI's Consul 1.8.7, with the leader lost meanwhile (its raft has no
      // pre-vote, so a returning server can unseat the leader); the figure below says how long.
    }, 240_000, 1_000).catch((err: Error) => {
      throw new Error(`${err.message}; last seen: ${seen}`);
    });
    recordFigure('swarm', 'drain: back to active → 3 voters again (ms)', Date.now() - t0);
  }
  const nodesOf = (tasks: Task[]) => new Set(tasks.map((t) => t.node));
  const countBy = (tasks: Task[]) => Object.fromEntries([...nodesOf(tasks)].sort().map((n) => [n, tasks.filter((t) => t.node === n).length]));
  const loop = () => new LoadLoop({ url: `${gatewayUrl()}/${WEB}/`, rps: RPS, maxDurationMs: 180_000, timeoutMs: 15_000 }).start();
  /** On a failure, what swarm did (restarts, errors per task) goes to the log before the teardown. */
  const diagnosed = (fn: () => Promise<void>) => async () => {
    try {
      await fn();
    } catch (err) {
      for (const svc of ['gateway', 'consul-agent', 'consul-server', 'registrator', 'web-service']) {
        const out = await swarm?.docker(['service', 'ps', '--format', '{{.Name}} {{.Node}} {{.DesiredState}} {{.CurrentState}} {{.Error}}', swarm.svc(svc)]).catch((e: Error) => ({ stdout: e.message }));
        console.log(`# service ps ${svc}:\n${out?.stdout.replace(/^/gm, '#   ')}`);
      }
      // the gateway's warnings (failed attempts with their code, retries, ejections): why a request failed
      const logs = await swarm?.docker(['service', 'logs', '--raw', '--since', '10m', swarm.svc('gateway')]).catch((e: Error) => ({ stdout: e.message }));
      const warnings = (logs?.stdout ?? '').split('\n').filter((l) => /"level":"(warn|error|fatal)"/.test(l)).slice(-40);
      console.log(`# gateway warnings (last ${warnings.length}):\n${warnings.join('\n').replace(/^/gm, '#   ')}`);
      throw err;
    }
  };
  const brief = (s: Summary) => ({ requests: s.requests, failures: s.failures, errors: s.errors, p99: s.p99, max: s.max });

  before(async () => {
    await TestSwarm.down();
    // the app images, built as the compose suites build them (cached: seconds)
    await new ComposeStack('swarm-e2e').compose(['build', 'gateway', 'web-service'], { timeoutMs: 900_000 });
    for (const img of Object.values(images)) {
      await run('docker', ['image', 'inspect', img], { timeoutMs: 30_000 }).catch(() => {
        throw new Error(`image ${img} is not on this machine: build it (.ci/images.sh, docker compose build) or set its variable`);
      });
    }
    const t0 = Date.now();
    swarm = await TestSwarm.up(Object.values(images));
    recordFigure('swarm', '3 nodes up, swarm formed, images loaded (ms)', Date.now() - t0);
  });

  after(async () => {
    if (process.env.E2E_KEEP !== '1') await TestSwarm.down();
    recordFigure('swarm', 'suite wall time, image build check to teardown (s)', Math.round((Date.now() - suiteStart) / 1000));
  });

  test('1. deploy: an agent, registrator and socket-proxy on every node, 3 voters on 3 nodes, web on every node routed', diagnosed(async () => {
    const t0 = Date.now();
    await swarm.deploy({
      ...images,
      SWARM_RESOLVE_IMAGE: 'never',
      // no IPVS on these nodes (README): host-mode port on the gateway's node, no VIP
      GATEWAY_PUBLISH_MODE: 'host',
      GATEWAY_ENDPOINT_MODE: 'dnsrr',
      WEB_REPLICAS: '3',
      REGISTRATOR_RESYNC: '5',
    });
    const gw = await waitFor('the gateway task running', async () => (await swarm.tasks('gateway'))[0], 240_000, 1_000);
    gatewayNode = swarm.node(gw.node);
    const webs = await waitRoutedTasks(3, DEPLOY_MAX_MS - (Date.now() - t0));
    const deployMs = Date.now() - t0;
    recordFigure('swarm', 'deploy → 3 web instances routed (ms)', deployMs);
    assert.ok(deployMs <= DEPLOY_MAX_MS, `${deployMs} ms`);

    const all = swarm.nodes.map((n) => n.name).sort();
    for (const svc of ['consul-agent', 'registrator', 'socket-proxy']) {
      const tasks = await waitFor(`${svc} on every node`, async () => {
        const t = await swarm.tasks(svc);
        return t.length === 3 ? t : undefined;
      }, 120_000, 1_000);
      assert.deepEqual([...nodesOf(tasks)].sort(), all, `${svc}: one per node`);
    }
    // every node's agent is a member under its node's name
    const members = await swarm.consul<Array<{ Name: string; Status: number; Tags: Record<string, string> }>>('/v1/agent/members');
    for (const n of all) assert.ok(members.some((m) => m.Name === n && m.Status === 1 && m.Tags.role === 'node'), `agent ${n} alive: ${JSON.stringify(members.map((m) => [m.Name, m.Status]))}`);

    // three voters, on three different nodes: raft peer address → consul-server task → node
    const servers = await swarm.tasks('consul-server');
    const raft = await waitFor('3 raft voters', async () => {
      const r = await swarm.consul<{ Servers: Array<{ Node: string; Address: string; Voter: boolean; Leader: boolean }> }>('/v1/operator/raft/configuration');
      return r.Servers.filter((s) => s.Voter).length === 3 && r.Servers.some((s) => s.Leader) ? r : undefined;
    }, 60_000, 1_000);
    const voterNodes = raft.Servers.map((s) => servers.find((t) => t.ip === s.Address.split(':')[0])?.node);
    assert.deepEqual(voterNodes.slice().sort(), all, `voters on: ${JSON.stringify(raft.Servers)} tasks: ${JSON.stringify(servers)}`);

    // the gateway routes to every node's instance; the answering container is mapped to its node
    assert.deepEqual([...nodesOf(webs)].sort(), all, 'spread: one web instance per node');
    const answered = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const body = (await (await fetch(`${gatewayUrl()}/${WEB}/`, { signal: AbortSignal.timeout(5_000) })).json()) as { hostname: string; ip: string };
      const t = webs.find((w) => w.containerId.startsWith(body.hostname) && w.ip === body.ip);
      assert.ok(t, `answer from ${body.hostname} ${body.ip} is a running task`);
      answered.add(t.node);
    }
    assert.deepEqual([...answered].sort(), all, 'answers from every node');
    // registrator registered each under its own node's agent: the Consul node is the task's node
    for (const r of await routed()) assert.equal(r.node, webs.find((w) => w.ip === r.address)?.node, `${r.id} on its own node's agent`);

    // victims for 3. and 4.: neither runs the gateway; the kill victim is not the control manager
    const others = swarm.nodes.filter((n) => n !== gatewayNode);
    killVictim = others.find((n) => n !== swarm.nodes[swarm.control])!;
    drainVictim = others.find((n) => n !== killVictim)!;
    recordFigure('swarm', 'placement', { gateway: gatewayNode.name, drain: drainVictim.name, kill: killVictim.name });
  }));

  test('2. scale web 3 → 9: all routed, spread over the nodes', diagnosed(async () => {
    assert.ok(gatewayNode && drainVictim && killVictim, 'needs the deployed stack of test 1');
    const t0 = Date.now();
    await swarm.docker(['service', 'scale', '-d', `${swarm.svc('web-service')}=9`]);
    let passingAt = 0;
    const tasks = await waitFor('9 routed', async () => {
      const [t, r] = await Promise.all([swarm.tasks('web-service'), routed()]);
      if (!passingAt) {
        const h = await swarm.consul<unknown[]>(`/v1/health/service/${WEB}?passing`);
        if (h.length === 9) passingAt = Date.now();
      }
      const want = t.map((x) => x.ip).sort();
      return t.length === 9 && JSON.stringify(want) === JSON.stringify(r.map((x) => x.address).sort()) ? t : undefined;
    }, SCALE_MAX_MS, 200);
    const routedAt = Date.now();
    const ms = routedAt - t0;
    recordFigure('swarm', 'scale 3→9: command → all 9 routed (ms)', ms);
    recordFigure('swarm', 'scale 3→9: Consul 9 passing (seen) → 9 routed (ms)', passingAt ? Math.max(0, routedAt - passingAt) : 'routed first');
    recordFigure('swarm', 'scale 3→9: instances per node', countBy(tasks));
    assert.ok(ms <= SCALE_MAX_MS, `${ms} ms`);
    if (passingAt) assert.ok(routedAt - passingAt <= PASS_TO_ROUTED_MAX_MS, `${routedAt - passingAt} ms`);
    assert.equal(nodesOf(tasks).size, 3, `spread: ${JSON.stringify(countBy(tasks))}`);
    for (const n of Object.values(countBy(tasks))) assert.ok(n >= 2, `spread: ${JSON.stringify(countBy(tasks))}`);
  }));

  test('3. drain a node under load: its instances move and leave the table, 0 failed requests', diagnosed(async () => {
    assert.ok(gatewayNode && drainVictim && killVictim, 'needs the deployed stack of test 1');
    const before = await swarm.tasks('web-service');
    const leaving = before.filter((t) => t.node === drainVictim.name).map((t) => t.ip);
    assert.ok(leaving.length > 0, 'the drained node runs web instances');
    // Whether the drained node holds the Consul leader changes the timing (a new election first).
    const leader = (await swarm.consul<string>('/v1/status/leader')).split(':')[0];
    const leaderNode = (await swarm.tasks('consul-server')).find((t) => t.ip === leader)?.node;
    recordFigure('swarm', 'drain: the drained node holds the Consul leader', leaderNode === drainVictim.name);
    const load = loop();
    await sleep(2_000);
    const t0 = Date.now();
    await swarm.docker(['node', 'update', '--availability', 'drain', drainVictim.name]);
    // The node comes back even when an assertion fails, so test 4 starts from 3 Consul voters.
    let passed = false;
    try {
      await waitFor('drained instances out of the table', async () => !(await routed()).some((r) => leaving.includes(r.address)), DRAIN_LEAVE_MAX_MS, 100);
      const leftMs = Date.now() - t0;
      const after = await waitRoutedTasks(9, 90_000);
      const movedMs = Date.now() - t0;
      await sleep(2_000);
      const s = await load.stop();
      recordFigure('swarm', 'drain: drain → its instances out of the table (ms)', leftMs);
      recordFigure('swarm', 'drain: drain → 9 routed again elsewhere (ms)', movedMs);
      recordFigure('swarm', 'drain: load', { ...brief(s), rps: RPS, seconds: Math.round((movedMs + 4_000) / 1000) });
      assert.ok(!nodesOf(after).has(drainVictim.name), 'nothing runs on the drained node');
      assert.equal(s.failures, 0, `failed requests: ${JSON.stringify(s.errors)}`);
      assert.ok(s.requests >= RPS * 5, `${s.requests} requests`);
      passed = true;
    } finally {
      if (!passed) await load.stop();
      await backToActive(drainVictim).catch((err: Error) => {
        if (passed) throw err;
        console.log(`# back to active failed too: ${err.message}`);
      });
    }
  }));

  test('4. kill a whole node under load: its instances leave the table, few failures, Consul keeps its quorum', diagnosed(async () => {
    assert.ok(gatewayNode && drainVictim && killVictim, 'needs the deployed stack of test 1');
    const before = await swarm.tasks('web-service');
    const dead = before.filter((t) => t.node === killVictim.name).map((t) => t.ip);
    assert.ok(dead.length > 0, `the node to kill runs web instances: ${JSON.stringify(countBy(before))}`);
    assert.ok((await swarm.tasks('consul-server')).some((t) => t.node === killVictim.name), 'the node to kill runs a Consul server');
    const load = loop();
    await sleep(2_000);
    const t0 = Date.now();
    // SIGKILL to the node container: every process on the node dies at once, nothing leaves Consul gracefully
    await run('docker', ['kill', killVictim.name], { timeoutMs: 30_000 });
    await waitFor('the dead node\'s instances out of the table', async () => !(await routed()).some((r) => dead.includes(r.address)), KILL_LEAVE_MAX_MS, 100);
    const leftMs = Date.now() - t0;
    await sleep(3_000);
    const s = await load.stop();
    recordFigure('swarm', 'kill: node killed → its instances out of the table (ms)', leftMs);
    recordFigure('swarm', 'kill: load', { ...brief(s), rps: RPS, instancesOnDeadNode: dead.length });

    // Consul: a leader, reads answer, the dead node's server is one voter of three
    const leader = await waitFor('a Consul leader', async () => (await swarm.consul<string>('/v1/status/leader')) || undefined, 30_000, 500);
    assert.match(leader, /^\d+\.\d+\.\d+\.\d+:8300$/);
    const catalog = await swarm.consul<Record<string, string[]>>('/v1/catalog/services');
    assert.ok(WEB in catalog, 'catalog reads work');
    // the quorum as the servers see it (raftServers says why not the member list); the dead
    // node's server may still be listed as a running task, and does not answer
    const servers = await waitFor('two servers in the quorum', async () => {
      const all = await swarm.raftServers();
      return all.filter(inQuorum).length === 2 ? all : undefined;
    }, 30_000, 1_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; servers: ${JSON.stringify(await swarm.raftServers())}`);
    });
    recordFigure('swarm', 'kill: Consul servers in the quorum / running', `${servers.filter(inQuorum).length}/${servers.length}`);
    assert.ok(servers.filter(inQuorum).every((x) => x.node !== killVictim.name), JSON.stringify(servers));
    // gossip tells every agent of the failure within seconds; this one (on the control node) may be the last to hear
    await waitFor('the dead node\'s agent not alive in the control node\'s member list', async () => {
      const members = await swarm.consul<Array<{ Name: string; Status: number }>>('/v1/agent/members');
      return members.some((m) => m.Name === killVictim.name && m.Status !== 1);
    }, 30_000, 1_000);

    assert.ok(s.failures <= KILL_FAILURES_MAX, `${s.failures} failed requests: ${JSON.stringify(s.errors)}`);
    assert.ok(s.max <= KILL_SLOWEST_MAX_MS, `slowest request ${s.max} ms`);
    assert.ok(leftMs <= KILL_LEAVE_MAX_MS, `${leftMs} ms`);
    // the survivors keep serving: every routed instance is on a live node
    const r = await routed();
    assert.ok(r.length > 0 && r.every((x) => x.node !== killVictim.name), JSON.stringify(r));
  }));
});
