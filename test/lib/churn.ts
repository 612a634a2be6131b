import { ComposeStack, docker, type Container } from './compose.js';
import type { ConsistencyWatcher } from './consistency.js';
import { seededRandom } from './divergence.js';
import { sleep } from './ports.js';

/**
 * The random churn the consistency checker runs under (test/e2e/consistency.test.ts): scale,
 * stop, kill, pause, agent restarts, check-less instances and catalog writes, from a printed seed.
 */

export interface ChurnEvent {
  at: number;
  action: string;
  detail: string;
  ms: number;
  error?: string;
}

export interface ChurnOptions {
  seed: number;
  /** Passing instances never taken below this by a stop, kill or pause (what traffic needs: 0 failed requests). */
  minPassing: number;
  /** Largest scale. */
  maxScale: number;
  /** The watcher: its last view of Consul's passing set decides whether a victim may be taken. */
  watcher: ConsistencyWatcher;
  /** The web image, for instances started outside compose without a check (registrator's default). */
  webImage: string;
  log?: (line: string) => void;
}

/**
 * The service the churn registers straight into Consul's catalog (an external node, no agent, no
 * check), with a neighbour service whose check changes in the same transaction. Its address is
 * TEST-NET-1 (RFC 5737): nothing sends it traffic; the checker only compares tables.
 */
export const EXT_SERVICE = 'service-ext';
const EXT_NODE = 'churn-ext';
const EXT_ADDRESS = '192.0.2.10';

/** The label on the check-less instances the churn starts with docker run (for cleanup). */
const PLAIN_LABEL = 'consistency.churn.plain';

/** Removes the check-less instances a churn of `project` started. */
export async function removePlain(project: string): Promise<void> {
  const { stdout } = await docker(['ps', '-aq', '--filter', `label=${PLAIN_LABEL}=${project}`]);
  const ids = stdout.split('\n').map((x) => x.trim()).filter(Boolean);
  if (ids.length) await docker(['rm', '-f', ...ids]);
}

const WEIGHTS: Array<[string, number]> = [
  ['scale', 26],
  ['burst', 10],
  ['stop', 14],
  ['kill', 14],
  ['pause', 14],
  ['start', 8],
  ['agent', 6],
  ['plain', 12],
  ['catalog', 12],
  ['idle', 8],
];

/**
 * A seeded random script on the compose stack: scales web up and down (with
 * and without --wait, and in quick bursts like the issue's 2 → 3 → 2 → 3),
 * stops (SIGTERM), kills (SIGKILL), pauses and unpauses instances, starts
 * stopped ones again, starts and removes instances registered without a check
 * (docker run, outside compose), adds and removes check-less instances of
 * EXT_SERVICE in one catalog transaction with another service's check change,
 * and restarts the Consul client agent. Every choice comes
 * from the seed; which container a choice lands on follows from the stack's
 * state (sorted by name), so a replay repeats the choices, not the timings.
 */
export class Churn {
  readonly events: ChurnEvent[] = [];
  /** Epoch ms of each SIGKILL of a web instance. */
  readonly kills: number[] = [];
  /** Each agent restart: from the stop to the first consistent read of Consul after it. */
  readonly agentRestarts: Array<{ from: number; startedAt: number }> = [];
  readonly rand: () => number;
  #paused = new Map<string, NodeJS.Timeout>();
  /** Containers a background stop is draining: not victims any more. */
  #stopping = new Set<string>();
  #plainSeq = 0;
  #extSeq = 0;
  #extIds: string[] = [];
  #beatStatus = 'warning';
  #background = new Set<Promise<void>>();
  #t0 = Date.now();

  constructor(
    readonly stack: ComposeStack,
    readonly opts: ChurnOptions,
  ) {
    this.rand = seededRandom(opts.seed);
  }

  #int(lo: number, hi: number): number {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }

