import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { ConsulState, Instance, ReconcileView, RouteTable } from '@stack/shared';
import type { ErrorCode } from '../proxy/errors.js';
import type { LoadView } from '../balancing/balancer.js';
import type { AttemptReport, HedgeEvent, ProxyObserver } from './observer.js';
import type { OutlierDetector } from '../balancing/outlier.js';
import { bucketOf, codeIndex, CODES, LATENCY_BUCKETS, OUTCOMES, zeroOutcomes, type ServiceChildren } from './service-counts.js';
import { registerSnapshotHistogram } from './snapshot-histogram.js';
import { registerStateMetrics } from './state-metrics.js';


/** Where a request for a name the table does not hold is counted: raw names would be unbounded labels. */
export const UNKNOWN_SERVICE = '(unknown)';

export interface GatewayMetricsDeps {
  table: () => RouteTable;
  inflight: () => number;
  /** Discovery's state; `reconcile` when the catalog is followed. */
  consul: () => ConsulState & { reconcile?: ReconcileView };
  outliers: OutlierDetector;
  /** Open upgraded (WebSocket) connections per service (upgrade.ts). */
  upgraded?: () => ReadonlyMap<string, number>;
  /** Declared routes: how many, in conflict, tags refused (routes/table.ts). */
  routes?: () => { routes: number; conflicts: number; rejected: number };
  /** The balancer's view of a service's instances, by instance.key (InstancePicker.view). */
  load?: (instances: readonly Instance[]) => Map<string, LoadView>;
  /** Process metrics (CPU, memory, event loop, GC); off in tests that make many registries. */
  processMetrics?: boolean;
}

/**
 * The gateway's Prometheus metrics (prom-client), fed by the proxy's observer
 * callbacks; state-metrics.ts adds those read from the table, the proxy and
 * discovery at scrape time.
 * Labels stay bounded: services and instances are those of the current table
 * (label sets of the ones that leave it are removed), other names count as
 * service="(unknown)".
 */
export class GatewayMetrics implements ProxyObserver {
  readonly registry = new Registry();
  readonly #discovery: Histogram;
  #refusedBy = new Map<string, number>();
  #services = new Map<string, ServiceChildren>();
  #unknown!: ServiceChildren;
  #table: RouteTable | null = null;

