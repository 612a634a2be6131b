import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ConsulState, Instance, ReconcileView, RouteTable } from '@stack/shared';
import type { ErrorCode } from './errors.js';
import { instanceKey } from './instance-meta.js';
import type { AttemptOutcome, AttemptReport, ProxyObserver } from './observer.js';
import type { OutlierDetector } from './outlier.js';

/** Seconds, 1 ms to 10 s: a proxied request, and a Consul change on its way into the table. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Where a request for a name the table does not hold is counted: raw names would be unbounded labels. */
export const UNKNOWN_SERVICE = '(unknown)';

const CODES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const;
const OUTCOMES: readonly AttemptOutcome[] = ['ok', 'connect_failure', 'reset', 'timeout', 'error'];

const codeIndex = (status: number) => (status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : 5);

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
  /** Process metrics (CPU, memory, event loop, GC); off in tests that make many registries. */
  processMetrics?: boolean;
}

/**
 * A service's counts. The hot path only adds to plain numbers here; prom-client
 * sees them at scrape time (its labelled inc/observe hash the label set on every
 * call, which cost a measurable share of a proxied request).
 */
interface ServiceChildren {
  codes: number[];
  /** Per bucket of LATENCY_BUCKETS (not cumulative), then +Inf. */
  buckets: number[];
  sum: number;
  count: number;
  retries: number;
  retriesRefused: number;
  /** The table's instance list these counts were last matched to. */
  list: readonly Instance[] | null;
  instances: Map<string, InstanceChildren>;
}

interface InstanceChildren {
  outcomes: Record<AttemptOutcome, number>;
  ejections: number;
}

const zeroOutcomes = (): Record<AttemptOutcome, number> => ({ ok: 0, connect_failure: 0, reset: 0, timeout: 0, error: 0 });

/** Index of the first bucket whose bound holds `v` (LATENCY_BUCKETS.length: +Inf). */
function bucketOf(v: number): number {
  let i = 0;
  while (i < LATENCY_BUCKETS.length && v > LATENCY_BUCKETS[i]!) i++;
  return i;
}

