import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { pino } from 'pino';
import { z } from 'zod';
import { ConsulAgents, Discovery, discoveryEnv, discoveryOptions, parseEnv, type RouteTable } from '@stack/shared';
import { ConsulAgent } from '../lib/consul.js';
import { sleep, waitFor } from '../lib/ports.js';
import { recordFigure } from '../lib/figures.js';
import { seededRandom } from '../lib/divergence.js';

// An invariant, not a scenario: while a seeded random script changes a real
// Consul (registrations with and without checks, checks failing and passing,
// address changes, maintenance, deregistrations, on the agent's node and on
// other nodes registered through the catalog, nodes deregistered whole), a watcher compares the
// table with Consul's own answer (/v1/health/service/<name>?passing) every
// 50 ms. Every divergence must close within BOUND_MS, and the reconciliation
// (a leader read of every service every second here) must never find
// anything to correct: a correction is a change the blocking queries missed.
//
// Replay a failure with CHURN_SEED=<seed printed below>; run longer with
// CHURN_SECONDS=<n>.

const SECONDS = Number(process.env.CHURN_SECONDS ?? 20);
const SEED = Number(process.env.CHURN_SEED ?? Math.floor(Math.random() * 2 ** 31));
// A change is routed in milliseconds (one blocking answer and a read or two); 1 s leaves room for a loaded machine.
const BOUND_MS = 1000;
const SERVICES = ['c-web', 'c-api', 'c-bare'];

const members = (t: RouteTable, s: string) => (t.services.get(s) ?? []).map((i) => `${i.id}@${i.port}`).sort().join(',');

