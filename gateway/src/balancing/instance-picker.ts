import { RoundRobin, type Instance } from '@stack/shared';
import { ewmaCost, LoadTracker, p2c, type LbPolicy, type LoadView } from './balancer.js';
import type { OutlierDetector } from './outlier.js';

/**
 * Chooses the instance for each attempt among a service's passing instances,
 * leaving out ones already tried for this request and ones passive health has
 * ejected. By default power of two choices over a load score (balancer.ts:
 * peak-EWMA latency times requests in flight, as Linkerd); LB_POLICY picks
 * least_request (Envoy's P2C over requests in flight) or round_robin.
 * A retry goes to an instance on a Consul node the request has not failed on,
 * when one is left: a node that is dead or drained takes all its instances
 * with it, and Consul lists them for a few seconds more. When every untried
 * instance is ejected it tries them anyway: a guess beats a 503.
 */
export class InstancePicker {
  #rr = new RoundRobin();
  readonly load: LoadTracker;

  constructor(
    private readonly outliers: OutlierDetector,
    readonly policy: LbPolicy = 'round_robin',
    load?: LoadTracker,
    private readonly random: () => number = Math.random,
  ) {
    this.load = load ?? new LoadTracker();
  }

  /** `failedNodes`: the Consul nodes of this request's failed (or still pending) attempts. */
  pick(service: string, instances: readonly Instance[], tried: readonly string[], failedNodes: readonly string[] = []): Instance | undefined {
    const wasTried = (i: Instance) => tried.length > 0 && tried.includes(i.key);
    const skip = (i: Instance) => wasTried(i) || this.outliers.isEjected(i.key);
    return (
      (failedNodes.length > 0 ? this.#choose(service, instances, (i) => skip(i) || failedNodes.includes(i.node)) : undefined) ??
      this.#choose(service, instances, skip) ??
      this.#choose(service, instances, tried.length > 0 ? wasTried : undefined)
    );
  }

  #choose(service: string, instances: readonly Instance[], skip: ((i: Instance) => boolean) | undefined): Instance | undefined {
    if (this.policy === 'round_robin') return this.#rr.pick(service, instances, skip);
    return p2c(instances, (i) => this.score(i, instances), skip, this.random);
  }

  /** The policy's cost of sending `i` one more request (lower wins); a new instance starts at its peers' average. */
  score(i: Instance, peers: readonly Instance[]): number {
    const h = this.load.seed(i.key, peers);
    if (this.policy === 'least_request') return h.inflight;
    return ewmaCost(h, this.load.latency(h));
  }

  /** An attempt went out to `key`. */
  started(key: string): void {
    if (this.policy !== 'round_robin') this.load.started(key);
  }

  /** The attempt to `key` ended after `ms`; `failed`: it did not bring usable headers in time. */
  finished(key: string, ms: number, failed: boolean, at?: number): void {
    if (this.policy !== 'round_robin') this.load.finished(key, ms, failed, at);
  }

  /** The attempt to `key` ended with nothing learnt about the instance (the client left, a hedge lost the race). */
  abandoned(key: string): void {
    if (this.policy !== 'round_robin') this.load.abandoned(key);
  }

  /** What the balancer thinks of each instance, by instance.key (dashboard, explain, metrics). */
  view(instances: readonly Instance[]): Map<string, LoadView> {
    const out = new Map<string, LoadView>();
    const now = performance.now();
    for (const i of instances) {
      const h = this.load.peek(i.key);
      const latencyMs = h ? this.load.latency(h, now) : null;
      const inflight = h?.inflight ?? 0;
      let score: number | null = null;
      if (this.policy === 'least_request') score = inflight;
      else if (this.policy === 'peak_ewma' && latencyMs !== null) score = Math.round(ewmaCost(h!, latencyMs) * 10) / 10;
      out.set(i.key, { inflight, latencyMs: latencyMs === null ? null : Math.round(latencyMs * 10) / 10, score, failures: h?.failures ?? 0 });
    }
    return out;
  }

  /** Drops round-robin positions and load of services and instances that left the table. */
  retain(services: Iterable<string>, keys?: ReadonlySet<string>): void {
    this.#rr.retain(services);
    if (keys) this.load.retain(keys);
  }
}
