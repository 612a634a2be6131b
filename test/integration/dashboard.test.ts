import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ConsulAgent } from '../lib/consul.js';
import { startGateway, startWeb, type ServiceProcess } from '../lib/procs.js';
import { waitFor } from '../lib/ports.js';
import { routedIds } from '../lib/gateway.js';
import { recordFigure } from '../lib/figures.js';

// Debian's chromium, never a downloaded browser build.
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const RESULTS = fileURLToPath(new URL('../../test-results/', import.meta.url));
// Long on purpose: the gateway must stop well before it, open event streams or not.
const SHUTDOWN_TIMEOUT_MS = 20_000;
const HOSTILE_ID = '<img src=x onerror="window.__xss=1">';

function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium not found at ${CHROMIUM}: the dashboard test needs a real browser. Install Debian's: apt-get install -y chromium (or set CHROMIUM_BIN).`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--metrics-recording-only', '--disable-default-apps'],
  });
}

describe('the dashboard in a real browser, against a real Consul and real processes', () => {
  let consul: ConsulAgent;
  let gw: ServiceProcess;
  let browser: Browser;
  let page: Page;
  const webs: ServiceProcess[] = [];
  const ids: string[] = [];
  const navigations: string[] = [];
  const pageErrors: string[] = [];
  const cspViolations: string[] = [];
  let flaky: http.Server | undefined;

  before(async () => {
    browser = await launchBrowser();
    consul = await new ConsulAgent({ mode: 'dev' }).start();
    for (let i = 0; i < 2; i++) {
      const w = await startWeb();
      webs.push(w);
      ids.push(await consul.register({ container: `web-${i}`, name: 'service-web', address: '127.0.0.1', port: w.port }));
    }
    // Quick, short ejections, so one test sees an instance ejected and readmitted.
    gw = await startGateway(consul.httpAddr, {
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      EJECT_AFTER_FAILURES: '2',
      EJECT_BASE_MS: '3000',
      EJECT_MAX_MS: '3000',
    });
    await waitFor('2 passing instances in the gateway', async () => (await routedIds(gw)).length === 2);
    page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations.push(f.url());
    });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (gw) await gw.stop().catch(() => gw.kill());
    for (const w of webs) w.kill();
    flaky?.closeAllConnections();
    flaky?.close();
    await consul?.stop();
  });

  test('shows both instances, then a third appears live, with its event, without a reload', async () => {
    const res = await page.goto(`${gw.url}/`);
    assert.equal(res?.status(), 200);
    assert.match(res.headers()['content-security-policy'] ?? '', /default-src 'self'/);
    // Live: the script ran and the event stream is open.
    await page.waitForSelector('body[data-live="on"]', { timeout: 10_000 });
    for (const id of ids) await page.waitForSelector(`#services tr[data-instance="${id}"]`, { timeout: 5_000 });
    await page.evaluate(() => {
      (window as unknown as { __marker: string }).__marker = 'still here';
    });
    const navigationsBefore = navigations.length;

    const w = await startWeb();
    webs.push(w);
    const t0 = Date.now();
    const id = await consul.register({ container: 'web-2', name: 'service-web', address: '127.0.0.1', port: w.port });
    await page.waitForSelector(`#services tr[data-instance="${id}"]`, { timeout: 15_000 });
    recordFigure('integration', 'dashboard: registered → new instance on the page (ms)', Date.now() - t0);
    const event = page.locator('#events li[data-type="instance-added"]', { hasText: id });
    await event.first().waitFor({ timeout: 5_000 });
    assert.match(await event.first().innerText(), /service-web/);
    ids.push(id);

    // Same document: the marker survived and nothing navigated.
    assert.equal(await page.evaluate(() => (window as unknown as { __marker?: string }).__marker), 'still here');
    assert.equal(navigations.length, navigationsBefore, `navigations: ${navigations.join(', ')}`);
    assert.equal(await page.locator('#services section[data-service="service-web"] tbody tr').count(), 3);
  });

  test('the Consul panel shows the agent reachable, a leader, and the servers with the leader marked', async () => {
    const leader = JSON.parse(await (await fetch(`${consul.url}/v1/status/leader`)).text()) as string;
    const li = page.locator('#consul-body ul.servers li.leader');
    await li.waitFor({ timeout: 10_000 });
    assert.equal((await li.locator('code').innerText()).trim(), leader);
    const panel = await page.locator('#consul-body').innerText();
    assert.match(panel, /reachable/);
    assert.match(panel, /leader known\s+yes/);
  });

  test('a removed instance leaves the page and the timeline says so', async () => {
    const gone = ids[0]!;
    await consul.deregister(gone);
    await page.waitForSelector(`#services tr[data-instance="${gone}"]`, { state: 'detached', timeout: 10_000 });
    await page.locator('#events li[data-type="instance-removed"]', { hasText: gone }).first().waitFor({ timeout: 5_000 });
  });

  test('hostile Consul data is shown as text, never run', async () => {
    // An instance id is whatever was registered; this one is markup.
    await consul.api('PUT', '/v1/agent/service/register', { ID: HOSTILE_ID, Name: 'hostile', Address: '127.0.0.1', Port: 9 });
    const row = page.locator('#services section[data-service="hostile"] tbody tr');
    await row.first().waitFor({ timeout: 10_000 });
    assert.equal(await row.first().getAttribute('data-instance'), HOSTILE_ID);
    assert.equal((await row.first().locator('code').innerText()).trim(), HOSTILE_ID);
    await page.locator('#events li', { hasText: HOSTILE_ID }).first().waitFor({ timeout: 5_000 });
    assert.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined);
    assert.equal(await page.locator('#services img, #events img').count(), 0);
  });

  test('"why?" opens the routing explanation of a service', async () => {
    await page.locator('section[data-service="service-web"] button.why-btn').click();
    await page.waitForSelector('#why:not([hidden])', { timeout: 2_000 });
    assert.equal((await page.locator('#why-service').innerText()).trim(), '/service-web/');
    // Either the explanation (one block per instance) or a clear note while its endpoint is missing.
    await waitFor('the why view to fill', async () => {
      const blocks = await page.locator('#why-body .explain').count();
      const note = await page.locator('#why-body p.muted').allInnerTexts();
      return blocks > 0 || note.some((t) => /explain not available \(404\)/.test(t));
    }, 5_000);
  });

  test('passive health: an instance that resets connections is ejected, then readmitted, on the page', async () => {
    // Passes its Consul check, resets every request: only the gateway's passive health can tell.
    flaky = http.createServer((req, res) => {
      if (req.url === '/health') return void res.end('ok');
      req.socket.destroy();
    });
    await new Promise<void>((r) => flaky!.listen(0, '127.0.0.1', r));
    const port = (flaky.address() as AddressInfo).port;
    const bad = await consul.register({ container: 'flaky-bad', name: 'flaky', address: '127.0.0.1', port });
    await consul.register({ container: 'flaky-good', name: 'flaky', address: '127.0.0.1', port: webs[1]!.port });
    await waitFor('both flaky instances routed', async () => (await routedIds(gw, 'flaky')).length === 2);
    // GETs are retried on the good instance, so clients see no failure while the bad one is ejected.
    for (let i = 0; i < 8; i++) assert.equal((await fetch(`${gw.url}/flaky/`)).status, 200);
    await page.locator('#events li[data-type="instance-ejected"]', { hasText: bad }).first().waitFor({ timeout: 5_000 });
    await page.waitForSelector(`section[data-service="flaky"] tr.ejected[data-instance="${bad}"]`, { timeout: 5_000 });
    assert.match(await page.locator(`tr[data-instance="${bad}"] .inst-state`).innerText(), /ejected · back in \d+ s/);
    await page.locator('#events li[data-type="instance-readmitted"]', { hasText: bad }).first().waitFor({ timeout: 8_000 });
    await page.waitForSelector(`section[data-service="flaky"] tr:not(.ejected)[data-instance="${bad}"]`, { timeout: 5_000 });
  });

  test('screenshot, and no script error or CSP violation on the page', async () => {
    // A little traffic so the numbers, where the stats endpoint exists, are not all zero.
    for (let i = 0; i < 20; i++) await (await fetch(`${gw.url}/service-web/`)).text();
    await page.waitForTimeout(1_500);
    mkdirSync(RESULTS, { recursive: true });
    await page.screenshot({ path: `${RESULTS}dashboard.png`, fullPage: true });
    assert.ok(existsSync(`${RESULTS}dashboard.png`));
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(cspViolations, []);
  });

  test('an open dashboard does not hold the gateway up on SIGTERM', async () => {
    assert.equal(await page.evaluate(() => document.body.dataset.live), 'on');
    const t0 = Date.now();
    gw.proc.kill('SIGTERM');
    // A timer of our own, cleared: a pending one would keep this test process alive after the suite.
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([gw.exit, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), SHUTDOWN_TIMEOUT_MS + 5_000)))]);
    clearTimeout(timer);
    const ms = Date.now() - t0;
    recordFigure('integration', 'dashboard: SIGTERM → exit with an event stream open (ms)', ms);
    assert.equal(code, 0);
    assert.ok(ms < 5_000, `took ${ms} ms to stop with a stream open (shutdown timeout ${SHUTDOWN_TIMEOUT_MS} ms)`);
    await page.waitForSelector('body:not([data-live="on"])', { timeout: 10_000 });
  });
});
