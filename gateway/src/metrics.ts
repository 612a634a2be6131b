import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ConsulState, Instance, RouteTable } from '@stack/shared';
import type { ErrorCode } from './errors.js';
import { instanceKey } from './instance-picker.js';
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
  consul: () => ConsulState;
  outliers: OutlierDetector;
  /** Process metrics (CPU, memory, event loop, GC); off in tests that make many registries. */
  processMetrics?: boolean;
}

type Inc = { inc(value?: number): void };
type Observe = { observe(value: number): void };

/** A service's label children, resolved once so a request builds no label object. */
interface ServiceChildren {
  codes: Inc[];
  duration: Observe;
  retries: Inc;
  retriesRefused: Inc;
  /** The table's instance list these children were built from. */
  list: readonly Instance[] | null;
  instances: Map<string, InstanceChildren>;
}

interface InstanceChildren {
  outcomes: Record<AttemptOutcome, Inc>;
  ejections: Inc;
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
  readonly #requests: Counter<'service' | 'code'>;
  readonly #duration: Histogram<'service'>;
  readonly #attempts: Counter<'service' | 'instance_id' | 'outcome'>;
  readonly #retries: Counter<'service'>;
  readonly #retriesRefused: Counter<'service'>;
  readonly #ejections: Counter<'service' | 'instance_id'>;
  readonly #refused: Counter<'reason'>;
  readonly #discovery: Histogram;
  #refusedBy = new Map<string, Inc>();
  #services = new Map<string, ServiceChildren>();
  #unknown: ServiceChildren;
  #table: RouteTable | null = null;

  constructor(private readonly deps: GatewayMetricsDeps) {
    const registers = [this.registry];
    if (deps.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'gateway_' });
    this.#requests = new Counter({
      name: 'gateway_requests_total',
      help: 'Proxied requests by service and status class of the answer the client got (499, the client left, is 4xx).',
      labelNames: ['service', 'code'],
      registers,
    });
    this.#duration = new Histogram({
      name: 'gateway_request_duration_seconds',
      help: 'Proxied requests, from the gateway receiving them to their end (retries included).',
      labelNames: ['service'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#attempts = new Counter({
      name: 'gateway_upstream_attempts_total',
      help: 'Attempts at an instance by outcome: ok (response headers), connect_failure, reset, timeout, error (an answer that could not be used).',
      labelNames: ['service', 'instance_id', 'outcome'],
      registers,
    });
    this.#retries = new Counter({
      name: 'gateway_retries_total',
      help: 'Failed attempts retried on another instance.',
      labelNames: ['service'],
      registers,
    });
    this.#retriesRefused = new Counter({
      name: 'gateway_retries_refused_total',
      help: 'Failed attempts that could have been retried but the retry budget was spent.',
      labelNames: ['service'],
      registers,
    });
    this.#ejections = new Counter({
      name: 'gateway_ejections_total',
      help: 'Instances ejected by passive health after consecutive failures.',
      labelNames: ['service', 'instance_id'],
      registers,
    });
    this.#refused = new Counter({
      name: 'gateway_refused_total',
      help: 'Requests the gateway answered itself without trying an instance, by error code (overloaded: past MAX_INFLIGHT).',
      labelNames: ['reason'],
      registers,
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
    this.#unknown = this.#serviceChildren(UNKNOWN_SERVICE);
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
    s.codes[codeIndex(status)]!.inc();
    s.duration.observe(ms / 1000);
    if (refused !== null) this.#refusedChild(refused).inc();
  }

  attempt(service: string, a: AttemptReport): void {
    this.#sync();
    // Gone from the table since the attempt began: nothing to count it under.
    const s = this.#services.get(service);
    if (!s) return;
    const i = s.instances.get(a.inst.id);
    if (i) {
      i.outcomes[a.outcome].inc();
      if (a.ejected) i.ejections.inc();
    }
    if (a.retry === 'retried') s.retries.inc();
    else if (a.retry === 'refused') s.retriesRefused.inc();
  }

  /** Discovery's hook: a change Consul announced reached the table `ms` later. */
  discoveryApplied(ms: number): void {
    this.#discovery.observe(ms / 1000);
  }

  #refusedChild(reason: string): Inc {
    let c = this.#refusedBy.get(reason);
    if (!c) this.#refusedBy.set(reason, (c = this.#refused.labels(reason)));
    return c;
  }

  #serviceChildren(service: string): ServiceChildren {
    return {
      codes: CODES.map((code) => this.#requests.labels(service, code)),
      duration: this.#duration.labels(service),
      retries: this.#retries.labels(service),
      retriesRefused: this.#retriesRefused.labels(service),
      list: null,
      instances: new Map(),
    };
  }

  #instanceChildren(service: string, id: string): InstanceChildren {
    const outcomes = {} as Record<AttemptOutcome, Inc>;
    for (const outcome of OUTCOMES) outcomes[outcome] = this.#attempts.labels(service, id, outcome);
    return { outcomes, ejections: this.#ejections.labels(service, id) };
  }

  /** Follows the table: children for new services and instances, label sets of departed ones removed. O(1) while the table is unchanged. */
  #sync(): void {
    const table = this.deps.table();
    if (table === this.#table) return;
    this.#table = table;
    for (const [service, s] of this.#services) {
      if (table.services.has(service)) continue;
      for (const id of s.instances.keys()) this.#removeInstance(service, id);
      for (const code of CODES) this.#requests.remove({ service, code });
      this.#duration.remove({ service });
      this.#retries.remove({ service });
      this.#retriesRefused.remove({ service });
      this.#services.delete(service);
    }
    for (const [service, list] of table.services) {
      let s = this.#services.get(service);
      if (!s) this.#services.set(service, (s = this.#serviceChildren(service)));
      if (s.list === list) continue;
      s.list = list;
      const ids = new Set(list.map((i) => i.id));
      for (const id of s.instances.keys()) {
        if (ids.has(id)) continue;
        this.#removeInstance(service, id);
        s.instances.delete(id);
      }
      for (const id of ids) if (!s.instances.has(id)) s.instances.set(id, this.#instanceChildren(service, id));
    }
  }

  #removeInstance(service: string, id: string): void {
    for (const outcome of OUTCOMES) this.#attempts.remove({ service, instance_id: id, outcome });
    this.#ejections.remove({ service, instance_id: id });
  }
}
