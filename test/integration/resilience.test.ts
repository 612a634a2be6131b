import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'undici';
import { ConsulAgent } from '../lib/consul.js';
import { startGateway, startWeb, type ServiceProcess } from '../lib/procs.js';
import { sleep, waitFor } from '../lib/ports.js';
import { LoadLoop } from '../lib/load.js';
import { recordFigure } from '../lib/figures.js';
import { routedIds } from '../lib/gateway.js';

/** Consul agents, services and a gateway for one scenario, all torn down after it. */
class Stack {
  consuls: ConsulAgent[] = [];
  webs: ServiceProcess[] = [];
  gw: ServiceProcess | undefined;

  async web(consul: ConsulAgent, container: string, env: Record<string, string> = {}) {
    const w = await startWeb(env);
    this.webs.push(w);
    const id = await consul.register({ container, name: 'service-web', address: '127.0.0.1', port: w.port });
    return { w, id };
  }

  async teardown() {
    await this.gw?.stop().catch(() => this.gw?.kill());
    for (const w of this.webs) w.kill();
    for (const c of this.consuls) await c.stop();
  }
}

describe('gateway resilience against a real Consul', () => {
  let stack = new Stack();
  afterEach(async () => {
    await stack.teardown();
    stack = new Stack();
  });
  after(async () => stack.teardown());

  test('an instance killed (SIGKILL) during a request loop: no failed GET after the kill', async () => {
    const consul = await new ConsulAgent({ mode: 'dev' }).start();
    stack.consuls.push(consul);
    const a = await stack.web(consul, 'web-a');
    await stack.web(consul, 'web-b');
    await stack.web(consul, 'web-c');
    stack.gw = await startGateway(consul.httpAddr);
    await waitFor('3 routed', async () => (await routedIds(stack.gw!)).length === 3);
    const loop = new LoadLoop({ url: `${stack.gw.url}/service-web/`, rps: 100, maxDurationMs: 20_000 }).start();
    await sleep(2000);
    const killedAt = Date.now();
    a.w.kill();
    await sleep(4000);
    const total = await loop.stop();
    const afterKill = loop.summary(killedAt);
    recordFigure('integration', 'SIGKILL during loop: failed requests / loop size', `${total.failures} / ${total.requests} (after kill: ${afterKill.failures} / ${afterKill.requests})`);
    assert.equal(afterKill.failures, 0, JSON.stringify(afterKill.errors));
    assert.equal(total.failures, 0, JSON.stringify(total.errors));
    assert.ok(total.requests >= 550, `loop ran ${total.requests} requests`);
    // The dead instance fails its check and leaves the table.
    await waitFor('killed instance removed', async () => !(await routedIds(stack.gw!)).includes(a.id), 5_000);
  });

  test('graceful stop (SIGTERM) during a request loop: no failed request at all', async () => {
    const consul = await new ConsulAgent({ mode: 'dev' }).start();
    stack.consuls.push(consul);
    const a = await stack.web(consul, 'web-a');
    await stack.web(consul, 'web-b');
    stack.gw = await startGateway(consul.httpAddr);
    await waitFor('2 routed', async () => (await routedIds(stack.gw!)).length === 2);
    const loop = new LoadLoop({ url: `${stack.gw.url}/service-web/`, rps: 100, maxDurationMs: 20_000 }).start();
    await sleep(1000);
    const t0 = Date.now();
    const code = await a.w.stop();
    const stoppedMs = Date.now() - t0;
    // registrator deregisters a container once it has died.
    await consul.deregister(a.id);
    await sleep(1000);
    const s = await loop.stop();
    recordFigure('integration', 'SIGTERM during loop: failed requests / loop size', `${s.failures} / ${s.requests}; exit ${code} after ${stoppedMs} ms`);
    assert.equal(code, 0);
    assert.ok(stoppedMs < 10_000, `took ${stoppedMs} ms to exit`);
    assert.equal(s.failures, 0, JSON.stringify(s.errors));
  });

  test('gateway SIGTERM: in-flight requests complete, kept-alive clients do not hold it up', async () => {
    const consul = await new ConsulAgent({ mode: 'dev' }).start();
    stack.consuls.push(consul);
    await stack.web(consul, 'web-a', { ENABLE_FAULTS: 'true' });
    const gw = await startGateway(consul.httpAddr);
    stack.gw = gw;
    await waitFor('routed', async () => (await routedIds(gw)).length === 1);
    const client = new Client(gw.url, { keepAliveTimeout: 60_000 });
    try {
      // An idle kept-alive connection, and a slow request in flight.
      await (await client.request({ path: '/service-web/', method: 'GET' })).body.text();
      const slow = client.request({ path: '/service-web/fault/delay?ms=1500', method: 'GET' }).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }));
      const idle = await fetch(`${gw.url}/service-web/`);
      await idle.text();
      await sleep(200);
      const t0 = Date.now();
      const exit = gw.stop();
      const r = await slow;
      const code = await exit;
      const ms = Date.now() - t0;
      recordFigure('integration', 'gateway SIGTERM with a 1.5 s request in flight: exit after (ms)', ms);
      assert.equal(r.status, 200, r.body);
      assert.equal(code, 0);
      assert.ok(ms < 3000, `exited ${ms} ms after SIGTERM`);
    } finally {
      await client.close().catch(() => undefined);
    }
  });

  test('Consul stopped: the gateway keeps routing on its last table and picks up changes once Consul is back', async () => {
    const consul = await new ConsulAgent({ mode: 'server' }).start();
    stack.consuls.push(consul);
    const a = await stack.web(consul, 'web-a');
    const b = await stack.web(consul, 'web-b');
    stack.gw = await startGateway(consul.httpAddr, { CONSUL_BACKOFF_MAX_MS: '1000' });
    await waitFor('2 routed', async () => (await routedIds(stack.gw!)).length === 2);
    const loop = new LoadLoop({ url: `${stack.gw.url}/service-web/`, rps: 50, maxDurationMs: 60_000 }).start();
    await sleep(500);
    await consul.kill();
    await sleep(3000);
    const health = await fetch(`${stack.gw.url}/_gateway/health`);
    const hb = (await health.json()) as { status: string; consul: { reachable: boolean; degraded: boolean } };
    assert.equal(health.status, 200, 'the gateway stays healthy on its last good table');
    assert.equal(hb.consul.reachable, false);
    assert.equal(hb.consul.degraded, true);
    assert.equal(hb.status, 'degraded');
    assert.deepEqual(await routedIds(stack.gw), [a.id, b.id].sort());
    const during = loop.summary();
    // Back, with its state: a change made now must reach the gateway.
    await consul.start();
    const restartedAt = Date.now();
    const c = await stack.web(consul, 'web-c');
    await waitFor('new instance routed after Consul came back', async () => (await routedIds(stack.gw!)).includes(c.id), 15_000);
    recordFigure('integration', 'Consul restarted → change routed (ms)', Date.now() - restartedAt);
    await waitFor('gateway no longer degraded', async () => ((await (await fetch(`${stack.gw!.url}/_gateway/health`)).json()) as { status: string }).status === 'ok', 10_000);
    const s = await loop.stop();
    recordFigure('integration', 'Consul down: failed requests / loop size', `${s.failures} / ${s.requests} (while down: ${during.failures} / ${during.requests})`);
    assert.equal(s.failures, 0, JSON.stringify(s.errors));
  });

  test('two agents in CONSUL_HTTP_ADDR: losing one fails over to the other with no failed request', async () => {
    const server = await new ConsulAgent({ mode: 'server' }).start();
    stack.consuls.push(server);
    const client = await new ConsulAgent({ mode: 'client', join: [server.serfLanAddr] }).start();
    stack.consuls.push(client);
    await stack.web(server, 'web-a');
    await stack.web(server, 'web-b');
    stack.gw = await startGateway(`${client.httpAddr},http://${server.httpAddr}`);
    const gw = stack.gw;
    // A fresh client agent may still be joining: the gateway fails over and backs off meanwhile.
    await waitFor('2 routed', async () => (await routedIds(gw)).length === 2, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\ngateway log:\n${gw.raw.slice(-4000)}`);
    });
    const loop = new LoadLoop({ url: `${stack.gw.url}/service-web/`, rps: 50, maxDurationMs: 30_000 }).start();
    await sleep(500);
    await client.kill();
    await sleep(500);
    const c = await stack.web(server, 'web-c');
    const t0 = Date.now();
    await waitFor('change seen through the second agent', async () => (await routedIds(stack.gw!)).includes(c.id), 10_000);
    recordFigure('integration', 'agent lost → change routed through the other agent (ms)', Date.now() - t0);
    const hb = (await (await fetch(`${stack.gw.url}/_gateway/health`)).json()) as { consul: { agent: string } };
    assert.equal(hb.consul.agent, `http://${server.httpAddr}`);
    const s = await loop.stop();
    assert.equal(s.failures, 0, JSON.stringify(s.errors));
  });
});
