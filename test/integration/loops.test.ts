import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { ConsulAgent } from '../lib/consul.js';
import { startGateway, startWeb, type ServiceProcess } from '../lib/procs.js';
import { sleep, waitFor } from '../lib/ports.js';
import { routedIds } from '../lib/gateway.js';

/**
 * /call loop and amplification protection against a real Consul, with real
 * processes: every request each web process serves is counted from its own
 * request log (LOG_LEVEL=debug), so a storm can't hide.
 *
 * The bound designed for (web-service/src/call-policy.ts): a client request
 * makes at most CALL_MAX_DEPTH (1) /call hop, and a hop at most 2 upstream
 * attempts (one retry elsewhere on a refused or reset connection; each
 * service here has one instance, so 1). So a request to a web service costs
 * at most 1 + 2 requests at the web services, whatever its path nests.
 *
 * The cases under "through the gateway" depend on the gateway's side of the
 * Via contract (it appends "1.1 gateway", passes Via on, and answers 508 to a
 * request whose Via already names it).
 */
const MAX_INTERNAL = 2;

interface Served {
  method: string;
  url: string;
  status: number;
}

/** The requests a web process logged, minus Consul's /health checks. */
function countRequests(p: ServiceProcess): { take(): Served[] } {
  let lines: Served[] = [];
  let buf = '';
  p.proc.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (rec.msg === 'request' && rec.url !== '/health') lines.push({ method: String(rec.method), url: String(rec.url), status: Number(rec.status) });
      } catch {
        /* not JSON */
      }
    }
  });
  return {
    take() {
      const out = lines;
      lines = [];
      return out;
    },
  };
}

