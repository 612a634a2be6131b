import { ConsulAgents, parseConsulAddrs } from '../../shared/src/consul/agents.js';
import { Discovery, type DiscoveryOptions } from '../../shared/src/consul/discovery.js';
import { FakeConsul } from './fake-consul.js';
import { memoryLog } from './memory-log.js';

/** Discovery's options for tests against the scripted Consul: short waits, backoffs and holds, no probe, no reconciliation. */
export const scriptedOptions: DiscoveryOptions = {
  waitMs: 1000,
  backoffBaseMs: 10,
  backoffMaxMs: 50,
  excluded: new Set(['consul']),
  emptyConfirmMs: 150,
  staleAfterMs: 1000,
  probeIntervalMs: 0,
  reconcileIntervalMs: 0,
};

/** A Discovery following `agents` scripted Consuls (test/lib/fake-consul.ts), with its log in memory; close() stops it all. */
export async function scriptedDiscovery(opts: Partial<DiscoveryOptions> = {}, agents = 1) {
  const fakes = await Promise.all(Array.from({ length: agents }, () => new FakeConsul().start()));
  const pool = new ConsulAgents(parseConsulAddrs(fakes.map((f) => f.addr).join(',')));
  const mem = memoryLog();
  const d = new Discovery(pool, { ...scriptedOptions, ...opts }, mem.log);
  const close = async () => {
    d.stop();
    pool.close();
    for (const f of fakes) await f.close();
  };
  return { fake: fakes[0]!, fakes, pool, d, mem, close };
}