  constructor(private readonly deps: GatewayMetricsDeps) {
    const registers = [this.registry];
    if (deps.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'gateway_' });
    // Hot-path counts live in #services / #refusedBy as plain numbers; each scrape copies them in.
    const services = () => this.#allServices();
    new Counter({
      name: 'gateway_requests_total',
      help: 'Proxied requests by service and status class of the answer the client got (499, the client left, is 4xx).',
      labelNames: ['service', 'code'],
      registers,
      collect() {
        this.reset();
        for (const [service, s] of services()) s.codes.forEach((n, i) => n > 0 && this.inc({ service, code: CODES[i]! }, n));
      },
    });
    registerSnapshotHistogram(this.registry, {
      name: 'gateway_request_duration_seconds',
      help: 'Proxied requests, from the gateway receiving them to their end (retries included).',
      buckets: LATENCY_BUCKETS,
      read: () => [...services()].filter(([, s]) => s.count > 0).map(([service, s]) => ({ labels: { service }, buckets: s.buckets, sum: s.sum, count: s.count })),
    });
    new Counter({
      name: 'gateway_upstream_attempts_total',
      help: 'Attempts at an instance by outcome: ok (response headers), connect_failure, reset, timeout, error (an answer that could not be used).',
      labelNames: ['service', 'instance_id', 'node', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const [service, s] of services())
          for (const i of s.instances.values())
            for (const outcome of OUTCOMES) if (i.outcomes[outcome] > 0) this.inc({ service, instance_id: i.id, node: i.node, outcome }, i.outcomes[outcome]);
      },
    });
    const perService = (name: string, help: string, read: (s: ServiceChildren) => number) =>
      new Counter({
        name,
        help,
        labelNames: ['service'],
        registers,
        collect() {
          this.reset();
          for (const [service, s] of services()) if (read(s) > 0) this.inc({ service }, read(s));
        },
      });
    perService('gateway_retries_total', 'Failed attempts retried on another instance.', (s) => s.retries);
    perService('gateway_retries_refused_total', 'Failed attempts that could have been retried but the retry budget was spent.', (s) => s.retriesRefused);
    perService('gateway_hedges_total', 'Hedges: second attempts sent to another instance when the first had no response headers after the per-try timeout.', (s) => s.hedges.sent);
    perService('gateway_hedges_won_total', 'Hedges whose response headers came before those of the attempt they hedged.', (s) => s.hedges.won);
    perService('gateway_hedges_refused_total', 'Per-try timeouts that could have been hedged but the retry budget was spent.', (s) => s.hedges.refused);
    new Counter({
      name: 'gateway_ejections_total',
      help: 'Instances ejected by passive health after consecutive failures.',
      labelNames: ['service', 'instance_id', 'node'],
      registers,
      collect() {
        this.reset();
        for (const [service, s] of services()) for (const i of s.instances.values()) if (i.ejections > 0) this.inc({ service, instance_id: i.id, node: i.node }, i.ejections);
      },
    });
    const refusedBy = this.#refusedBy;
    new Counter({
      name: 'gateway_refused_total',
      help: 'Requests the gateway answered itself without trying an instance, by error code (overloaded: past MAX_INFLIGHT).',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of refusedBy) this.inc({ reason }, n);
      },
    });
    this.#discovery = new Histogram({
      name: 'gateway_discovery_latency_seconds',
      help: "From a Consul answer showing a service's checks or instances changed to the route table holding the change.",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    registerStateMetrics(this.registry, deps, () => this.#sync());
    this.#unknown = this.#serviceChildren();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text; the table is synced first, so instances that left are gone. */
  text(): Promise<string> {
    this.#sync();
    return this.registry.metrics();
  }

  request(service: string | null, status: number, ms: number, refused: ErrorCode | null): void {
    this.#sync();
    const s = (service !== null && this.#services.get(service)) || this.#unknown;
    s.codes[codeIndex(status)]!++;
    const sec = ms / 1000;
    s.buckets[bucketOf(sec)]!++;
    s.sum += sec;
    s.count++;
    if (refused !== null) this.#refusedBy.set(refused, (this.#refusedBy.get(refused) ?? 0) + 1);
  }

  attempt(service: string, a: AttemptReport): void {
    this.#sync();
    // Gone from the table since the attempt began: nothing to count it under.
    const s = this.#services.get(service);
    if (!s) return;
    const i = s.instances.get(a.inst.key);
    if (i) {
      i.outcomes[a.outcome]++;
      if (a.ejected) i.ejections++;
    }
    if (a.retry === 'retried') s.retries++;
    else if (a.retry === 'refused') s.retriesRefused++;
  }

  hedge(service: string, event: HedgeEvent): void {
    this.#sync();
    const s = this.#services.get(service);
    if (s) s.hedges[event]++;
  }

  /** Discovery's hook: a change Consul announced reached the table `ms` later. */
  discoveryApplied(ms: number): void {
    this.#discovery.observe(ms / 1000);
  }

  /** Every service with counts: the table's, then "(unknown)". */
  *#allServices(): Iterable<[string, ServiceChildren]> {
    this.#sync();
    yield* this.#services;
    yield [UNKNOWN_SERVICE, this.#unknown];
  }

  #serviceChildren(): ServiceChildren {
    return {
      codes: CODES.map(() => 0),
      buckets: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0),
      sum: 0,
      count: 0,
      retries: 0,
      retriesRefused: 0,
      hedges: { sent: 0, won: 0, refused: 0 },
      list: null,
      instances: new Map(),
    };
  }

  /** Follows the table: children for new services and instances, label sets of departed ones removed. O(1) while the table is unchanged. */
  #sync(): void {
    const table = this.deps.table();
    if (table === this.#table) return;
    this.#table = table;
    // Services and instances that left the table take their label sets with them.
    for (const service of this.#services.keys()) if (!table.services.has(service)) this.#services.delete(service);
    for (const [service, list] of table.services) {
      let s = this.#services.get(service);
      if (!s) this.#services.set(service, (s = this.#serviceChildren()));
      if (s.list === list) continue;
      s.list = list;
      const keys = new Set(list.map((i) => i.key));
      for (const key of s.instances.keys()) if (!keys.has(key)) s.instances.delete(key);
      for (const i of list) if (!s.instances.has(i.key)) s.instances.set(i.key, { id: i.id, node: i.node, outcomes: zeroOutcomes(), ejections: 0 });
    }
  }
}