async function hit(url: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

/** /call/a/call/b/call/a/...: n direct /call levels over `hops`. */
const nest = (hops: string[], n: number) => Array.from({ length: n }, (_, i) => `/call/${hops[i % hops.length]}`).join('');
/** /call/gateway/<service>/call/gateway/<service>/...: n calls back to `service` through the gateway. */
const viaGateway = (service: string, n: number) => `/call/gateway/${service}`.repeat(n);

/** fetch refuses to send TRACE; node:http does not. */
function rawRequest(url: string, method: string, headers: Record<string, string> = {}): Promise<{ status: number; allow: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, allow: String(res.headers.allow ?? ''), text }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('/call loops and amplification', () => {
  let consul: ConsulAgent;
  let web: ServiceProcess; // service-web
  let b: ServiceProcess; // service-b
  let c: ServiceProcess; // service-c: a misconfigured gateway name, so only Via protects it
  let gw: ServiceProcess;
  const counters = new Map<string, { take(): Served[] }>();

  /** Waits until no process logged anything for 300 ms, then the requests each served. */
  async function served(): Promise<Record<string, Served[]>> {
    const seen: Record<string, Served[]> = {};
    for (const name of counters.keys()) seen[name] = [];
    let quietSince = Date.now();
    const deadline = Date.now() + 5_000;
    while (Date.now() - quietSince < 300 && Date.now() < deadline) {
      await sleep(50);
      for (const [name, counter] of counters) {
        const got = counter.take();
        if (got.length) {
          seen[name]!.push(...got);
          quietSince = Date.now();
        }
      }
    }
    return seen;
  }

  /** Asserts exactly how many requests each process served for one client request, and the bound. */
  async function expectServed(label: string, want: Record<string, number>, clientHitAWeb = true): Promise<void> {
    const seen = await served();
    const counts = Object.fromEntries(Object.entries(seen).map(([k, v]) => [k, v.length]));
    const expected = { 'service-web': 0, 'service-b': 0, 'service-c': 0, ...want };
    assert.deepEqual(counts, expected, `${label}: ${JSON.stringify(seen)}`);
    const total = Object.values(counts).reduce((a, n) => a + n, 0);
    assert.ok(total - (clientHitAWeb ? 1 : 0) <= MAX_INTERNAL, `${label}: ${total} requests at the web services`);
  }

  before(async () => {
    consul = await new ConsulAgent({ mode: 'dev' }).start();
    const env = { CONSUL_HTTP_ADDR: consul.httpAddr, LOG_LEVEL: 'debug' };
    web = await startWeb({ ...env, SERVICE_NAME: 'service-web' });
    b = await startWeb({ ...env, SERVICE_NAME: 'service-b' });
    c = await startWeb({ ...env, SERVICE_NAME: 'service-c', GATEWAY_SERVICE_NAME: 'not-the-gateway' });
    for (const [name, p] of [['service-web', web], ['service-b', b], ['service-c', c]] as const) {
      await consul.register({ container: name, name, address: '127.0.0.1', port: p.port });
      counters.set(name, countRequests(p));
    }
    // A gateway that fails to start fails every test here (the hook throws): the cases
    // "through the gateway" must never pass by not running.
    gw = await startGateway(consul.httpAddr);
    // Registered as in compose, so a /call that got past the name check would find it.
    await consul.register({ container: 'gateway', name: 'gateway', address: '127.0.0.1', port: gw.port, checkPath: '/_gateway/health' });
    await waitFor('the gateway to route every web service', async () => {
      for (const s of ['service-web', 'service-b', 'service-c']) if ((await routedIds(gw, s)).length !== 1) return false;
      return true;
    }, 20_000);
    await waitFor('all services passing', async () => {
      for (const s of ['service-web', 'service-b', 'service-c', 'gateway']) if ((await consul.passing(s)).length !== 1) return false;
      return true;
    }, 20_000);
    await served(); // drop whatever start-up logged
  });

  after(async () => {
    await gw?.stop().catch(() => gw?.kill());
    for (const p of [web, b, c]) p?.kill();
    await consul?.stop();
  });

  describe('straight to the web services', () => {
    test('a plain /call: one hop, marked in Via', async () => {
      const r = await hit(`${web.url}/call/service-b/echo`);
      assert.equal(r.status, 200);
      assert.equal(r.body.status, 200);
      assert.equal(r.body.body.headers.via, '1.1 service-web (call)');
      await expectServed('plain call', { 'service-web': 1, 'service-b': 1 });
    });

    const forbidden: Array<[string, string, RegExp]> = [
      ['the gateway', `${viaGateway('service-web', 3)}/`, /gateway/],
      ['the gateway, any case', '/call/GateWay/service-web/', /gateway/],
      ['consul', '/call/consul/v1/agent/self', /consul/],
      ['itself', '/call/service-web/call/service-web/', /itself/],
      ['itself, percent-encoded', '/call/%73ervice-web/', /itself/],
    ];
    for (const [name, path, message] of forbidden) {
      test(`/call to ${name}: 403 call_forbidden, nothing sent`, async () => {
        const r = await hit(`${web.url}${path}`);
        assert.equal(r.status, 403);
        assert.equal(r.body.error, 'call_forbidden');
        assert.match(r.body.message, message);
        await expectServed(name, { 'service-web': 1 });
      });
    }

    test('service-web → /call/service-b/call/service-web: service-b answers 508', async () => {
      const r = await hit(`${web.url}/call/service-b/call/service-web/`);
      assert.equal(r.status, 200, 'service-web reports what service-b answered');
      assert.equal(r.body.status, 508);
      assert.equal(r.body.body.error, 'loop_detected');
      await expectServed('two-service loop', { 'service-web': 1, 'service-b': 1 });
    });

    test('200 levels of nesting: still one hop', async () => {
      const path = nest(['service-b', 'service-web'], 200);
      const r = await hit(`${web.url}${path}/`);
      assert.equal(r.status, 200);
      assert.equal(r.body.status, 508);
      assert.equal(r.body.body.error, 'loop_detected');
      await expectServed('200 levels', { 'service-web': 1, 'service-b': 1 });
    });

    test('a client that forges a /call hop is refused at once', async () => {
      const r = await hit(`${b.url}/call/service-web/`, { headers: { Via: '1.1 somewhere (call)' } });
      assert.equal(r.status, 508);
      assert.equal(r.body.error, 'loop_detected');
      await expectServed('forged hop', { 'service-b': 1 });
    });

    test('an over-long Via is treated as a loop', async () => {
      const via = Array.from({ length: 40 }, (_, i) => `1.1 h${i}`).join(', ');
      const r = await hit(`${web.url}/call/service-b/`, { headers: { Via: via } });
      assert.equal(r.status, 508);
      await expectServed('long Via', { 'service-web': 1 });
    });

    test('TRACE is refused on every path, /echo included, and nothing is reflected', async () => {
      for (const path of ['/echo', '/call/service-b/', '/']) {
        const r = await rawRequest(`${web.url}${path}`, 'TRACE', { Cookie: 'session=secret' });
        assert.equal(r.status, 405, path);
        assert.match(r.allow, /GET/, path);
        assert.equal(JSON.parse(r.text).error, 'method_not_allowed');
        assert.ok(!r.text.includes('secret'), path);
        await expectServed(`TRACE ${path}`, { 'service-web': 1 });
      }
    });
  });

  // These need the gateway's side of the Via contract (see the top of the file).
  describe('through the gateway', () => {
    test('gateway → service-web /call/gateway/...: 403 from service-web', async () => {
      const r = await hit(`${gw.url}/service-web${viaGateway('service-web', 20)}/`);
      assert.equal(r.status, 403);
      assert.equal(r.body.error, 'call_forbidden');
      await expectServed('via gateway, call gateway', { 'service-web': 1 }, false);
    });

    test('gateway → service-web → /call/service-b/call/service-web: one hop, 508 from service-b', async () => {
      const r = await hit(`${gw.url}/service-web${nest(['service-b', 'service-web'], 200)}/`);
      assert.equal(r.status, 200);
      assert.equal(r.body.status, 508);
      assert.equal(r.body.body.error, 'loop_detected');
      await expectServed('via gateway, two-service loop', { 'service-web': 1, 'service-b': 1 }, false);
    });

    test('the gateway appends its Via entry', async () => {
      const r = await hit(`${gw.url}/service-web/echo`);
      assert.equal(r.status, 200);
      assert.equal(r.body.headers.via, '1.1 gateway');
      const chained = await hit(`${gw.url}/service-web/call/service-b/echo`);
      assert.equal(chained.body.body.headers.via, '1.1 gateway, 1.1 service-web (call)');
      await served();
    });

    test('a request whose Via already names the gateway: 508 from the gateway, nothing forwarded', async () => {
      const r = await hit(`${gw.url}/service-web/`, { headers: { Via: '1.1 service-x (call), 1.1 gateway' } });
      assert.equal(r.status, 508);
      assert.equal(r.body.error, 'loop_detected');
      await expectServed('gateway loop', {}, false);
    });

    test('a web service with the wrong gateway name: Via alone stops the loop at one hop', async () => {
      // service-c calls the gateway (its name check misses), the gateway routes back to service-c,
      // whose /call sees its own (call) hop and answers 508. Without Via this would nest 6 deep.
      const r = await hit(`${c.url}${viaGateway('service-c', 6)}/`);
      assert.equal(r.status, 200);
      assert.equal(r.body.status, 508);
      assert.equal(r.body.body.error, 'loop_detected');
      await expectServed('wrong gateway name', { 'service-c': 2 });
    });
  });
});
