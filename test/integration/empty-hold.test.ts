import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsulAgent } from '../lib/consul.js';
import { startGateway, startWeb, type ServiceProcess } from '../lib/procs.js';
import { waitFor } from '../lib/ports.js';
import { routedIds } from '../lib/gateway.js';

// A service that suddenly has no passing instance is held for as long as its checks need to run
// once after an agent restart: interval + timeout of its longest check, where Consul reports
// them (1.11 and later), and CONSUL_EMPTY_CONFIRM_MS where it does not (1.8). Which path runs
// depends on the Consul in CONSUL_BIN: CI runs this file on 1.16.3 and again on 1.8.7
// (docs/consul-versions.md), so both paths run against a real agent.

const SERVICE = 'held';
const INTERVAL_MS = 4_000;
const TIMEOUT_MS = 1_000;
const FLOOR_MS = 1_000; // CONSUL_EMPTY_CONFIRM_MS

interface Explain {
  decision: string;
  gateway: { hold: { since: string; until: string } | null };
}

/** Consul's version from the agent itself ("1.16.3"); the first Consul that reports check intervals is 1.11. */
function reportsIntervals(version: string): boolean {
  const [major, minor] = version.split('.').map(Number);
  assert.ok(Number.isInteger(major) && Number.isInteger(minor), `a version: ${version}`);
  return major! > 1 || (major === 1 && minor! >= 11);
}

describe('the hold of a sudden empty answer, against the Consul in CONSUL_BIN', { timeout: 120_000 }, () => {
  let consul: ConsulAgent;
  let gw: ServiceProcess;
  let web: ServiceProcess;
  let version: string;
  let expectedHoldMs: number;

  before(async () => {
    consul = await new ConsulAgent({ mode: 'dev' }).start();
    const self = (await consul.api('GET', '/v1/agent/self')) as { Config: { Version: string } };
    version = self.Config.Version;
    expectedHoldMs = reportsIntervals(version) ? INTERVAL_MS + TIMEOUT_MS : FLOOR_MS;
    web = await startWeb();
    await consul.api('PUT', '/v1/agent/service/register', {
      ID: 'held:1',
      Name: SERVICE,
      Address: '127.0.0.1',
      Port: web.port,
      // passing from the start: Consul runs a new check first at a random point within its interval
      Check: { HTTP: `http://127.0.0.1:${web.port}/health`, Interval: `${INTERVAL_MS / 1000}s`, Timeout: `${TIMEOUT_MS / 1000}s`, Status: 'passing' },
    });
    gw = await startGateway(consul.httpAddr, { CONSUL_EMPTY_CONFIRM_MS: String(FLOOR_MS) });
    await waitFor('held:1 routed', async () => (await routedIds(gw, SERVICE)).join() === 'held:1', 15_000);
  });

  after(async () => {
    await gw?.stop().catch(() => gw.kill());
    web?.kill();
    await consul?.stop();
  });

  test("what Consul reports of a check's schedule: interval and timeout on 1.11+, neither before", async () => {
    const entries = (await consul.api('GET', `/v1/health/service/${SERVICE}`)) as Array<{
      Checks: Array<{ CheckID: string; Interval?: string; Timeout?: string; Definition?: Record<string, unknown> }>;
    }>;
    const check = entries[0]?.Checks.find((c) => c.CheckID === 'service:held:1');
    assert.ok(check, `the service check is listed: ${JSON.stringify(entries)}`);
    if (reportsIntervals(version)) {
      assert.equal(check.Interval, '4s', `Consul ${version}`);
      assert.equal(check.Timeout, '1s', `Consul ${version}`);
    } else {
      assert.equal(check.Interval, undefined, `Consul ${version}`);
      assert.equal(check.Definition?.Interval, undefined, `Consul ${version}: ${JSON.stringify(check.Definition)}`);
    }
  });

  test(`node maintenance: held for interval + timeout (1.11+) or CONSUL_EMPTY_CONFIRM_MS (1.8), then applied`, async () => {
    await consul.api('PUT', '/v1/agent/maintenance?enable=true&reason=hold%20test');
    try {
      const e = await waitFor('the empty answer held', async () => {
        const r = (await (await fetch(`${gw.url}/_gateway/explain/${SERVICE}`)).json()) as Explain;
        return r.decision === 'hold' && r.gateway.hold ? r : null;
      }, 5_000, 20);
      const since = Date.parse(e.gateway.hold!.since);
      const until = Date.parse(e.gateway.hold!.until);
      assert.equal(until - since, expectedHoldMs, `Consul ${version}: hold window ${e.gateway.hold!.since} .. ${e.gateway.hold!.until}`);
      const warned = gw.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('consul says no instance passes'));
      assert.equal(warned?.holdMs, expectedHoldMs, `the hold is logged with its length: ${JSON.stringify(warned)}`);

      // Routed until the hold ends, then taken out.
      const dropped = await waitFor('the held empty answer applied', async () => ((await routedIds(gw, SERVICE)).length === 0 ? Date.now() : 0), expectedHoldMs + 15_000, 20);
      assert.ok(dropped >= until - 5, `taken out ${until - dropped} ms before the hold ended (Consul ${version})`);
    } finally {
      await consul.api('PUT', '/v1/agent/maintenance?enable=false');
    }
    await waitFor('held:1 routed again', async () => (await routedIds(gw, SERVICE)).join() === 'held:1', 15_000);
  });
});
