import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { WebSocket } from 'ws';
import { ConsulAgent } from '../lib/consul.js';
import { startGateway, startWeb, type ServiceProcess } from '../lib/procs.js';
import { waitFor } from '../lib/ports.js';
import { recordFigure } from '../lib/figures.js';

interface RoutesBody {
  routes: Array<{ route: string; targets: Array<{ service: string; percent: number; live: boolean }>; conflict: boolean; losers: Array<{ service: string }> }>;
  rejectedTags: Array<{ service: string; tag: string; reason: string }>;
}

async function routes(gw: ServiceProcess): Promise<RoutesBody> {
  return (await (await fetch(`${gw.url}/_gateway/routes`)).json()) as RoutesBody;
}

async function get(gw: ServiceProcess, path: string) {
  const res = await fetch(`${gw.url}${path}`);
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body };
}

describe('routes declared in Consul tags, with a real Consul and a real gateway', () => {
  let consul: ConsulAgent;
  let gw: ServiceProcess;
  let web: ServiceProcess;
  let v2: ServiceProcess;
  let webId: string;
  let v2Id: string;
  const register = (who: 'web' | 'v2', tags: string[]) =>
    consul.register({
      container: who,
      name: who === 'web' ? 'service-web' : 'service-web-v2',
      address: '127.0.0.1',
      port: (who === 'web' ? web : v2).port,
      tags,
    });

  before(async () => {
    consul = await new ConsulAgent({ mode: 'dev' }).start();
    web = await startWeb({ SERVICE_NAME: 'service-web' });
    v2 = await startWeb({ SERVICE_NAME: 'service-web-v2' });
    webId = await register('web', ['gateway.route=/shop strip=/shop']);
    gw = await startGateway(consul.httpAddr);
    await waitFor('the /shop route in the gateway', async () => (await routes(gw)).routes.some((r) => r.route === '/shop'));
  });

  after(async () => {
    await gw?.stop().catch(() => gw.kill());
    web?.kill();
    v2?.kill();
    await consul?.stop();
  });

  test('routes appear and vanish as the tags in Consul change', async () => {
    const shop = await get(gw, '/shop/echo');
    assert.equal(shop.status, 200);
    assert.equal(shop.body.url, '/echo');
    // Re-registered with other tags: same instance, new routes.
    await register('web', ['gateway.route=/store strip=/store', 'gateway.default=off']);
    await waitFor('/store replaces /shop', async () => {
      const r = await routes(gw);
      return r.routes.length === 1 && r.routes[0]!.route === '/store';
    });
    const store = await get(gw, '/store/echo');
    assert.equal(store.status, 200);
    assert.equal(store.body.url, '/echo');
    assert.equal((await get(gw, '/shop/echo')).status, 404);
    const off = await get(gw, '/service-web/');
    assert.equal(off.status, 404, 'gateway.default=off');
    assert.equal(off.body.error, 'no_route');
    // Tags gone: back to /service-web/ only.
    await register('web', []);
    await waitFor('no declared route', async () => (await routes(gw)).routes.length === 0);
    assert.equal((await get(gw, '/service-web/')).status, 200);
    assert.equal((await get(gw, '/store/echo')).status, 404);
  });

  test('a malformed tag is ignored and reported; the service\'s good tags still route', async () => {
    await register('web', ['gateway.route=/good strip=/good', 'gateway.route=/bad/../x', 'gateway.weight=lots']);
    await waitFor('the good route', async () => (await routes(gw)).routes.some((r) => r.route === '/good'));
    const r = await routes(gw);
    assert.deepEqual(r.rejectedTags.map((t) => t.tag).sort(), ['gateway.route=/bad/../x', 'gateway.weight=lots']);
    assert.equal((await get(gw, '/good/')).status, 200);
    assert.equal((await fetch(`${gw.url}/_gateway/health`)).status, 200);
  });

  test('a 90/10 split over 1,000 requests, and a service without a passing instance drops out', async () => {
    await register('web', ['gateway.route=/web strip=/web']);
    v2Id = await register('v2', ['gateway.route=/web strip=/web weight=10']);
    await waitFor('the split in the gateway', async () => {
      const r = (await routes(gw)).routes.find((x) => x.route === '/web');
      return r?.targets.length === 2 && r.targets.every((t) => t.live);
    });
    const counts: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      const r = await get(gw, '/web/');
      assert.equal(r.status, 200);
      counts[r.body.service] = (counts[r.body.service] ?? 0) + 1;
    }
    const share = (counts['service-web-v2'] ?? 0) / 10;
    recordFigure('integration', 'canary share over 1,000 requests (%, declared 10)', share);
    // Tolerance ±1 point (10 requests): smooth weighted round robin is exact, and the
    // table does not change during the run, so the 1,000 give 900/100.
    assert.ok(Math.abs(share - 10) <= 1, `canary got ${share}% (${JSON.stringify(counts)})`);

    await consul.maintenance(v2Id, true);
    await waitFor('v2 drops out', async () => (await routes(gw)).routes.find((x) => x.route === '/web')?.targets.find((t) => t.service === 'service-web-v2')?.live === false);
    for (let i = 0; i < 50; i++) assert.equal((await get(gw, '/web/')).body.service, 'service-web');
    await consul.maintenance(v2Id, false);
    await maintenanceOffWeb();
  });

  async function maintenanceOffWeb() {
    // web out, v2 back: the canary takes the whole route.
    await consul.maintenance(webId, true);
    await waitFor('web drops out, v2 live', async () => {
      const t = (await routes(gw)).routes.find((x) => x.route === '/web')?.targets ?? [];
      return t.find((x) => x.service === 'service-web')?.live === false && t.find((x) => x.service === 'service-web-v2')?.live === true;
    });
    for (let i = 0; i < 20; i++) assert.equal((await get(gw, '/web/')).body.service, 'service-web-v2');
    await consul.maintenance(webId, false);
    await waitFor('both back in the split', async () => (await routes(gw)).routes.find((x) => x.route === '/web')?.targets.every((t) => t.live));
  }

  test('explain says which route, which service, and why the other candidates lost', async () => {
    const e = (await (await fetch(`${gw.url}/_gateway/explain/route?path=/web/echo`)).json());
    assert.equal(e.matched.route, '/web');
    assert.deepEqual(e.matched.services.map((s: { service: string; percent: number }) => [s.service, s.percent]).sort(), [['service-web', 90], ['service-web-v2', 10]]);
    assert.equal(e.upstreamPath, '/echo');
    const d = (await (await fetch(`${gw.url}/_gateway/explain/route?path=/service-web/x`)).json());
    assert.equal(d.matched.kind, 'default');
    // Without ?path= the segment is a service name as before: no "route" service here.
    assert.equal((await fetch(`${gw.url}/_gateway/explain/route`)).status, 404);
  });

  test('a WebSocket round trip through the real gateway to the web service\'s /ws', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/service-web/ws`);
    const msgs: string[] = [];
    ws.on('message', (d) => msgs.push(String(d)));
    await new Promise<void>((r, j) => (ws.once('open', () => r()), ws.once('error', j)));
    await waitFor('hello', async () => msgs.length >= 1);
    const hello = JSON.parse(msgs[0]!);
    assert.equal(hello.type, 'hello');
    assert.equal(hello.service, 'service-web');
    const direct = (await (await fetch(`${web.url}/`)).json()) as { instance: string };
    assert.equal(hello.instance, direct.instance);
    ws.send('round trip');
    await waitFor('echo', async () => msgs.length >= 2);
    assert.equal(msgs[1], 'round trip');
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, /gateway_upgraded_connections\{service="service-web"\} 1/);
    ws.close();
    await new Promise((r) => ws.once('close', r));
  });

  test('the dashboard lists routes with their services and shares, and ignored tags as text', async () => {
    const bin = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
    if (!existsSync(bin)) throw new Error(`Chromium not found at ${bin}: apt-get install -y chromium (or set CHROMIUM_BIN)`);
    const hostile = 'gateway.route=/<img src=x onerror="window.__xss=1">';
    await register('v2', ['gateway.route=/web strip=/web weight=10', hostile]);
    await waitFor('the hostile tag reported', async () => (await routes(gw)).rejectedTags.some((t) => t.tag === hostile));
    const browser = await chromium.launch({ executablePath: bin, headless: true, args: ['--no-sandbox', '--no-first-run', '--disable-background-networking'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`${gw.url}/`);
      const row = await page.waitForSelector('#routes tr[data-route="/web"][data-service="service-web-v2"]', { timeout: 10_000 });
      assert.match((await row.textContent()) ?? '', /service-web-v2\s*1010%/);
      const web = await page.waitForSelector('#routes tr[data-route="/web"][data-service="service-web"]');
      assert.match((await web.textContent()) ?? '', /rest90%/);
      assert.match((await page.textContent('#routes')) ?? '', /Ignored tags/);
      assert.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });

  test('SIGTERM: an open WebSocket gets SHUTDOWN_TIMEOUT_MS, then is closed, and the gateway exits 0', async () => {
    const g2 = await startGateway(consul.httpAddr, { SHUTDOWN_TIMEOUT_MS: '1500' });
    try {
      await waitFor('service-web routed', async () => ((await (await fetch(`${g2.url}/_gateway/services`)).json()) as { services: Record<string, unknown[]> }).services['service-web']?.length === 1);
      const ws = new WebSocket(`ws://127.0.0.1:${g2.port}/service-web/ws`);
      const msgs: string[] = [];
      ws.on('message', (d) => msgs.push(String(d)));
      await new Promise<void>((r, j) => (ws.once('open', () => r()), ws.once('error', j)));
      const closed = new Promise<number>((r) => ws.once('close', () => r(Date.now())));
      const t0 = Date.now();
      const exit = g2.stop();
      // Still usable during the grace.
      await new Promise((r) => setTimeout(r, 500));
      ws.send('still here');
      await waitFor('echo during the grace', async () => msgs.includes('still here'), 1_000, 10);
      const closedAt = await closed;
      assert.equal(await exit, 0);
      const ms = closedAt - t0;
      assert.ok(ms >= 1_400 && ms < 5_000, `closed ${ms} ms after SIGTERM`);
    } finally {
      g2.kill();
    }
  });
});
