import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { pino } from 'pino';
import { z } from 'zod';
import { AgentHint, ConsulAgents, Discovery, discoveryEnv, discoveryOptions, parseEnv, type RouteTable } from '@stack/shared';
import { ConsulAgent } from '../lib/consul.js';
import { sleep, waitFor } from '../lib/ports.js';
import { recordFigure } from '../lib/figures.js';
import { connectionsTo } from '../../scripts/lib/connections.mjs';

// shared's Discovery in this process, following a real `consul agent -dev`
// the way the gateway does (watchCatalog), driven through Consul's agent API.
// The faults a real Consul will not produce on demand (a lagging server, a
// 403) are in shared/src/consul/discovery.test.ts against a scripted one.

const ids = (t: RouteTable, s: string) => t.services.get(s)?.map((i) => i.id).sort();

function memoryLog() {
  const lines: Array<{ msg: string }> = [];
  return { log: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }), lines };
}

/** Resolves on the first table change that satisfies `pred` (fails after 5 s). */
function tableWhere(d: Discovery, pred: (t: RouteTable) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (d.off('change', on), reject(new Error('no such table change within 5 s'))), 5000);
    const on = (t: RouteTable) => {
      if (!pred(t)) return;
      clearTimeout(timer);
      d.off('change', on);
      resolve();
    };
    d.on('change', on);
  });
}

/** ESTABLISHED TCP connections from this process to 127.0.0.1:port. */
const connectionsToAgent = (port: number): number => connectionsTo('self', port).mine;

