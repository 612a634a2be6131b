import { ComposeStack, docker, type Container } from './compose.js';
import { sleep, waitFor } from './ports.js';

/** What one step of a fault run did and how long the system took to follow. */
export interface StepResult {
  step: string;
  startedAt: number;
  endedAt: number;
  /** Named convergence figures in ms (e.g. "passing→routed max"). */
  figures: Record<string, number>;
  detail?: string;
}

interface CheckState {
  ServiceID: string;
  Status: string;
}

async function passingIds(stack: ComposeStack): Promise<Set<string>> {
  const checks = await stack.json<CheckState[]>(`${stack.consulUrl}/v1/health/checks/service-web`);
  return new Set(checks.filter((c) => c.Status === 'passing').map((c) => c.ServiceID));
}

/**
 * Waits until every container in `added` is routed by the gateway, noting per
 * container when its Consul check first passed and when the gateway first
 * listed it (polled every 50 ms).
 */
export async function measureAdded(stack: ComposeStack, added: Container[], timeoutMs = 30_000) {
  const passAt = new Map<string, number>();
  const routedAt = new Map<string, number>();
  const deadline = Date.now() + timeoutMs;
  while (routedAt.size < added.length && Date.now() < deadline) {
    const [passing, routed] = await Promise.all([passingIds(stack).catch(() => new Set<string>()), stack.routed().catch(() => [])]);
    const now = Date.now();
    for (const c of added) {
      const id = ComposeStack.serviceId(c);
      if (!passAt.has(id) && passing.has(id)) passAt.set(id, now);
      if (!routedAt.has(id) && routed.some((r) => r.id === id)) routedAt.set(id, now);
    }
    await sleep(50);
  }
  const missing = added.filter((c) => !routedAt.has(ComposeStack.serviceId(c)));
  if (missing.length) throw new Error(`not routed within ${timeoutMs} ms: ${missing.map((c) => c.name)}`);
  const startToRouted = added.map((c) => routedAt.get(ComposeStack.serviceId(c))! - c.startedAt);
  // A check seen passing in the same poll as the route counts as 0.
  const passToRouted = added.map((c) => {
    const id = ComposeStack.serviceId(c);
    return Math.max(0, routedAt.get(id)! - (passAt.get(id) ?? routedAt.get(id)!));
  });
  return { startToRoutedMax: Math.max(...startToRouted), passToRoutedMax: Math.max(...passToRouted) };
}

/**
 * Polls the gateway's table every 50 ms while a step runs, so the moment an
 * instance leaves it is known even when the step's command returns later.
 */
class RouteWatcher {
  readonly lastSeen = new Map<string, number>();
  #running = true;
  #done: Promise<void>;

  constructor(private readonly stack: ComposeStack) {
    this.#done = this.#poll();
  }

  async #poll(): Promise<void> {
    while (this.#running) {
      const routed = await this.stack.routed().catch(() => undefined);
      const now = Date.now();
      for (const r of routed ?? []) this.lastSeen.set(r.id, now);
      await sleep(50);
    }
  }

  /** Waits until none of `removed` is routed; returns ms from `since` to the last time one was. */
  async removed(removed: Container[], since: number, timeoutMs = 30_000): Promise<number> {
    const ids = removed.map(ComposeStack.serviceId);
    await waitFor('instances to leave the gateway', async () => !(await this.stack.routed()).some((r) => ids.includes(r.id)), timeoutMs, 50);
    this.#running = false;
    await this.#done;
    return Math.max(0, ...ids.map((id) => (this.lastSeen.get(id) ?? since) - since));
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }
}

/** Scales web to n with compose (the scale file's service), measuring convergence. */
export async function scaleWeb(stack: ComposeStack, n: number): Promise<StepResult> {
  const before = await stack.containers('web-service');
  const watch = new RouteWatcher(stack);
  const startedAt = Date.now();
  // --no-deps: scale web only; a Consul server a test stopped stays stopped (consul-acl-init and
  // the servers are web's dependencies).
  await stack.compose(['up', '-d', '--no-recreate', '--no-deps', '--wait', '--scale', `web-service=${n}`, 'web-service'], { files: stack.withScale() });
  const after = await stack.containers('web-service');
  const added = after.filter((c) => !before.some((b) => b.id === c.id));
  const removed = before.filter((b) => !after.some((c) => c.id === b.id));
  const figures: Record<string, number> = {};
  if (added.length) Object.assign(figures, await measureAdded(stack, added));
  if (removed.length) figures.stopToUnroutedMs = await watch.removed(removed, startedAt);
  await watch.stop();
  await stack.waitRouted(n);
  return { step: `scale web ${before.length}→${n}`, startedAt, endedAt: Date.now(), figures };
}

