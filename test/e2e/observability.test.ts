import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { ComposeStack, docker } from '../lib/compose.js';
import { freePort, waitFor } from '../lib/ports.js';
import { recordFigure } from '../lib/figures.js';

// The observability profile on the real stack (README "Watch it"): Prometheus finds every gateway
// and web instance through Consul's catalog (consul_sd_configs, its own read-only ACL token), with
// no static target list, and scrapes their /metrics.
const PROJECT = 'obs-e2e';
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const RESULTS = fileURLToPath(new URL('../../test-results/', import.meta.url));

interface Target {
  labels: Record<string, string>;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

describe('observability: the dashboard in a real browser, Prometheus discovering the stack through Consul', { timeout: 15 * 60_000 }, () => {
  let stack: ComposeStack;
  let prom: string;
  let browser: Browser | undefined;

  const targets = async (): Promise<Target[]> =>
    (await stack.json<{ data: { activeTargets: Target[] } }>(`${prom}/api/v1/targets?state=active`)).data.activeTargets;
  const upInstances = async (job: string) =>
    (await targets()).filter((t) => t.labels.job === job && t.health === 'up').map((t) => t.labels.instance!).sort();
  async function query(q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
    const r = await stack.json<{ status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }>(
      `${prom}/api/v1/query?query=${encodeURIComponent(q)}`,
    );
    assert.equal(r.status, 'success');
    return r.data.result;
  }

  before(async () => {
    const promPort = await freePort();
    stack = await ComposeStack.forTests(PROJECT, { COMPOSE_PROFILES: 'observability', PROMETHEUS_PORT: String(promPort), REGISTRATOR_RESYNC: '5' });
    prom = `http://127.0.0.1:${promPort}`;
    await stack.down();
    await stack.compose(['build'], { timeoutMs: 900_000 });
    await stack.up();
    await stack.waitRouted(2);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (process.env.E2E_KEEP !== '1') await stack?.down();
  });

  test('0. the dashboard: both web instances, then a third appears without a reload (Debian chromium)', async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_BIN)`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--metrics-recording-only', '--disable-default-apps'],
    });
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    const navigations: string[] = [];
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations.push(f.url());
    });
    const res = await page.goto(`${stack.gatewayUrl}/`);
    assert.equal(res?.status(), 200);
    await page.waitForSelector('body[data-live="on"]', { timeout: 15_000 });
    for (const c of await stack.containers('web-service'))
      await page.waitForSelector(`#services tr[data-instance="${ComposeStack.serviceId(c)}"]`, { timeout: 15_000 });
    await page.evaluate(() => {
      (window as unknown as { __marker: string }).__marker = 'still here';
    });
    const seen = navigations.length;
    const before = new Set((await stack.containers('web-service')).map((c) => c.id));
    await stack.compose(['up', '-d', '--no-recreate', '--no-deps', '--wait', '--scale', 'web-service=3', 'web-service'], { files: stack.withScale() });
    const added = (await stack.containers('web-service')).filter((c) => !before.has(c.id));
    assert.equal(added.length, 1);
    const id = ComposeStack.serviceId(added[0]!);
    await page.waitForSelector(`#services tr[data-instance="${id}"]`, { timeout: 20_000 });
    recordFigure('e2e-observability', 'dashboard: container start → new instance on the page (ms)', Date.now() - added[0]!.startedAt);
    await page.locator('#events li[data-type="instance-added"]', { hasText: id }).first().waitFor({ timeout: 5_000 });
    assert.equal(await page.evaluate(() => (window as unknown as { __marker?: string }).__marker), 'still here');
    assert.equal(navigations.length, seen, `navigations: ${navigations.join(', ')}`);
    // some traffic, so the per-instance figures have something to show in the screenshot
    for (let i = 0; i < 90; i++) await (await fetch(`${stack.gatewayUrl}/service-web/`)).arrayBuffer();
    await page.waitForTimeout(2_500);
    mkdirSync(RESULTS, { recursive: true });
    await page.screenshot({ path: `${RESULTS}dashboard-stack.png`, fullPage: true });
    // back to two, so the tests below start from the stack's default
    await stack.compose(['up', '-d', '--no-recreate', '--no-deps', '--wait', '--scale', 'web-service=2', 'web-service'], { files: stack.withScale() });
    await page.waitForSelector(`#services tr[data-instance="${id}"]`, { state: 'detached', timeout: 30_000 });
  });

