import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { WebSocket } from 'ws';
import { ComposeStack } from '../lib/compose.js';
import { waitFor } from '../lib/ports.js';
import { recordFigure } from '../lib/figures.js';

// The canary file and WebSockets on the real compose stack: web-service scaled to 3, and
// docker-compose.canary.yml's web-service-v2 declaring the web service's routes with weight 10.
// Tags travel the way a user sets them: SERVICE_3000_TAGS → registrator → Consul → the gateway.
const WEB = 3;

function get(base: string, path: string, host?: string): Promise<{ status: number; body: any }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.get({ host: u.hostname, port: u.port, path, headers: host ? { host } : {}, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode!, body });
      });
    });
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error(`GET ${path}: timeout`)));
  });
}

async function hello(url: string): Promise<{ instance: string; service: string; echo: string }> {
  const ws = new WebSocket(url);
  const msgs: string[] = [];
  ws.on('message', (d) => msgs.push(String(d)));
  await new Promise<void>((r, j) => (ws.once('open', () => r()), ws.once('error', j)));
  ws.send('through the gateway');
  await waitFor('hello and echo', async () => msgs.length >= 2, 5_000, 10);
  ws.close();
  const h = JSON.parse(msgs[0]!) as { instance: string; service: string };
  return { instance: h.instance, service: h.service, echo: msgs[1]! };
}

describe('routes, a canary and WebSockets on the compose stack', { timeout: 20 * 60_000 }, () => {
  let stack: ComposeStack;
  const files = ['docker-compose.yml', 'docker-compose.canary.yml', 'docker-compose.scale.yml'];

  before(async () => {
    stack = await ComposeStack.forTests('routes-e2e', { WEB_SCALE_REPLICAS: String(WEB) });
    await stack.down();
    await stack.compose(['build'], { files, timeoutMs: 900_000 });
    await stack.up({ files });
    await waitFor('3 web instances and the canary routed', async () => (await stack.routed()).length === WEB && (await stack.routed('service-web-v2')).length === 1, 60_000, 200);
  });

  after(async () => {
    if (process.env.E2E_KEEP !== '1') await stack?.compose(['down', '-v', '--remove-orphans', '-t', '5'], { files, timeoutMs: 180_000 });
  });

  test('the web service\'s own routes and the canary\'s share, from registrator\'s tags', async () => {
    const r = await stack.json<{ routes: Array<{ route: string; targets: Array<{ service: string; weight: number | null; percent: number }> }> }>(`${stack.gatewayUrl}/_gateway/routes`);
    const shares = (route: string) => r.routes.find((x) => x.route === route)?.targets.map((t) => [t.service, t.weight, t.percent]);
    assert.deepEqual(shares('/web'), [['service-web', null, 90], ['service-web-v2', 10, 10]]);
    assert.deepEqual(shares('web.localhost/'), [['service-web', null, 90], ['service-web-v2', 10, 10]]);
  });

  test('1,000 requests to /web/ split 90/10 (±1 point); web.localhost takes the same split', async () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      const res = await get(stack.gatewayUrl, '/web/');
      assert.equal(res.status, 200);
      counts[res.body.service] = (counts[res.body.service] ?? 0) + 1;
    }
    const share = (counts['service-web-v2'] ?? 0) / 10;
    recordFigure('e2e', 'canary share of /web/ over 1,000 requests (%, declared 10)', share);
    assert.ok(Math.abs(share - 10) <= 1, JSON.stringify(counts));
    const hosts: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      const res = await get(stack.gatewayUrl, '/', 'web.localhost');
      hosts[res.body.service] = (hosts[res.body.service] ?? 0) + 1;
    }
    assert.ok(Math.abs((hosts['service-web-v2'] ?? 0) - 10) <= 1, JSON.stringify(hosts));
  });

  test('WebSockets through the gateway reach every scaled web instance, by default and declared route', async () => {
    const direct = new Set<string>();
    // The default balancer (P2C peak EWMA) spreads handshakes without a fixed order: up to 10 per instance.
    for (let i = 0; i < 10 * WEB && direct.size < WEB; i++) {
      const h = await hello(`ws://127.0.0.1:${stack.gatewayPort}/service-web/ws`);
      assert.equal(h.service, 'service-web');
      assert.equal(h.echo, 'through the gateway');
      direct.add(h.instance);
    }
    assert.equal(direct.size, WEB, `instances reached: ${[...direct]}`);
    const viaRoute = await hello(`ws://127.0.0.1:${stack.gatewayPort}/web/ws`);
    assert.ok(['service-web', 'service-web-v2'].includes(viaRoute.service));
  });

  test('the canary stopped: it drops out and /web/ goes to the web service alone', async () => {
    await stack.compose(['stop', '-t', '5', 'web-service-v2'], { files });
    await waitFor('the canary out of the split', async () => (await stack.routed('service-web-v2')).length === 0, 30_000, 200);
    for (let i = 0; i < 50; i++) assert.equal((await get(stack.gatewayUrl, '/web/')).body.service, 'service-web');
  });
});