/**
 * The gateway's Prometheus metrics (prom-client), fed by the proxy's observer
 * callbacks and read from the table, the proxy and discovery at scrape time.
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
      labelNames: ['service', 'instance_id', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const [service, s] of services())
          for (const [instance_id, i] of s.instances)
            for (const outcome of OUTCOMES) if (i.outcomes[outcome] > 0) this.inc({ service, instance_id, outcome }, i.outcomes[outcome]);
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
    new Counter({
      name: 'gateway_ejections_total',
      help: 'Instances ejected by passive health after consecutive failures.',
      labelNames: ['service', 'instance_id'],
      registers,
      collect() {
        this.reset();
        for (const [service, s] of services()) for (const [instance_id, i] of s.instances) if (i.ejections > 0) this.inc({ service, instance_id }, i.ejections);
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
    const { table, inflight, consul, outliers } = deps;
    const sync = () => this.#sync();
    new Gauge({
      name: 'gateway_inflight_requests',
      help: 'Requests being proxied now.',
      registers,
      collect() {
        this.set(inflight());
      },
    });
    new Gauge({
      name: 'gateway_route_table_version',
      help: 'Version of the route table; moves on every change.',
      registers,
      collect() {
        this.set(table().version);
      },
    });
    new Gauge({
      name: 'gateway_routable_instances',
      help: 'Passing instances in the route table, by service.',
      labelNames: ['service'],
      registers,
      collect() {
        sync();
        this.reset();
        for (const [service, list] of table().services) this.set({ service }, list.length);
      },
    });
    const { upgraded, routes } = deps;
    if (upgraded)
      new Gauge({
        name: 'gateway_upgraded_connections',
        help: 'Open upgraded (WebSocket) connections, by service.',
        labelNames: ['service'],
        registers,
        collect() {
          this.reset();
          for (const service of table().services.keys()) this.set({ service }, 0);
          for (const [service, n] of upgraded()) this.set({ service }, n);
        },
      });
    if (routes) {
      const routeGauge = (name: string, help: string, read: (r: { routes: number; conflicts: number; rejected: number }) => number) =>
        new Gauge({
          name,
          help,
          registers,
          collect() {
            this.set(read(routes()));
          },
        });
      routeGauge('gateway_routes', 'Routes services declare in tags (the default /<service>/ routes not counted).', (r) => r.routes);
      routeGauge('gateway_route_conflicts', 'Declared routes two services claim without weights (the name that sorts first wins).', (r) => r.conflicts);
      routeGauge('gateway_route_tags_rejected', 'gateway.* tags that could not be read and are ignored (see /_gateway/routes).', (r) => r.rejected);
    }
    new Gauge({
      name: 'gateway_ejected_instances',
      help: 'Instances ejected by passive health right now, by service.',
      labelNames: ['service'],
      registers,
      collect() {
        this.reset();
        for (const [service, list] of table().services) {
          let n = 0;
          for (const i of list) if (outliers.isEjected(instanceKey(i))) n++;
          this.set({ service }, n);
        }
      },
    });
    const consulGauge = (name: string, help: string, read: (s: ConsulState) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(consul()));
        },
      });
    consulGauge('gateway_consul_reachable', 'Whether the last Consul call reached an agent (1) or not (0).', (s) => Number(s.reachable));
    consulGauge('gateway_consul_last_contact_seconds', 'X-Consul-LastContact of the last stale answer: how far behind the leader it may be.', (s) => s.lastContactMs / 1000);
    consulGauge('gateway_consul_leader_known', 'Whether the answering Consul server knows a raft leader (1) or not (0).', (s) => Number(s.knownLeader));
    consulGauge('gateway_consul_degraded', 'Whether discovery reports itself degraded (1; the reasons are in /_gateway/health).', (s) => Number(s.degraded));
    const reconcileCounter = (name: string, help: string, read: (r: ReconcileView) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          const r = consul().reconcile;
          this.reset();
          if (r) this.inc(read(r));
        },
      });
    reconcileCounter('gateway_discovery_reconcile_sweeps_total', 'Passes of the reconciliation: every followed service read once from the leader.', (r) => r.sweeps);
    reconcileCounter(
      'gateway_discovery_corrections_total',
      'Reconciliation reads that changed the table: changes the blocking queries had missed (should stay 0).',
      (r) => r.corrections,
    );
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
    const i = s.instances.get(a.inst.id);
    if (i) {
      i.outcomes[a.outcome]++;
      if (a.ejected) i.ejections++;
    }
    if (a.retry === 'retried') s.retries++;
    else if (a.retry === 'refused') s.retriesRefused++;
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
      const ids = new Set(list.map((i) => i.id));
      for (const id of s.instances.keys()) if (!ids.has(id)) s.instances.delete(id);
      for (const id of ids) if (!s.instances.has(id)) s.instances.set(id, { outcomes: zeroOutcomes(), ejections: 0 });
    }
  }
}

interface HistogramSeries {
  labels: Record<string, string>;
  /** Per bucket (not cumulative), then +Inf. */
  buckets: readonly number[];
  sum: number;
  count: number;
}

/**
 * A histogram whose counts are kept elsewhere and read at scrape time, in prom-client's
 * exposition (the same lines its Histogram writes: _bucket{le} cumulative, _sum, _count).
 */
function registerSnapshotHistogram(registry: Registry, o: { name: string; help: string; buckets: readonly number[]; read: () => HistogramSeries[] }): void {
  const metric = {
    name: o.name,
    help: o.help,
    type: 'histogram',
    aggregator: 'sum',
    reset() {},
    async get() {
      const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
      for (const series of o.read()) {
        let acc = 0;
        o.buckets.forEach((le, i) => {
          acc += series.buckets[i]!;
          values.push({ metricName: `${o.name}_bucket`, labels: { le, ...series.labels }, value: acc });
        });
        values.push({ metricName: `${o.name}_bucket`, labels: { le: '+Inf', ...series.labels }, value: series.count });
        values.push({ metricName: `${o.name}_sum`, labels: series.labels, value: series.sum });
        values.push({ metricName: `${o.name}_count`, labels: series.labels, value: series.count });
      }
      return { name: o.name, help: o.help, type: 'histogram', values, aggregator: 'sum' };
    },
  };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}