  test('1. with no static targets, Prometheus scrapes the gateway and both web instances', async () => {
    const webs = (await stack.containers('web-service')).map(ComposeStack.serviceId).sort();
    const [gw] = await stack.containers('gateway');
    await waitFor('gateway and 2 web instances up in Prometheus', async () =>
      JSON.stringify(await upInstances('service-web')) === JSON.stringify(webs) && (await upInstances('gateway')).length === 1, 60_000, 500);
    assert.deepEqual(await upInstances('gateway'), [ComposeStack.serviceId(gw!)]);
    // nothing else: Consul's own service is dropped, and there is no static job
    const jobs = [...new Set((await targets()).map((t) => t.labels.job))].sort();
    assert.deepEqual(jobs, ['gateway', 'service-web']);
  });

  test('2. a scaled-up instance is scraped within a few scrape intervals (5 s) of starting', async () => {
    const before = new Set((await stack.containers('web-service')).map((c) => c.id));
    const t0 = Date.now();
    await stack.compose(['up', '-d', '--no-recreate', '--no-deps', '--wait', '--scale', 'web-service=3', 'web-service'], { files: stack.withScale() });
    const added = (await stack.containers('web-service')).filter((c) => !before.has(c.id));
    assert.equal(added.length, 1);
    const id = ComposeStack.serviceId(added[0]!);
    await waitFor(`${id} scraped`, async () => (await upInstances('service-web')).includes(id), 30_000, 200);
    const fromStart = Date.now() - added[0]!.startedAt;
    recordFigure('e2e-observability', 'scale-up: container start → Prometheus target up (ms)', fromStart);
    recordFigure('e2e-observability', 'scale-up: compose up → Prometheus target up (ms)', Date.now() - t0);
    assert.ok(fromStart < 20_000, `${fromStart} ms from container start to scraped`);
  });

  test('3. the README query: requests per instance through the gateway', async () => {
    for (let i = 0; i < 60; i++) await (await fetch(`${stack.gatewayUrl}/service-web/`)).arrayBuffer();
    const webs = (await stack.containers('web-service')).map(ComposeStack.serviceId).sort();
    // every instance got some of them (the default balancer picks at random between equally fast
    // instances: fewer than 5 of 60 has a chance under 1 in a million); Prometheus has it after the next scrape
    const series = await waitFor('web_requests_total per instance for all 3', async () => {
      const r = await query('sum by (instance) (web_requests_total{job="service-web"})');
      return r.length === 3 && r.every((s) => Number(s.value[1]) >= 5) ? r : undefined;
    }, 30_000, 1_000);
    assert.deepEqual(series.map((s) => s.metric.instance).sort(), webs);
    const gw = await waitFor('gateway_requests_total for service-web', async () => {
      const r = await query('sum(gateway_requests_total{job="gateway", service="service-web"})');
      return r.length === 1 && Number(r[0]!.value[1]) >= 60 ? r : undefined;
    }, 30_000, 1_000);
    assert.ok(gw);
  });

  test('4. Prometheus runs hardened like the app containers, on loopback only', async () => {
    const [p] = await stack.containers('prometheus');
    const [c] = JSON.parse((await docker(['inspect', p!.id])).stdout) as Array<{ HostConfig: { ReadonlyRootfs: boolean; CapDrop: string[]; PortBindings: Record<string, Array<{ HostIp: string }>> } }>;
    assert.equal(c!.HostConfig.ReadonlyRootfs, true);
    assert.deepEqual(c!.HostConfig.CapDrop, ['ALL']);
    assert.deepEqual(Object.values(c!.HostConfig.PortBindings).flat().map((b) => b.HostIp), ['127.0.0.1']);
  });
});
