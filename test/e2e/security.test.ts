import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ComposeStack, docker } from '../lib/compose.js';
import { sleep, waitFor } from '../lib/ports.js';
import { recordFigure } from '../lib/figures.js';

// The stack's own protections, on the real compose file (README.md, "Stack security"):
// registrator reaches Docker only through socket-proxy on the internal network docker-api, the
// proxy answers 403 to all but registrator's reads, Consul denies by default and each role has
// its own least-privilege token, and the four app containers are hardened.
// Probe requests run in throwaway containers of CONSUL_IMAGE (it has curl) that share
// registrator's network namespace, so they ask exactly what registrator could ask.
const PROJECT = 'security-e2e';
const CURL_IMAGE = process.env.CONSUL_IMAGE || 'hashicorp/consul:1.22';
const WEB_IMAGE = process.env.WEB_IMAGE || 'consul-stack/web-service:local';
const HARDENED = ['gateway', 'web-service', 'registrator', 'socket-proxy'];
const PROBE = `${PROJECT}-probe`;

interface Inspect {
  Id: string;
  Name: string;
  Config: { User: string; Labels: Record<string, string> };
  HostConfig: {
    ReadonlyRootfs: boolean;
    CapDrop: string[] | null;
    SecurityOpt: string[] | null;
    Memory: number;
    PidsLimit: number | null;
    PortBindings: Record<string, Array<{ HostIp: string; HostPort: string }> | null> | null;
  };
  NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
  Mounts: Array<{ Type: string; Name?: string; Destination: string; RW: boolean }>;
}

async function inspect(ids: string[]): Promise<Inspect[]> {
  return JSON.parse((await docker(['inspect', ...ids])).stdout) as Inspect[];
}

/** When each of the project's containers started and first answered its healthcheck, in ms from `t0`: what a slow start waited on. */
async function startTimeline(t0: number): Promise<string> {
  const { stdout } = await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${PROJECT}`]);
  const ids = stdout.split('\n').filter(Boolean);
  if (ids.length === 0) return '(no containers)';
  type State = { Name: string; State: { StartedAt: string; FinishedAt: string; ExitCode: number; Health?: { Log?: Array<{ Start: string; ExitCode: number }> } } };
  const all = JSON.parse((await docker(['inspect', ...ids])).stdout) as State[];
  const ms = (iso?: string) => (iso && !iso.startsWith('0001') ? `${Date.parse(iso) - t0} ms` : '-');
  return all
    .map((c) => {
      const healthy = c.State.Health?.Log?.find((l) => l.ExitCode === 0)?.Start;
      return `${c.Name.replace(/^\//, '')}: started ${ms(c.State.StartedAt)}, earliest healthy check kept ${ms(healthy)}, finished ${ms(c.State.FinishedAt)} (exit ${c.State.ExitCode})`;
    })
    .join('\n');
}

