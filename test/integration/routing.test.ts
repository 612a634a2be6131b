import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsulAgent } from '../lib/consul.js';
import { startGateway, startWeb, type ServiceProcess } from '../lib/procs.js';
import { sleep, waitFor } from '../lib/ports.js';
import { recordFigure } from '../lib/figures.js';
import { routedIds } from '../lib/gateway.js';

/** The instance that answered a request through the gateway. */
async function hit(gw: ServiceProcess, path = '/service-web/'): Promise<{ status: number; instance: string | null; body: any; headers: Headers }> {
  const res = await fetch(`${gw.url}${path}`);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, instance: res.headers.get('x-instance-id'), body, headers: res.headers };
}

async function instanceId(web: ServiceProcess): Promise<string> {
  const body = (await (await fetch(`${web.url}/`)).json()) as { instance: string };
  return body.instance;
}

describe('gateway routing against a real Consul', () => {
  let consul: ConsulAgent;
  let gw: ServiceProcess;
  const webs: ServiceProcess[] = [];
  const ids: string[] = [];

  before(async () => {
    consul = await new ConsulAgent({ mode: 'dev' }).start();
    for (let i = 0; i < 3; i++) {
      const w = await startWeb();
      webs.push(w);
      ids.push(await consul.register({ container: `web-${i}`, name: 'service-web', address: '127.0.0.1', port: w.port }));
    }
    gw = await startGateway(consul.httpAddr);
    await waitFor('3 passing instances in the gateway', async () => (await routedIds(gw, 'service-web')).length === 3);
  });

  after(async () => {
    await gw?.stop().catch(() => gw.kill());
    for (const w of webs) w.kill();
    await consul?.stop();
  });

  test('requests spread over every passing instance (peak EWMA, the default)', async () => {
    const expected = new Set(await Promise.all(webs.map(instanceId)));
    const counts = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const r = await hit(gw);
      assert.equal(r.status, 200);
      counts.set(r.instance!, (counts.get(r.instance!) ?? 0) + 1);
    }
    assert.deepEqual(new Set(counts.keys()), expected, JSON.stringify([...counts]));
  });

  test('LB_POLICY=round_robin: requests rotate over every passing instance', async () => {
    const rr = await startGateway(consul.httpAddr, { LB_POLICY: 'round_robin' });
    try {
      await waitFor('3 passing instances in the round-robin gateway', async () => (await routedIds(rr, 'service-web')).length === 3);
      const expected = new Set(await Promise.all(webs.map(instanceId)));
      const seen: string[] = [];
      for (let i = 0; i < 30; i++) {
        const r = await hit(rr);
        assert.equal(r.status, 200);
        seen.push(r.instance!);
      }
      assert.deepEqual(new Set(seen), expected);
      // Strict rotation: every window of 3 consecutive answers holds 3 different instances.
      for (let i = 0; i + 3 <= seen.length; i++) assert.equal(new Set(seen.slice(i, i + 3)).size, 3, `window at ${i}: ${seen.slice(i, i + 3)}`);
    } finally {
      await rr.stop().catch(() => rr.kill());
    }
  });

  test('a new instance is routed within 1 s of passing its check', async () => {
    const w = await startWeb();
    webs.push(w);
    const inst = await instanceId(w);
    const id = await consul.register({ container: 'web-new', name: 'service-web', address: '127.0.0.1', port: w.port });
    let passingAt = 0;
    let routedAt = 0;
    const deadline = Date.now() + 15_000;
    while ((!passingAt || !routedAt) && Date.now() < deadline) {
      if (!passingAt && (await consul.passing('service-web')).includes(id)) passingAt = Date.now();
      const r = await hit(gw);
      if (!routedAt && r.instance === inst) routedAt = Date.now();
    }
    assert.ok(passingAt > 0, 'the instance never passed in Consul');
    assert.ok(routedAt > 0, 'the instance was never routed');
    const delay = Math.max(0, routedAt - passingAt);
    recordFigure('integration', 'passing → first routed request (ms)', delay);
    assert.ok(delay < 1000, `routed ${delay} ms after passing`);
    ids.push(id);
  });

  test('a deregistered instance gets no request 1 s after deregistration', async () => {
    const victim = webs[0]!;
    const inst = await instanceId(victim);
    const t0 = Date.now();
    await consul.deregister(ids[0]!);
    let last = 0;
    while (Date.now() - t0 < 2500) {
      const r = await hit(gw);
      assert.equal(r.status, 200);
      if (r.instance === inst) last = Date.now();
      await sleep(5);
    }
    const lastAfter = last ? last - t0 : 0;
    recordFigure('integration', 'deregistered → last routed request (ms)', lastAfter);
    assert.ok(lastAfter < 1000, `still routed ${lastAfter} ms after deregistration`);
    assert.ok(!(await routedIds(gw, 'service-web')).includes(ids[0]!));
  });

  test('an instance whose check is critical gets no request', async () => {
    const target = webs[1]!;
    const inst = await instanceId(target);
    await consul.maintenance(ids[1]!, true);
    await waitFor('maintenance to reach the gateway', async () => !(await routedIds(gw, 'service-web')).includes(ids[1]!), 5_000);
    for (let i = 0; i < 30; i++) {
      const r = await hit(gw);
      assert.equal(r.status, 200);
      assert.notEqual(r.instance, inst);
    }
    // An instance registered with a check that never passes is never routed either.
    const sick = await startWeb();
    webs.push(sick);
    const sickId = await consul.register({ container: 'web-sick', name: 'service-web', address: '127.0.0.1', port: sick.port, checkPath: '/no-such-path' });
    await sleep(2500);
    assert.ok(!(await routedIds(gw, 'service-web')).includes(sickId));
    await consul.deregister(sickId);
    await consul.maintenance(ids[1]!, false);
    await waitFor('instance back after maintenance', async () => (await routedIds(gw, 'service-web')).includes(ids[1]!), 5_000);
  });

  test('unknown service: 404 JSON', async () => {
    const r = await hit(gw, '/no-such-service/x');
    assert.equal(r.status, 404);
    assert.equal(r.body.error, 'unknown_service');
    assert.equal(r.body.service, 'no-such-service');
    assert.ok(r.body.requestId);
    assert.ok(r.body.message);
  });

  test('a service whose instances are all critical: 503 with Retry-After', async () => {
    const w = await startWeb({ SERVICE_NAME: 'service-lonely' });
    webs.push(w);
    const id = await consul.register({ container: 'lonely', name: 'service-lonely', address: '127.0.0.1', port: w.port });
    await waitFor('lonely routed', async () => (await routedIds(gw, 'service-lonely')).length === 1, 5_000);
    assert.equal((await hit(gw, '/service-lonely/')).status, 200);
    await consul.maintenance(id, true);
    await waitFor('lonely all critical', async () => (await routedIds(gw, 'service-lonely')).length === 0, 5_000);
    const r = await hit(gw, '/service-lonely/');
    assert.equal(r.status, 503);
    assert.equal(r.body.error, 'no_instance');
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
    // And a service that leaves Consul entirely stops being routed: 404.
    await consul.deregister(id);
    await waitFor('lonely gone', async () => (await hit(gw, '/service-lonely/')).status === 404, 5_000);
  });

  test('web-service /call finds another service through Consul, not through the gateway', async () => {
    const caller = await startWeb({ CONSUL_HTTP_ADDR: consul.httpAddr, SERVICE_NAME: 'service-caller' });
    webs.push(caller);
    const passing = new Set(await consul.passing('service-web'));
    const served = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${caller.url}/call/service-web/?n=${i}`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { target: { id: string; port: number }; status: number; body: { instance: string; service: string } };
      assert.equal(body.status, 200);
      assert.equal(body.body.service, 'service-web');
      assert.ok(passing.has(body.target.id), `${body.target.id} is a passing instance`);
      served.add(body.target.id);
    }
    assert.ok(served.size >= 2, 'calls are spread over the instances');
    const missing = await fetch(`${caller.url}/call/no-such-service/`);
    assert.equal(missing.status, 503);
    const bad = await fetch(`${caller.url}/call/bad_name!/`);
    assert.equal(bad.status, 400);
  });

  test('Consul itself and the gateway are never routed', async () => {
    assert.equal((await hit(gw, '/consul/v1/status/leader')).status, 404);
    await consul.register({ container: 'gw', name: 'gateway', address: '127.0.0.1', port: gw.port, checkPath: '/_gateway/health' });
    await sleep(1500);
    assert.equal((await hit(gw, '/gateway/_gateway/health')).status, 404);
  });
});