export async function stopContainer(stack: ComposeStack, c: Container): Promise<StepResult> {
  const watch = new RouteWatcher(stack);
  const startedAt = Date.now();
  await docker(['stop', '-t', '10', c.id]);
  const figures: Record<string, number> = { stopMs: Date.now() - startedAt };
  if (c.service === 'web-service') figures.stopToUnroutedMs = await watch.removed([c], startedAt);
  await watch.stop();
  return { step: `docker stop ${c.name}`, startedAt, endedAt: Date.now(), figures };
}

export async function killContainer(stack: ComposeStack, c: Container): Promise<StepResult> {
  const watch = new RouteWatcher(stack);
  const startedAt = Date.now();
  await docker(['kill', c.id]);
  const figures: Record<string, number> = {};
  if (c.service === 'web-service') figures.killToUnroutedMs = await watch.removed([c], startedAt);
  await watch.stop();
  return { step: `docker kill ${c.name}`, startedAt, endedAt: Date.now(), figures };
}

/**
 * Pauses a web container for `ms`: it is alive to TCP but answers nothing.
 * Measures how soon the gateway stops using it (ejection or its Consul check)
 * and how soon it is routed again after unpause.
 */
export async function pauseContainer(stack: ComposeStack, c: Container, ms: number): Promise<StepResult> {
  const id = ComposeStack.serviceId(c);
  const startedAt = Date.now();
  await docker(['pause', c.id]);
  const out = (r: { id: string; ejectedUntil?: string }) => r.id === id && !r.ejectedUntil;
  await waitFor('paused instance out of rotation', async () => !(await stack.routed()).some(out), 20_000, 50);
  const outMs = Date.now() - startedAt;
  await sleep(Math.max(0, ms - (Date.now() - startedAt)));
  const unpausedAt = Date.now();
  await docker(['unpause', c.id]);
  await waitFor('unpaused instance back in rotation', async () => (await stack.routed()).some(out), 60_000, 50);
  return { step: `docker pause ${c.name} for ${ms / 1000} s`, startedAt, endedAt: Date.now(), figures: { pauseToOutMs: outMs, unpauseToBackMs: Date.now() - unpausedAt } };
}

export async function startContainer(stack: ComposeStack, c: Container): Promise<StepResult> {
  const startedAt = Date.now();
  await docker(['start', c.id]);
  return { step: `docker start ${c.name}`, startedAt, endedAt: Date.now(), figures: {} };
}

/** Stops the Consul leader; measures until the remaining servers elect a new one. */
export async function stopConsulLeader(stack: ComposeStack): Promise<StepResult & { stopped: Container }> {
  const leader = await stack.leaderContainer();
  const startedAt = Date.now();
  await docker(['stop', '-t', '5', leader.id]);
  const stoppedAt = Date.now();
  await waitFor('a new Consul leader', async () => {
    const l = await stack.leader().catch(() => '');
    return l && !l.startsWith(`${leader.ip}:`);
  }, 60_000, 100);
  return { step: `docker stop ${leader.name} (leader)`, startedAt, endedAt: Date.now(), figures: { newLeaderMs: Date.now() - stoppedAt }, stopped: leader };
}

/** Voters in Consul's raft configuration. */
export async function raftVoters(stack: ComposeStack): Promise<string[]> {
  const cfg = await stack.json<{ Servers: Array<{ Node: string; Voter: boolean }> }>(`${stack.consulUrl}/v1/operator/raft/configuration?stale`);
  return cfg.Servers.filter((s) => s.Voter).map((s) => s.Node).sort();
}

/**
 * Consul servers alive in serf. A restarted server may come back on another
 * IP (Docker hands out freed addresses); Consul 1.8 can then take a while to
 * list it as a raft voter again, so "whole again" is judged on serf.
 */
async function aliveServers(stack: ComposeStack): Promise<number> {
  const members = await stack.json<Array<{ Status: number; Tags: { role: string } }>>(`${stack.consulUrl}/v1/agent/members`);
  return members.filter((m) => m.Tags.role === 'consul' && m.Status === 1).length;
}

/**
 * Waits for three Consul servers alive in serf (and `more`, e.g. a leader); returns the ms it took.
 * 150 s: a scale-up while a server is down can take its IP, and Consul 1.8.7 can take over a
 * minute to take a server back on a new IP (one CI run timed out at 60 s).
 */
export async function waitServersBack(stack: ComposeStack, more: () => Promise<boolean> = async () => true): Promise<number> {
  const t0 = Date.now();
  await waitFor('three alive Consul servers again', async () => (await aliveServers(stack)) === 3 && (await more()), 150_000, 500);
  return Date.now() - t0;
}
