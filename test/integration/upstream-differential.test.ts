import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ConsulAgent } from '../lib/consul.js';
import { startGateway, type ServiceProcess } from '../lib/procs.js';
import { waitFor } from '../lib/ports.js';
import { HostileUpstream } from '../lib/hostile-upstream.js';
import { runCase, type DiffEnv, type HostileCase, type Mode } from '../lib/differential.js';
import { HOSTILE_CASES } from '../lib/hostile-cases.js';
import { runFuzz } from '../lib/upstream-fuzz.js';
import { recordFigure } from '../lib/figures.js';

// The gateway's own HTTP/1.1 client against hostile instances, with llhttp
// (node:http) as the oracle: a real Consul agent, a real gateway process that
// found the instances in Consul, raw TCP instances writing crafted bytes, and
// raw client connections whose answers llhttp reads. docs/upstream-client.md.

const WORKERS = 3;
const FUZZ_SEED = 20_251_205;
const FUZZ_SECONDS = Number(process.env.FUZZ_SECONDS ?? 40);

let consul: ConsulAgent;
let gw: ServiceProcess;
const hostiles: HostileUpstream[] = [];
let benign: HostileUpstream;
const envs: DiffEnv[] = [];

before(async () => {
  consul = await new ConsulAgent({ mode: 'dev' }).start();
  benign = await new HostileUpstream().start();
  await consul.register({ container: 'benign', name: 'benign', address: '127.0.0.1', port: benign.port });
  for (let w = 0; w < WORKERS; w++) {
    const h = await new HostileUpstream().start();
    hostiles.push(h);
    await consul.register({ container: `hostile-${w}`, name: `hostile-${w}`, address: '127.0.0.1', port: h.port });
  }
  gw = await startGateway(consul.httpAddr, {
    // A known order, so the passive-health test below counts the bad instance's failures exactly
    // (the default balancer would mostly avoid it after its first failure instead).
    LB_POLICY: 'round_robin',
    UPSTREAM_TIMEOUT_MS: '2000',
    UPSTREAM_BODY_TIMEOUT_MS: '800',
    UPSTREAM_KEEPALIVE_MS: '1000',
  });
  await waitFor('all services routed', async () => {
    for (const s of ['benign', ...hostiles.map((_, w) => `hostile-${w}`)]) {
      const r = await fetch(`${gw.url}/${s}/ok/ready`);
      await r.arrayBuffer();
      if (r.status !== 200) return false;
    }
    return true;
  }, 30_000);
  for (let w = 0; w < WORKERS; w++) {
    envs.push({ gatewayPort: gw.port, upstream: hostiles[w]!, service: `hostile-${w}`, benign: 'benign', upstreamTimeoutMs: 2000, bodyTimeoutMs: 800, oracleWaitMs: 600 });
  }
});

after(async () => {
  await gw?.stop().catch(() => gw.kill());
  for (const h of hostiles) await h.stop();
  await benign?.stop();
  await consul?.stop();
});