describe('stack security: socket proxy, Consul ACLs and container hardening', { timeout: 20 * 60_000 }, () => {
  let stack: ComposeStack;
  let registrator: string;
  let gatewayId: string;

  /** HTTP status codes of requests to the Docker API proxy, sent from registrator's network namespace. */
  async function fromRegistrator(reqs: Array<[method: string, path: string]>): Promise<number[]> {
    const script = reqs
      .map(([m, p]) => `curl -s -o /dev/null -m 10 -w '%{http_code}\\n' -X ${m} -H 'Content-Type: application/json' ${m === 'POST' ? `-d '{"Image":"${CURL_IMAGE}","Cmd":["id"]}'` : ''} 'http://socket-proxy:2375${p}'`)
      .join('; ');
    const { stdout } = await docker(['run', '--rm', '--network', `container:${registrator}`, '-e', 'SERVICE_IGNORE=true', '--entrypoint', 'sh', CURL_IMAGE, '-c', script], 60_000);
    return stdout.trim().split('\n').map(Number);
  }

  before(async () => {
    stack = await ComposeStack.forTests(PROJECT, { REGISTRATOR_RESYNC: '5' });
    await docker(['rm', '-f', PROBE]).catch(() => undefined);
    await stack.down();
    await stack.compose(['build'], { timeoutMs: 900_000 });
    const t0 = Date.now();
    await stack.up();
    const upMs = Date.now() - t0;
    recordFigure('e2e-security', 'up --wait → all healthy, hardened stack with ACL bootstrap (ms)', upMs);
    // ACL bootstrap must not make start-up slow (README "Stack security"); typically 13-16 s.
    if (upMs >= 30_000) assert.fail(`up --wait took ${upMs} ms; per container, from the up call:\n${await startTimeline(t0)}`);
    registrator = (await stack.containers('registrator'))[0]!.id;
    gatewayId = (await stack.containers('gateway'))[0]!.id;
    await stack.waitRouted(2);
  });

  after(async () => {
    await docker(['rm', '-f', PROBE]).catch(() => undefined);
    if (process.env.E2E_KEEP !== '1') await stack?.down();
  });

  test('1. through the proxy registrator gets ping, version, events, containers list and inspect', async () => {
    const until = Math.floor(Date.now() / 1000);
    const codes = await fromRegistrator([
      ['GET', '/_ping'],
      ['GET', '/version'],
      ['GET', '/containers/json'],
      ['GET', '/v1.41/containers/json?all=1'],
      ['GET', `/containers/${gatewayId}/json`],
      ['GET', `/v1.41/containers/${gatewayId.slice(0, 12)}/json`],
      ['GET', `/events?since=${until - 60}&until=${until}`],
    ]);
    assert.deepEqual(codes, [200, 200, 200, 200, 200, 200, 200]);
  });

  test('2. everything else is 403: create, exec, images, secrets, info, logs, export, delete', async () => {
    const reqs: Array<[string, string]> = [
      ['POST', '/containers/create'],
      ['POST', '/v1.41/containers/create'],
      ['POST', `/containers/${gatewayId}/exec`],
      ['GET', '/images/json'],
      ['GET', '/secrets'],
      ['GET', '/info'],
      ['GET', `/containers/${gatewayId}/logs?stdout=1`],
      ['GET', `/containers/${gatewayId}/export`],
      ['GET', `/containers/${gatewayId}/archive?path=/etc`],
      ['GET', '/containers/..%2Fimages/json'],
      ['DELETE', `/containers/${gatewayId}?force=1`],
      ['POST', `/containers/${gatewayId}/kill`],
      ['GET', '/networks'],
      ['GET', '/volumes'],
    ];
    const codes = await fromRegistrator(reqs);
    assert.deepEqual(
      codes.map((c, i) => `${reqs[i]![0]} ${reqs[i]![1]} ${c}`),
      reqs.map(([m, p]) => `${m} ${p} 403`),
    );
    const [gw] = await inspect([gatewayId]);
    assert.ok(gw, 'the gateway container still exists');
  });

  test('3. the proxy publishes nothing and shares only the internal network, with registrator alone', async () => {
    const [proxy] = await stack.containers('socket-proxy');
    assert.ok(proxy);
    const [pi] = await inspect([proxy.id]);
    assert.deepEqual(Object.keys(pi!.NetworkSettings.Networks), [`${PROJECT}_docker-api`]);
    assert.equal(Object.values(pi!.HostConfig.PortBindings ?? {}).flat().filter(Boolean).length, 0, 'no published port');
    const net = JSON.parse((await docker(['network', 'inspect', `${PROJECT}_docker-api`])).stdout)[0] as { Internal: boolean; Containers: Record<string, { Name: string }> };
    assert.equal(net.Internal, true);
    const members = Object.values(net.Containers).map((c) => c.Name).sort();
    assert.deepEqual(members, [`${PROJECT}-registrator-1`, `${PROJECT}-socket-proxy-1`]);
  });

  test('4. from the gateway and a web container the proxy is neither resolvable nor reachable', async () => {
    const [proxy] = await stack.containers('socket-proxy');
    const ip = Object.values((await inspect([proxy!.id]))[0]!.NetworkSettings.Networks)[0]!.IPAddress.trim();
    assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
    const [web] = await stack.containers('web-service');
    for (const c of [gatewayId, web!.id]) {
      const dns = await docker(['exec', c, 'node', '-e', "require('dns').lookup('socket-proxy',(e,a)=>console.log(e?e.code:'RESOLVED '+a))"]);
      assert.match(dns.stdout.trim(), /^(ENOTFOUND|EAI_AGAIN)$/, `${c}: socket-proxy resolves: ${dns.stdout}`);
      const tcp = await docker([
        'exec', c, 'node', '-e',
        `const s=require('net').connect(2375,'${ip}');s.setTimeout(3000,()=>{console.log('TIMEOUT');process.exit(0)});` +
          `s.on('connect',()=>{console.log('CONNECTED');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)})`,
      ]);
      assert.notEqual(tcp.stdout.trim(), 'CONNECTED', `${c} reached ${ip}:2375`);
    }
  });

  test('5. a container started by hand with SERVICE_NAME is registered, routed, and deregistered on stop', async () => {
    await docker([
      'run', '-d', '--name', PROBE, '--network', `${PROJECT}_mesh`,
      '-e', 'SERVICE_NAME=service-secprobe', '-e', 'SERVICE_CHECK_HTTP=/health', '-e', 'SERVICE_CHECK_INTERVAL=1s',
      '-e', 'SERVICE_CHECK_TIMEOUT=1s', '-e', 'CONSUL_HTTP_ADDR=consul-agent:8500', '-e', 'DRAIN_GRACE_MS=500',
      WEB_IMAGE,
    ]);
    const id = `registrator:${PROBE}:3000`;
    await waitFor('the probe routed', async () => (await stack.routed('service-secprobe')).some((r) => r.id === id), 30_000, 100);
    const res = await fetch(`${stack.gatewayUrl}/service-secprobe/`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { service: string }).service, 'service-secprobe');
    await docker(['stop', '-t', '5', PROBE]);
    await waitFor('the probe unrouted', async () => (await stack.routed('service-secprobe')).length === 0, 30_000, 100);
    await waitFor(
      'the probe deregistered from Consul',
      async () => (await stack.json<unknown[]>(`${stack.consulUrl}/v1/catalog/service/service-secprobe`)).length === 0,
      30_000,
      200,
    );
  });

  /** Runs a script with node inside a running container (the app images have node, not curl). */
  async function nodeIn(container: string, script: string): Promise<string> {
    return (await docker(['exec', container, 'node', '-e', script], 30_000)).stdout.trim();
  }
  /** Status codes of calls to the Consul agent from inside a container, with its own token file or none. */
  const consulCalls = (calls: Array<[method: string, path: string, withToken: boolean, body?: string]>) => `
    const t = require('fs').readFileSync('/consul-acl/token', 'utf8').trim();
    const calls = ${JSON.stringify(calls)};
    (async () => {
      const out = [];
      for (const [m, p, withToken, body] of calls) {
        const r = await fetch('http://consul-agent:8500' + p, { method: m, headers: withToken ? { 'X-Consul-Token': t } : {}, body });
        const text = await r.text();
        out.push(r.status + (m === 'GET' && r.ok ? ':' + JSON.parse(text).length : ''));
      }
      console.log(JSON.stringify(out));
    })();`;

  test('6. Consul ACLs: from a web container, no write without a token or with its own; its token reads health', async () => {
    const [web] = await stack.containers('web-service');
    const evil = JSON.stringify({ ID: 'rogue-web', Name: 'service-web', Address: '10.255.255.1', Port: 80 });
    const calls: Array<[string, string, boolean, string?]> = [
      ['PUT', '/v1/agent/service/register', false, evil],
      ['PUT', '/v1/agent/service/register', true, evil],
      ['PUT', `/v1/agent/service/deregister/${encodeURIComponent(ComposeStack.serviceId(web!))}`, true],
      ['GET', '/v1/kv/anything', false],
      ['GET', '/v1/kv/anything', true],
      ['PUT', '/v1/kv/x', false, 'v'],
      ['PUT', '/v1/kv/x', true, 'v'],
      ['GET', '/v1/health/service/service-web', true],
    ];
    const codes = JSON.parse(await nodeIn(web!.id, consulCalls(calls))) as string[];
    assert.deepEqual(
      codes.map((c, i) => `${calls[i]![0]} ${calls[i]![1]} ${calls[i]![2] ? 'web token' : 'no token'} ${c}`),
      calls.map(([m, p, t], i) => `${m} ${p} ${t ? 'web token' : 'no token'} ${i === calls.length - 1 ? '200:2' : '403'}`),
    );
    // the gateway's token only reads, too
    const gw = JSON.parse(await nodeIn(gatewayId, consulCalls([['PUT', '/v1/agent/service/register', true, evil], ['GET', '/v1/health/service/service-web', true]]))) as string[];
    assert.deepEqual(gw, ['403', '200:2']);
    await stack.waitRouted(2);
    assert.ok((await stack.routed()).every((r) => r.address !== '10.255.255.1'), 'no rogue instance routed');
  });

  test('7. registrator registers only the names its token allows: service-* and gateway', async () => {
    const name = `${PROJECT}-rogue`;
    await docker(['rm', '-f', name]).catch(() => undefined);
    try {
      await docker(['run', '-d', '--name', name, '--network', `${PROJECT}_mesh`, '-e', 'SERVICE_NAME=rogue', '-e', 'SERVICE_CHECK_HTTP=/health',
        '-e', 'SERVICE_CHECK_INTERVAL=1s', '-e', 'CONSUL_HTTP_ADDR=consul-agent:8500', WEB_IMAGE]);
      // registrator sees it at once and again at every resync (5 s here): give it two
      await waitFor('registrator to try and be refused', async () => /register failed:.*rogue.*403/.test((await stack.compose(['logs', '--since', '2m', 'registrator'])).stdout), 20_000, 500);
      await sleep(6_000);
      const services = await stack.json<Record<string, string[]>>(`${stack.consulUrl}/v1/catalog/services`);
      assert.ok(!('rogue' in services), `rogue registered: ${Object.keys(services)}`);
      assert.ok('service-web' in services && 'gateway' in services, `${Object.keys(services)}`);
      const res = await fetch(`${stack.gatewayUrl}/rogue/`);
      assert.equal(res.status, 404);
    } finally {
      await docker(['rm', '-f', name]).catch(() => undefined);
    }
  });

  test('8. tokens: one volume per reader, gossip encrypted, a second up changes nothing', async () => {
    const mounts = async (service: string) =>
      (await inspect((await stack.containers(service)).map((c) => c.id))).map((c) => c.Mounts.filter((m) => m.Type === 'volume').map((m) => `${m.Name}:${m.Destination}:${m.RW ? 'rw' : 'ro'}`).sort());
    assert.deepEqual(await mounts('gateway'), [[`${PROJECT}_consul-acl-gateway:/consul-acl:ro`]]);
    assert.deepEqual(await mounts('registrator'), [[`${PROJECT}_consul-acl-registrator:/consul-acl:ro`]]);
    for (const m of await mounts('web-service')) assert.deepEqual(m, [`${PROJECT}_consul-acl-web:/consul-acl:ro`]);
    const self = await stack.json<{ Stats: { serf_lan: { encrypted: string } } }>(`${stack.consulUrl}/v1/agent/self`);
    assert.equal(self.Stats.serf_lan.encrypted, 'true', 'gossip is encrypted');
    // a second `up` runs consul-keygen and consul-acl-init again: both must change nothing
    await stack.up();
    const logs = (await stack.compose(['logs', '--no-log-prefix', 'consul-keygen', 'consul-acl-init'])).stdout;
    assert.match(logs, /consul-keygen: gossip key present/);
    const line = logs.split('\n').filter((l) => l.includes('ACLs provisioned')).pop();
    assert.ok(line, logs);
    // (compose may prefix the line with terminal control codes)
    const r = JSON.parse(line.slice(line.indexOf('{'))) as { bootstrapped: boolean; created: string[]; updated: string[]; agents: string[] };
    assert.deepEqual([r.bootstrapped, r.created, r.updated, r.agents.length], [false, [], [], 4]);
    recordFigure('e2e-security', 'consul-acl-init re-run (ms)', (r as unknown as { ms: number }).ms);
    // without a token the UI/API shows nothing
    const anon = (await (await fetch(`${stack.consulUrl}/v1/catalog/services`)).json()) as Record<string, unknown>;
    assert.deepEqual(anon, {});
  });

  test('9. docker inspect: every hardened container is read-only, capability-free, no-new-privileges, memory- and pids-limited', async () => {
    const ids = (await Promise.all(HARDENED.map((s) => stack.containers(s)))).flat().map((c) => c.id);
    assert.equal(ids.length, 5, 'gateway, 2 web, registrator, socket-proxy');
    for (const c of await inspect(ids)) {
      const h = c.HostConfig;
      const name = c.Name;
      assert.equal(h.ReadonlyRootfs, true, `${name} ReadonlyRootfs`);
      assert.deepEqual(h.CapDrop, ['ALL'], `${name} CapDrop`);
      assert.ok(h.SecurityOpt?.includes('no-new-privileges:true'), `${name} SecurityOpt ${h.SecurityOpt}`);
      assert.ok(h.Memory > 0, `${name} memory limit`);
      assert.ok((h.PidsLimit ?? 0) > 0, `${name} pids limit`);
      const service = c.Config.Labels['com.docker.compose.service'];
      if (service === 'gateway' || service === 'web-service') assert.equal(c.Config.User, 'node', name);
      if (service === 'registrator') assert.equal(c.Config.User, '65534:65534', name);
    }
    // Only the gateway's port is published beyond loopback.
    const all = await stack.compose(['ps', '-q']);
    const everyId = all.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
    for (const c of await inspect(everyId)) {
      const open = Object.values(c.HostConfig.PortBindings ?? {}).flat().filter((b) => b && b.HostIp !== '127.0.0.1');
      if (c.Config.Labels['com.docker.compose.service'] !== 'gateway') assert.deepEqual(open, [], `${c.Name} publishes beyond loopback`);
    }
  });

  test('10. measured under load: memory and pids stay well inside the limits', async () => {
    const ids = (await Promise.all(HARDENED.map((s) => stack.containers(s)))).flat();
    let stop = false;
    let ok = 0;
    const worker = async () => {
      while (!stop) {
        const r = await fetch(`${stack.gatewayUrl}/service-web/`).catch(() => undefined);
        if (r?.ok) ok++;
        await r?.arrayBuffer().catch(() => undefined);
      }
    };
    const workers = Array.from({ length: 32 }, worker);
    await sleep(4_000);
    const { stdout } = await docker(['stats', '--no-stream', '--format', '{{json .}}', ...ids.map((c) => c.id)]);
    stop = true;
    await Promise.all(workers);
    assert.ok(ok > 0, 'requests succeeded under load');
    const limits = new Map((await inspect(ids.map((c) => c.id))).map((c) => [c.Id, c.HostConfig]));
    for (const line of stdout.trim().split('\n')) {
      const s = JSON.parse(line) as { ID: string; Name: string; MemUsage: string; PIDs: string };
      const c = ids.find((i) => i.id.startsWith(s.ID))!;
      const used = parseSize(s.MemUsage.split('/')[0]!);
      const pids = Number(s.PIDs);
      const h = limits.get(c.id)!;
      recordFigure('e2e-security', `${c.service} under load: memory MiB / limit`, `${(used / 2 ** 20).toFixed(1)} / ${h.Memory / 2 ** 20}`);
      recordFigure('e2e-security', `${c.service} under load: pids / limit`, `${pids} / ${h.PidsLimit}`);
      assert.ok(used < h.Memory * 0.75, `${s.Name}: ${s.MemUsage} is near its limit`);
      assert.ok(pids < (h.PidsLimit ?? 0) * 0.75, `${s.Name}: ${pids} pids is near its limit ${h.PidsLimit}`);
    }
  });
});

/** "47.03MiB" → bytes. */
function parseSize(s: string): number {
  const m = /^([\d.]+)\s*([KMG]i?B|B)$/i.exec(s.trim());
  if (!m) throw new Error(`size ${s}`);
  const mult: Record<string, number> = { b: 1, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, kb: 1e3, mb: 1e6, gb: 1e9 };
  return Number(m[1]) * mult[m[2]!.toLowerCase()]!;
}
