import type { ComposeStack } from './compose.js';
import { sleep } from './ports.js';
import { DivergenceTracker, sameSet, type ExcuseKind } from './divergence.js';

/** How an instance is compared on both sides: node, service id, address and port. */
const key = (node: string, id: string, address: string, port: number) => `${node}/${id}@${address}:${port}`;

interface HealthEntry {
  Node: { Node: string; Address: string };
  Service: { ID: string; Address: string; Port: number };
}

interface GatewayHealth {
  consul: { reachable: boolean; reasons: string[] };
}

/** The parts of GET /_gateway/explain/<service> the checker reads (gateway/src/explain.ts). */
export interface ExplainView {
  summary: string;
  gateway: {
    holdMs: number | null;
    hold: { since: string; until: string } | null;
    agentLost: boolean;
    trust: { index: string | null; untrusted: { why: string; since: string } | null };
    failure: { error: string } | null;
  };
  instances: Array<{ id: string; routable: boolean; inTable?: boolean; reasons: Array<{ code: string; detail: string }> }>;
}

export interface HoldSeen {
  since: number;
  until: number;
  holdMs: number | null;
}

/**
 * Reads, several times a second, the gateway's table for one service
 * (GET /_gateway/services on its published port) and Consul's passing set for
 * it (GET /v1/health/service/<name>?passing on the published agent port, a
 * consistent read with the management token), and feeds a DivergenceTracker.
 * When they differ it asks the gateway why (/_gateway/health, then
 * /_gateway/explain/<service>) and excuses only what the gateway declares:
 * a hold of an N → 0 answer while Consul reports nothing passing, instances
 * kept because only their agent is lost, Consul unreachable from the gateway.
 */
export class ConsistencyWatcher {
  readonly tracker: DivergenceTracker;
  readonly holds = new Map<number, HoldSeen>();
  /** Observations where a side did not answer: when and why. */
  readonly consulFailures: Array<{ at: number; err: string }> = [];
  readonly gatewayFailures: Array<{ at: number; err: string }> = [];
  /** Observation times at which the gateway's health said it could not reach Consul. */
  readonly gatewayUnreachable: number[] = [];
  /** Observation times at which the checker could read Consul. */
  readonly consulOk: number[] = [];
  /** Consul's passing set at the last observation that read it. */
  lastPassing: ReadonlySet<string> = new Set();
  startedAt = 0;
  stoppedAt = 0;
  #running = false;
  #done: Promise<void> = Promise.resolve();

  constructor(
    readonly stack: ComposeStack,
    readonly opts: { service?: string; periodMs?: number; boundMs: number },
  ) {
    this.tracker = new DivergenceTracker(opts.boundMs);
  }

  get service(): string {
    return this.opts.service ?? 'service-web';
  }

  start(): this {
    this.#running = true;
    this.startedAt = Date.now();
    this.#done = this.#loop();
    return this;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
    this.stoppedAt = Date.now();
  }

  /** Consul's passing instances, as identity keys. */
  async consulPassing(): Promise<Set<string>> {
    const res = await fetch(`${this.stack.consulUrl}/v1/health/service/${this.service}?passing`, {
      headers: { 'X-Consul-Token': this.stack.consulToken ?? '' },
      signal: AbortSignal.timeout(3000),
    });
    if (!res.ok) throw new Error(`consul HTTP ${res.status}`);
    const body = (await res.json()) as HealthEntry[];
    return new Set(body.map((e) => key(e.Node.Node, e.Service.ID, e.Service.Address || e.Node.Address, e.Service.Port)));
  }

  async gatewayTable(): Promise<Set<string>> {
    const res = await fetch(`${this.stack.gatewayUrl}/_gateway/services`, { signal: AbortSignal.timeout(3000) });
    if (!res.ok) throw new Error(`gateway HTTP ${res.status}`);
    const body = (await res.json()) as { services: Record<string, Array<{ id: string; address: string; port: number; node: string }>> };
    return new Set((body.services[this.service] ?? []).map((i) => key(i.node, i.id, i.address, i.port)));
  }

  async gatewayHealth(): Promise<GatewayHealth> {
    const res = await fetch(`${this.stack.gatewayUrl}/_gateway/health`, { signal: AbortSignal.timeout(3000) });
    return (await res.json()) as GatewayHealth;
  }

  async explain(): Promise<ExplainView> {
    const res = await fetch(`${this.stack.gatewayUrl}/_gateway/explain/${this.service}`, { signal: AbortSignal.timeout(3000) });
    return (await res.json()) as ExplainView;
  }

  async #loop(): Promise<void> {
    const period = this.opts.periodMs ?? 200;
    while (this.#running) {
      const at = Date.now();
      await this.observeOnce(at);
      await sleep(Math.max(0, period - (Date.now() - at)));
    }
  }

  async observeOnce(at = Date.now()): Promise<void> {
    const [c, g, h] = await Promise.allSettled([this.consulPassing(), this.gatewayTable(), this.gatewayHealth()]);
    const consul = c.status === 'fulfilled' ? c.value : null;
    const gateway = g.status === 'fulfilled' ? g.value : null;
    if (c.status === 'rejected') this.consulFailures.push({ at, err: String((c.reason as Error)?.message ?? c.reason) });
    else {
      this.consulOk.push(at);
      this.lastPassing = c.value;
    }
    if (g.status === 'rejected') this.gatewayFailures.push({ at, err: String((g.reason as Error)?.message ?? g.reason) });
    const unreachable = h.status === 'fulfilled' && h.value.consul.reachable === false;
    if (unreachable) this.gatewayUnreachable.push(at);
    let excuse: { kind: ExcuseKind; until: number } | null = null;
    let note: unknown;
    if (consul && gateway && !sameSet(consul, gateway)) {
      const ex = await this.explain().catch((err: Error) => ({ error: err.message }) as const);
      note = { at: new Date(at).toISOString(), consul: [...consul].sort(), gateway: [...gateway].sort(), health: h.status === 'fulfilled' ? h.value.consul : null, explain: ex };
      if (unreachable) excuse = { kind: 'gateway-cannot-reach-consul', until: at };
      else if ('gateway' in ex && consul.size === 0 && ex.gateway.hold) {
        const since = Date.parse(ex.gateway.hold.since);
        const until = Date.parse(ex.gateway.hold.until);
        this.holds.set(since, { since, until, holdMs: ex.gateway.holdMs });
        excuse = { kind: 'hold', until };
      } else if ('gateway' in ex && consul.size === 0 && ex.gateway.agentLost) excuse = { kind: 'agent-lost', until: at };
    }
    this.tracker.observe({ at, consul, gateway, excuse, note });
  }
}

/** One thing the churn did, for the log and the replay. */