describe('discovery against a real Consul', () => {
  let consul: ConsulAgent;
  const running: Array<{ d: Discovery; pool: ConsulAgents }> = [];

  before(async () => {
    consul = await new ConsulAgent({ mode: 'dev' }).start();
  });
  after(async () => {
    for (const r of running) {
      r.d.stop();
      r.pool.close();
    }
    await consul?.stop();
  });

  function follow(env: Record<string, string> = {}) {
    const config = parseEnv(z.object(discoveryEnv), { CONSUL_HTTP_ADDR: consul.httpAddr, ...env });
    const pool = new ConsulAgents(config.CONSUL_HTTP_ADDR);
    const mem = memoryLog();
    const d = new Discovery(pool, discoveryOptions(config, ['consul']), mem.log);
    running.push({ d, pool });
    return { d: d.watchCatalog(), mem };
  }

  /** A PUT on a connection of its own, closed after: the connection count below is discovery's alone. */
  const put = (path: string, body?: unknown) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: consul.ports.http, method: 'PUT', path, agent: false }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`PUT ${path}: ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });

  const register = (id: string, name: string, check: 'passing' | 'critical' | 'none' = 'passing') =>
    put('/v1/agent/service/register', {
      ID: id,
      Name: name,
      Address: '127.0.0.1',
      Port: 10_000 + (id.length % 100),
      ...(check === 'none' ? {} : { Check: { CheckID: `check-${id}`, TTL: '1h', Status: check } }),
    });
  const ttl = (id: string, verb: 'pass' | 'fail') => put(`/v1/agent/check/${verb}/check-${id}`);

  test('follows checks, registrations, maintenance, deregistrations and an instance without checks', async () => {
    await register('f-web-1', 'f-web');
    await register('f-web-2', 'f-web');
    const { d } = follow();
    await waitFor('synced', () => d.synced);
    assert.deepEqual(ids(d.table, 'f-web'), ['f-web-1', 'f-web-2']);

    let t0 = performance.now();
    let seen = tableWhere(d, (t) => ids(t, 'f-web')?.join() === 'f-web-1');
    await ttl('f-web-2', 'fail');
    await seen;
    const outMs = Math.round(performance.now() - t0);
    recordFigure('integration', 'discovery: check failing → out of the table (ms)', outMs);
    t0 = performance.now();
    seen = tableWhere(d, (t) => ids(t, 'f-web')?.length === 2);
    await ttl('f-web-2', 'pass');
    await seen;
    const inMs = Math.round(performance.now() - t0);
    recordFigure('integration', 'discovery: check passing → routed (ms)', inMs);
    // One blocking-query answer plus one service read: milliseconds (observed 6-63 ms); 1 s leaves room for a loaded machine.
    assert.ok(outMs <= 1000 && inMs <= 1000, `check failing → out ${outMs} ms, passing → in ${inMs} ms`);
    // One sample is mostly noise: flip it ten times more for a median (150 ms apart:
    // the blocking loop's rate limit refills one answer per 100 ms after a burst of 3).
    const flips: number[] = [];
    for (let k = 0; k < 20; k++) {
      const pass = k % 2 === 1;
      await sleep(150);
      t0 = performance.now();
      seen = tableWhere(d, (t) => ids(t, 'f-web')?.length === (pass ? 2 : 1));
      await ttl('f-web-2', pass ? 'pass' : 'fail');
      await seen;
      if (pass) flips.push(performance.now() - t0);
    }
    flips.sort((a, b) => a - b);
    recordFigure('integration', 'discovery: check passing → routed, 10 flips (median / max ms)', `${flips[4]!.toFixed(1)} / ${flips[9]!.toFixed(1)}`);

    await register('f-web-3', 'f-web'); // passing from the start: no failing check announces it
    await waitFor('f-web-3 routed', () => ids(d.table, 'f-web')?.includes('f-web-3'), 5000);
    await register('f-web-4', 'f-web', 'critical'); // the way registrator's HTTP checks start
    await sleep(300);
    assert.equal(ids(d.table, 'f-web')?.includes('f-web-4'), false, 'not routed before its check passes');
    await ttl('f-web-4', 'pass');
    await waitFor('f-web-4 routed', () => ids(d.table, 'f-web')?.includes('f-web-4'), 5000);

    await put('/v1/agent/service/maintenance/f-web-1?enable=true&reason=test');
    await waitFor('f-web-1 out in maintenance', () => !ids(d.table, 'f-web')?.includes('f-web-1'), 5000);
    await put('/v1/agent/service/maintenance/f-web-1?enable=false');
    await waitFor('f-web-1 back', () => ids(d.table, 'f-web')?.includes('f-web-1'), 5000);

    await put('/v1/agent/service/deregister/f-web-3'); // while passing
    await waitFor('f-web-3 gone', () => !ids(d.table, 'f-web')?.includes('f-web-3'), 5000);

    await register('f-bare-1', 'f-bare', 'none'); // no check at all: only the catalog moves
    await waitFor('f-bare routed', () => ids(d.table, 'f-bare')?.join() === 'f-bare-1', 5000);
    await put('/v1/agent/service/deregister/f-bare-1');
    await waitFor('f-bare gone (404)', () => !d.table.services.has('f-bare'), 5000);
    assert.deepEqual(d.state().reasons, []);
  });

  test("the agent's hint names what this agent registered, as this Consul lists it, and nothing written through the catalog API", async () => {
    const config = parseEnv(z.object(discoveryEnv), { CONSUL_HTTP_ADDR: consul.httpAddr });
    const pool = new ConsulAgents(config.CONSUL_HTTP_ADDR);
    try {
      const hint = new AgentHint(pool, memoryLog().log);
      await hint.baseline();
      const named = async () => [...(await hint.changed())].sort();
      await register('h-Mixed-1', 'h-Mixed', 'none');
      assert.deepEqual(await named(), ['h-mixed'], 'registered (the table keys names lowercased)');
      await put('/v1/agent/service/register', { ID: 'h-Mixed-1', Name: 'h-Mixed', Address: '127.0.0.1', Port: 10_999 });
      assert.deepEqual(await named(), ['h-mixed'], 'another port');
      await put('/v1/agent/service/maintenance/h-Mixed-1?enable=true&reason=test');
      assert.deepEqual(await named(), [], 'maintenance is a check, not a registration');
      await put('/v1/agent/service/deregister/h-Mixed-1');
      assert.deepEqual(await named(), ['h-mixed'], 'deregistered');
      await registerExternal('h-ext-1', 'h-ext');
      assert.deepEqual(await named(), [], 'through the catalog API, on another node');
      await put('/v1/catalog/deregister', { Node: 'external-node', ServiceID: 'h-ext-1' });
    } finally {
      pool.close();
    }
  });

  // Straight into the catalog, on a node no agent runs: anti-entropy would re-register the agent's own services after a restore.
  const registerExternal = (id: string, name: string) =>
    put('/v1/catalog/register', {
      Node: 'external-node',
      Address: '127.0.0.1',
      Service: { ID: id, Service: name, Address: '127.0.0.1', Port: 10_000 },
      Check: { Node: 'external-node', CheckID: `check-${id}`, Name: 'external', Status: 'passing', ServiceID: id },
    });

  test('a snapshot restore sends the index back: the restored catalog is believed, and later changes followed', async () => {
    await registerExternal('r-web-1', 'r-web');
    const snap = await fetch(`${consul.url}/v1/snapshot`, { headers: { Connection: 'close' } });
    assert.equal(snap.status, 200);
    const saved = Buffer.from(await snap.arrayBuffer());
    await registerExternal('r-api-1', 'r-api');
    const { d, mem } = follow();
    await waitFor('synced with r-api', () => d.synced && d.table.services.has('r-api'));
    const restored = await fetch(`${consul.url}/v1/snapshot`, { method: 'PUT', body: saved, headers: { Connection: 'close' } });
    assert.equal(restored.status, 200, await restored.text());
    await waitFor('r-api gone after the restore', () => !d.table.services.has('r-api'), 10_000);
    assert.ok(mem.lines.some((l) => /cannot be trusted yet/.test(l.msg)), 'the older answer was confirmed with the leader first');
    await registerExternal('r-web-2', 'r-web');
    await waitFor('a registration after the restore is routed', () => ids(d.table, 'r-web')?.includes('r-web-2'), 10_000);
  });

  test('250 services sync over a handful of connections, leaving the agent to its other clients', async () => {
    // One long poll per service used to open 250 connections: past Consul's
    // default of 200 per client IP (limits.http_max_conns_per_client) the agent
    // reset them and discovery never synced.
    const names = Array.from({ length: 250 }, (_, i) => `many-${String(i).padStart(3, '0')}`);
    for (let i = 0; i < names.length; i += 10) await Promise.all(names.slice(i, i + 10).map((n) => register(`${n}-1`, n)));
    for (const r of running.splice(0)) {
      r.d.stop();
      r.pool.close();
    }
    const t0 = Date.now();
    const { d } = follow();
    await waitFor('synced', () => d.synced, 20_000);
    recordFigure('integration', 'discovery: 250 services → first sync (ms)', Date.now() - t0);
    for (const n of names) assert.deepEqual(ids(d.table, n), [`${n}-1`]);
    let most = 0;
    for (let i = 0; i < 10; i++) {
      most = Math.max(most, connectionsToAgent(consul.ports.http));
      await sleep(100);
    }
    recordFigure('integration', 'discovery: connections to the agent, 250 services (max of 10 samples)', most);
    assert.ok(most <= 8, `${most} connections`);
    assert.equal((await fetch(`${consul.url}/v1/status/leader`)).status, 200, 'another client still gets in');
    await ttl('many-123-1', 'fail');
    await waitFor('a change among 250 services (its only instance: held first)', () => d.state().reasons.some((r) => r.includes('many-123')), 5000);
  });
});
