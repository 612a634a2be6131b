import { Counter, Gauge, type Registry } from 'prom-client';
import type { ConsulState, ReconcileView } from '@stack/shared';
import type { LoadView } from '../balancing/balancer.js';
import type { GatewayMetricsDeps } from './metrics.js';

/**
 * The metrics read from the gateway's state at scrape time: the balancer's
 * view, the table, passive health, routes and discovery (metrics.ts keeps the
 * counts the proxy feeds). `sync` brings the per-instance counts in line with
 * the table first.
 */
export function registerStateMetrics(registry: Registry, deps: GatewayMetricsDeps, sync: () => void): void {
  const registers = [registry];
  const { table, inflight, consul, outliers, load } = deps;
  if (load) {
    const instanceGauge = (name: string, help: string, read: (v: LoadView) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ['service', 'instance_id', 'node'],
        registers,
        collect() {
          this.reset();
          for (const [service, list] of table().services) {
            const views = load(list);
            for (const i of list) {
              const v = views.get(i.key);
              const x = v ? read(v) : null;
              if (x !== null) this.set({ service, instance_id: i.id, node: i.node }, x);
            }
          }
        },
      });
    instanceGauge('gateway_upstream_score', "The balancer's cost of sending the instance one more request (LB_POLICY; lower gets it): peak_ewma, latency in ms times (requests in flight + 1); least_request, requests in flight.", (v) => v.score);
    instanceGauge('gateway_upstream_latency_ewma_seconds', "The balancer's peak-EWMA estimate of the instance's time to response headers, decayed to now.", (v) => (v.latencyMs === null ? null : v.latencyMs / 1000));
    instanceGauge('gateway_upstream_inflight_requests', 'Attempts waiting at the instance or streaming its answer.', (v) => v.inflight);
  }
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
        for (const i of list) if (outliers.isEjected(i.key)) n++;
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
}