describe('discovery under random churn against a real Consul', () => {
  let consul: ConsulAgent;
  let pool: ConsulAgents;
  let d: Discovery;

  before(async () => {
    consul = await new ConsulAgent({ mode: 'dev' }).start();
  });
  after(async () => {
    d?.stop();
    pool?.close();
    await consul?.stop();
  });

  const call = (method: string, path: string, body?: unknown) =>
    new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: consul.ports.http, method, path, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`))));
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });

  /** Consul's own passing set of a service, as the same `id@port` list as the table's. */
  async function consulPassing(service: string): Promise<string> {
    const entries = JSON.parse(await call('GET', `/v1/health/service/${service}?passing`)) as Array<{ Service: { ID: string; Port: number } }>;
    return entries.map((e) => `${e.Service.ID}@${e.Service.Port}`).sort().join(',');
  }

  test(`every divergence from Consul's passing set closes within ${BOUND_MS} ms, and the reconciliation corrects nothing`, async () => {
    console.log(`# churn seed ${SEED} (replay: CHURN_SEED=${SEED}), ${SECONDS} s`);
    const rnd = seededRandom(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    // No empty-answer hold: the invariant compares with Consul's answer as it is.
    const config = parseEnv(z.object(discoveryEnv), { CONSUL_HTTP_ADDR: consul.httpAddr, CONSUL_EMPTY_CONFIRM_MS: '0', CONSUL_RECONCILE_INTERVAL_MS: '1000' });
    pool = new ConsulAgents(config.CONSUL_HTTP_ADDR);
    const lines: Array<{ msg: string; level: number }> = [];
    d = new Discovery(pool, discoveryOptions(config, ['consul']), pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }));

    // Instances: id -> { service, check: 'none' | check status, port, node (another node's name; none: the agent's) }
    type Check = 'none' | 'passing' | 'critical';
    const live = new Map<string, { service: string; check: Check; port: number; node?: string }>();
    let next = 0;
    const register = async (id: string, service: string, check: Check, port: number) => {
      await call('PUT', '/v1/agent/service/register', {
        ID: id, Name: service, Address: '127.0.0.1', Port: port,
        ...(check === 'none' ? {} : { Check: { CheckID: `check-${id}`, TTL: '1h', Status: check } }),
      });
      live.set(id, { service, check, port });
    };
    // On another node, through the catalog (as an external service would be): no agent, no serfHealth.
    const OTHER_NODES = ['c-host-1', 'c-host-2', 'c-host-3'];
    const registerOn = async (node: string, id: string, service: string, check: Check, port: number) => {
      await call('PUT', '/v1/catalog/register', {
        Node: node, Address: '127.0.0.1', Service: { ID: id, Service: service, Address: '127.0.0.1', Port: port },
        ...(check === 'none' ? {} : { Check: { CheckID: `check-${id}`, Name: 'churn', Status: check, ServiceID: id } }),
      });
      live.set(id, { service, check, port, node });
    };
    const deregister = async (id: string) => {
      const node = live.get(id)?.node;
      await (node ? call('PUT', '/v1/catalog/deregister', { Node: node, ServiceID: id }) : call('PUT', `/v1/agent/service/deregister/${id}`));
      live.delete(id);
    };
    for (const s of SERVICES) await register(`${s}-${next++}`, s, s === 'c-bare' ? 'none' : 'passing', 20_000 + next);
    d.watchCatalog();
    await waitFor('synced', () => d.synced, 10_000);

    const steps: Record<string, number> = {};
    const step = async () => {
      const ids = [...live.keys()];
      const kind = pick(['add', 'add', 'remove', 'flip', 'flip', 'move', 'maint', 'burst', 'elsewhere', 'elsewhere', 'node-gone']);
      steps[kind] = (steps[kind] ?? 0) + 1;
      if (kind === 'add' || ids.length < 2) {
        const service = pick(SERVICES);
        await register(`${service}-${next++}`, service, service === 'c-bare' ? 'none' : pick(['none', 'passing', 'critical'] as const), 20_000 + next);
      } else if (kind === 'remove') {
        await deregister(pick(ids));
      } else if (kind === 'elsewhere') {
        const service = pick(SERVICES);
        await registerOn(pick(OTHER_NODES), `${service}-${next++}`, service, pick(['none', 'passing', 'critical'] as const), 20_000 + next);
      } else if (kind === 'node-gone') {
        // A whole node deregistered: every instance on it goes at once, with no check of its own changing.
        const node = pick(OTHER_NODES);
        await call('PUT', '/v1/catalog/deregister', { Node: node });
        for (const [id, inst] of live) if (inst.node === node) live.delete(id);
      } else if (kind === 'flip') {
        const withCheck = ids.filter((id) => live.get(id)!.check !== 'none' && !live.get(id)!.node);
        if (withCheck.length === 0) return;
        const id = pick(withCheck);
        const inst = live.get(id)!;
        inst.check = inst.check === 'passing' ? 'critical' : 'passing';
        await call('PUT', `/v1/agent/check/${inst.check === 'passing' ? 'pass' : 'fail'}/check-${id}`);
      } else if (kind === 'move') {
        const id = pick(ids);
        const inst = live.get(id)!;
        // Re-registered on another port.
        await (inst.node ? registerOn(inst.node, id, inst.service, inst.check, inst.port + 1000) : register(id, inst.service, inst.check, inst.port + 1000));
      } else if (kind === 'maint') {
        const id = pick(ids.filter((i) => !live.get(i)!.node));
        if (id === undefined) return;
        await call('PUT', `/v1/agent/service/maintenance/${id}?enable=true&reason=churn`);
        await sleep(rnd() * 100);
        await call('PUT', `/v1/agent/service/maintenance/${id}?enable=false`);
      } else {
        // Several writes back to back: one catalog answer and one check-feed answer show them all.
        const service = pick(SERVICES);
        await Promise.all([
          register(`${service}-${next++}`, service, 'none', 20_000 + next),
          register(`${pick(SERVICES)}-${next++}`, 'c-api', 'passing', 20_000 + next),
          ids.length > 3 ? deregister(ids[0]!) : Promise.resolve(),
        ]);
      }
    };

    // The watcher: divergences per service, each from the first sample that differed to the first that agreed.
    const open = new Map<string, number>();
    const closed: number[] = [];
    let samples = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const s of SERVICES) {
          const theirs = await consulPassing(s);
          const ours = members(d.table, s);
          const since = open.get(s);
          if (ours !== theirs) {
            if (since === undefined) open.set(s, performance.now());
            else assert.ok(performance.now() - since <= BOUND_MS * 3, `${s} diverged for over ${BOUND_MS * 3} ms: table ${ours} vs consul ${theirs} (seed ${SEED})`);
          } else if (since !== undefined) {
            closed.push(performance.now() - since);
            open.delete(s);
          }
        }
        samples++;
        await sleep(50);
      }
    })();

    const end = Date.now() + SECONDS * 1000;
    let changes = 0;
    try {
      while (Date.now() < end) {
        await step();
        changes++;
        await sleep(rnd() * 250);
      }
      // Settle: every divergence still open must close within the bound.
      await sleep(BOUND_MS + 200);
    } finally {
      watching = false;
      await watcher;
    }
    assert.deepEqual([...open.keys()], [], `divergences still open after the run (seed ${SEED})`);
    closed.sort((a, b) => a - b);
    const worst = closed.length ? closed[closed.length - 1]! : 0;
    const p99 = closed.length ? closed[Math.min(closed.length - 1, Math.ceil(closed.length * 0.99) - 1)]! : 0;
    const r = d.state().reconcile;
    console.log(`# ${changes} changes (${JSON.stringify(steps)}), ${samples} samples, ${closed.length} divergences, worst ${worst.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, ${r.sweeps} reconciliations, ${r.corrections} corrections`);
    recordFigure('integration', 'discovery churn: divergences from consul closed (n / worst ms / p99 ms)', `${closed.length} / ${worst.toFixed(0)} / ${p99.toFixed(0)} (seed ${SEED})`);
    assert.ok(worst <= BOUND_MS, `worst divergence ${worst.toFixed(0)} ms (seed ${SEED})`);
    assert.ok(r.sweeps >= 2, `${r.sweeps} reconciliation passes`);
    assert.equal(r.corrections, 0, `the reconciliation corrected the table: a change was missed (seed ${SEED}): ${lines.filter((l) => l.level >= 40).map((l) => l.msg).join('; ')}`);
  });
});