  #pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)]!;
  }

  #choose(): string {
    const total = WEIGHTS.reduce((a, [, w]) => a + w, 0);
    let r = this.rand() * total;
    for (const [name, w] of WEIGHTS) if ((r -= w) < 0) return name;
    return 'idle';
  }

  async #record(action: string, detail: string, fn: () => Promise<unknown>): Promise<void> {
    const at = Date.now();
    let error: string | undefined;
    try {
      await fn();
    } catch (err) {
      // The command and the end of its output (compose says why at the end).
      const m = (err as Error).message;
      error = `${m.split('\n')[0]!.slice(0, 160)} … ${m.replace(/\s+/g, ' ').slice(-240)}`;
    }
    const e: ChurnEvent = { at, action, detail, ms: Date.now() - at, ...(error ? { error } : {}) };
    this.events.push(e);
    this.opts.log?.(`[churn +${((at - this.#t0) / 1000).toFixed(1)}s] ${action} ${detail} (${e.ms} ms)${error ? ` ERROR ${error}` : ''}`);
  }

  /** Runs until `untilMs` (epoch); then unpauses everything and waits for what it started. */
  async run(untilMs: number, forceAgentRestartAt?: number): Promise<void> {
    this.#t0 = Date.now();
    let agentForced = forceAgentRestartAt === undefined;
    while (Date.now() < untilMs) {
      let action = this.#choose();
      if (!agentForced && Date.now() >= forceAgentRestartAt!) action = 'agent';
      if (action === 'agent') agentForced = true;
      await this.#step(action);
      await sleep(this.#int(0, 2500));
    }
    // A short churn whose steps ran past the moment still restarts the agent once.
    if (!agentForced) await this.#step('agent');
    await this.settle();
  }

  async settle(): Promise<void> {
    await Promise.all([...this.#background]);
    await this.#unpauseAll();
  }

  async #webs(): Promise<Container[]> {
    return this.stack.containers('web-service', true);
  }

  /** Running, unpaused web containers whose instance Consul reports passing and no step is taking away. */
  async #passingVictims(): Promise<Container[]> {
    const passing = [...this.opts.watcher.lastPassing].map((k) => k.split('/')[1]!.split('@')[0]!);
    return (await this.#webs()).filter((c) => c.running && !c.paused && !this.#paused.has(c.id) && !this.#stopping.has(c.id) && passing.includes(ComposeStack.serviceId(c)));
  }

  async #unpauseAll(): Promise<void> {
    for (const [id, timer] of [...this.#paused]) {
      clearTimeout(timer);
      this.#paused.delete(id);
      await this.#record('unpause', id.slice(0, 12), () => docker(['unpause', id]));
    }
  }

  async #scale(n: number, wait: boolean): Promise<void> {
    const args = ['up', '-d', '--no-recreate', '--no-deps', ...(wait ? ['--wait'] : []), '--scale', `web-service=${n}`, 'web-service'];
    await this.stack.compose(args, { files: this.stack.withScale(), timeoutMs: 120_000 });
  }

  async #step(action: string): Promise<void> {
    const victims = await this.#passingVictims();
    // A victim may go only if minPassing others stay passing.
    const canTake = victims.length > this.opts.minPassing;
    switch (action) {
      case 'scale': {
        // Compose acts on paused and stopping containers too: let those finish first.
        await Promise.all([...this.#background]);
        await this.#unpauseAll();
        // Never down to minPassing: one instance more leaves the stops, kills and pauses room to act.
        const n = this.#int(this.opts.minPassing + 1, this.opts.maxScale);
        const wait = this.rand() < 0.5;
        await this.#record('scale', `web-service=${n}${wait ? ' --wait' : ''}`, () => this.#scale(n, wait));
        return;
      }
      case 'burst': {
        await Promise.all([...this.#background]);
        await this.#unpauseAll();
        const lo = this.#int(this.opts.minPassing, this.opts.maxScale - 1);
        for (const n of [lo + 1, lo, lo + 1]) await this.#record('scale', `web-service=${n} (burst, no wait)`, () => this.#scale(n, false));
        return;
      }
      case 'stop':
      case 'kill':
      case 'pause': {
        // Too few to take one: grow instead (the dice decide by how much), so the churn never idles.
        if (!canTake) return this.#step('grow');
        const v = this.#pick(victims);
        if (action === 'kill') {
          this.kills.push(Date.now());
          return this.#record('kill', v.name, () => docker(['kill', v.id]));
        }
        if (action === 'stop') {
          // In the background: a stop drains for DRAIN_GRACE_MS, meanwhile the churn goes on.
          this.#stopping.add(v.id);
          const p: Promise<void> = this.#record('stop', v.name, () => docker(['stop', '-t', '10', v.id])).finally(() => {
            this.#background.delete(p);
            this.#stopping.delete(v.id);
          });
          this.#background.add(p);
          return;
        }
        const ms = this.#int(2000, 8000);
        await this.#record('pause', `${v.name} for ${ms} ms`, () => docker(['pause', v.id]));
        const timer = setTimeout(() => {
          if (!this.#paused.delete(v.id)) return;
          const p: Promise<void> = this.#record('unpause', v.name, () => docker(['unpause', v.id])).finally(() => this.#background.delete(p));
          this.#background.add(p);
        }, ms);
        this.#paused.set(v.id, timer);
        return;
      }
      case 'plain': {
        // A service-web instance registrator registers without a check (no SERVICE_CHECK_* set): its
        // add and its removal reach Consul with no check write. At most two at a time.
        const { stdout } = await docker(['ps', '-q', '--filter', `label=${PLAIN_LABEL}=${this.stack.project}`]);
        const running = stdout.split('\n').map((x) => x.trim()).filter(Boolean).sort();
        if (running.length >= 2 || (running.length > 0 && this.rand() < 0.5)) {
          const id = this.#pick(running);
          return this.#record('plain', `stop and remove ${id.slice(0, 12)}`, async () => {
            await docker(['stop', '-t', '10', id]);
            await docker(['rm', id]);
          });
        }
        const name = `${this.stack.project}-plain-${++this.#plainSeq}`;
        return this.#record('plain', `start ${name} (no check)`, () =>
          docker(['run', '-d', '--name', name, '--label', `${PLAIN_LABEL}=${this.stack.project}`, '--network', `${this.stack.project}_mesh`,
            '-e', 'SERVICE_NAME=service-web', '-e', 'CONSUL_HTTP_ADDR=consul-agent:8500', '-e', 'LOG_LEVEL=warn', this.opts.webImage]));
      }
      case 'catalog': {
        // One Consul transaction: a check-less instance of EXT_SERVICE added or removed on an
        // external node, and, in the same catalog index, a check of another service changing
        // status. A follower that takes the check change for the whole story misses the instance.
        const ids = this.#extIds;
        const add = ids.length === 0 || (ids.length < 4 && this.rand() < 0.6);
        const id = add ? `ext-${++this.#extSeq}` : this.#pick(ids);
        const status = this.#beatStatus = this.#beatStatus === 'passing' ? 'warning' : 'passing';
        const ops = [
          { Node: { Verb: 'set', Node: { Node: EXT_NODE, Address: EXT_ADDRESS } } },
          add
            ? { Service: { Verb: 'set', Node: EXT_NODE, Service: { ID: id, Service: EXT_SERVICE, Address: EXT_ADDRESS, Port: 3000 + this.#extSeq } } }
            : { Service: { Verb: 'delete', Node: EXT_NODE, Service: { ID: id, Service: EXT_SERVICE } } },
          { Node: { Verb: 'set', Node: { Node: `${EXT_NODE}-beat`, Address: EXT_ADDRESS } } },
          { Service: { Verb: 'set', Node: `${EXT_NODE}-beat`, Service: { ID: 'beat-1', Service: `${EXT_SERVICE}beat`, Address: EXT_ADDRESS, Port: 3000 } } },
          { Check: { Verb: 'set', Check: { Node: `${EXT_NODE}-beat`, CheckID: 'beat', Name: 'beat', Status: status, ServiceID: 'beat-1', ServiceName: `${EXT_SERVICE}beat`, Output: `beat ${this.events.length}` } } },
        ];
        return this.#record('catalog', `${add ? 'add' : 'remove'} ${EXT_SERVICE} ${id} (no check) with a check of ${EXT_SERVICE}beat going ${status}, one transaction`, async () => {
          const res = await fetch(`${this.stack.consulUrl}/v1/txn`, {
            method: 'PUT',
            headers: { 'X-Consul-Token': this.stack.consulToken ?? '' },
            body: JSON.stringify(ops),
            signal: AbortSignal.timeout(10_000),
          });
          if (!res.ok) throw new Error(`txn HTTP ${res.status}: ${await res.text()}`);
          this.#extIds = add ? [...ids, id] : ids.filter((x) => x !== id);
        });
      }
      case 'grow': {
        await Promise.all([...this.#background]);
        await this.#unpauseAll();
        const n = this.#int(this.opts.minPassing + 1, this.opts.maxScale);
        await this.#record('scale', `web-service=${n} (grow)`, () => this.#scale(n, false));
        return;
      }
      case 'start': {
        const exited = (await this.#webs()).filter((c) => !c.running);
        if (exited.length === 0) return this.#step('grow');
        const c = this.#pick(exited);
        return this.#record('start', c.name, () => docker(['start', c.id]));
      }
      case 'agent': {
        const [agent] = await this.stack.containers('consul-agent');
        const from = Date.now();
        await this.#record('restart consul-agent', '', () => docker(['restart', '-t', '5', agent!.id], 60_000));
        this.agentRestarts.push({ from, startedAt: Date.now() });
        return;
      }
      default:
        return this.#record('idle', '', () => sleep(this.#int(500, 3000)));
    }
  }
}