/** Runs jobs on the workers, one at a time on each (a worker's instance never serves two cases at once). */
async function onWorkers<T>(jobs: T[], run: (env: DiffEnv, job: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(envs.map(async (env) => {
    while (next < jobs.length) await run(env, jobs[next++]!);
  }));
}

describe('hostile upstream responses, the gateway against llhttp', () => {
  test(`the table: ${HOSTILE_CASES.length} answers × (two requests on a kept-alive connection, a pipelining client)`, { timeout: 600_000 }, async () => {
    const jobs: Array<[HostileCase, Mode, number]> = [];
    HOSTILE_CASES.forEach((c, i) => (['keepalive', 'pipelined'] as Mode[]).forEach((m) => jobs.push([c, m, i])));
    const failures: string[] = [];
    const classes = new Map<string, number>();
    let refused = 0;
    await onWorkers(jobs, async (env, [c, mode, i]) => {
      const r = await runCase(env, c, `t${i}-${mode}`, mode);
      if (mode === 'keepalive') classes.set(c.cls, (classes.get(c.cls) ?? 0) + 1);
      if (mode === 'keepalive' && r.gateway === 'refused') refused++;
      if (r.violations.length) failures.push(`#${i} [${c.cls}] ${c.name} (${mode}; llhttp: ${r.oracle.accepted ? `read ${r.oracle.status}` : `refused: ${r.oracle.why}`}; gateway: ${r.gateway})\n    ${r.violations.join('\n    ')}`);
    });
    const summary = [...classes].map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(`differential table: ${HOSTILE_CASES.length} cases (${summary}), ${jobs.length} runs; the gateway refused ${refused}`);
    recordFigure('integration', 'upstream differential table: cases / runs', `${HOSTILE_CASES.length} / ${jobs.length}`);
    assert.deepEqual(failures, [], `\n${failures.join('\n')}`);
  });

  test(`seeded mutation fuzz (seed ${FUZZ_SEED}, ${FUZZ_SECONDS} s)`, { timeout: (FUZZ_SECONDS + 120) * 1000 }, async () => {
    const gatewayLog = (id: string) => JSON.stringify(gw.logs.filter((l) => l.requestId === id));
    const r = await runFuzz(envs, { seed: FUZZ_SEED, seconds: FUZZ_SECONDS, log: (s) => console.log(s), gatewayLog });
    recordFigure('integration', `upstream fuzz: cases in ${FUZZ_SECONDS} s (seed ${FUZZ_SEED})`, String(r.cases));
    assert.deepEqual(r.failures, [], `\n${r.failures.join('\n')}`);
    // Enough cases that the run means something even on a loaded machine.
    assert.ok(r.cases >= 1_000, `only ${r.cases} cases ran`);
  });

  test('every upstream connection a case used is closed once idle past UPSTREAM_KEEPALIVE_MS', async () => {
    await waitFor('no open upstream connection', () => hostiles.every((h) => h.openCaseConns().length === 0), 5_000);
  });
});

describe('an instance that answers with bytes no client can trust', () => {
  test('502 JSON at once, never retried, and counted against it: ejected after EJECT_AFTER_FAILURES, with the kind named in explain', { timeout: 60_000 }, async () => {
    // Two instances of one service: one answers every request with CL + TE, the other plainly.
    const good = await new HostileUpstream().start();
    const sockets = new Set<net.Socket>();
    const splitting = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n';
    // Every request to the bad one, whatever its path (Consul's check included), gets the splitting answer...
    const badServer = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
      s.on('data', (d) => {
        if (d.toString().startsWith('GET /health')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        else s.write(splitting);
      });
    });
    await new Promise<void>((r) => badServer.listen(0, '127.0.0.1', r));
    const badPort = (badServer.address() as net.AddressInfo).port;
    try {
      await consul.register({ container: 'splitter', name: 'mixed', address: '127.0.0.1', port: badPort });
      await consul.register({ container: 'plain', name: 'mixed', address: '127.0.0.1', port: good.port });
      await waitFor('both instances routed', async () => {
        const body = (await (await fetch(`${gw.url}/_gateway/services`)).json()) as { services: Record<string, unknown[]> };
        return (body.services.mixed ?? []).length === 2;
      }, 30_000);
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) {
        const t0 = Date.now();
        const res = await fetch(`${gw.url}/mixed/ok/${i}`);
        const body = await res.text();
        statuses.push(res.status);
        if (res.status === 502) {
          assert.ok(Date.now() - t0 < 1_000, 'refused at once, not at UPSTREAM_TIMEOUT_MS');
          assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
          const json = JSON.parse(body) as { error: string; service: string };
          assert.equal(json.error, 'upstream_unreachable');
          assert.equal(json.service, 'mixed');
          assert.equal(res.headers.get('x-upstream-instance'), null);
        } else {
          assert.equal(res.status, 200);
          assert.equal(body, `ok ${i}`);
        }
      }
      // Round robin: the bad instance fails 3 times in a row (EJECT_AFTER_FAILURES' default), then is left out.
      assert.equal(statuses.filter((s) => s === 502).length, 3, statuses.join(' '));
      const explain = (await (await fetch(`${gw.url}/_gateway/explain/mixed`)).json()) as { instances: Array<{ id: string; ejection: { kinds: Record<string, number> } | null }> };
      const splitter = explain.instances.find((i) => i.id.includes('splitter'))!;
      assert.deepEqual(splitter.ejection?.kinds, { invalid_response: 3 });
      assert.equal(explain.instances.find((i) => i.id.includes('plain'))!.ejection, null);
    } finally {
      await consul.deregister(`registrator:splitter:${badPort}`).catch(() => undefined);
      await consul.deregister(`registrator:plain:${good.port}`).catch(() => undefined);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => badServer.close(() => r()));
      await good.stop();
    }
  });
});
