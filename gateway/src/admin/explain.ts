import {
  describeConsulError,
  distrust,
  ReadError,
  type HealthEntry,
  type Instance,
  type QueryMeta,
  type RouteTable,
  type TrackedServiceView,
} from '@stack/shared';
import type { LoadView } from '../balancing/balancer.js';
import type { Ejection } from '../balancing/outlier.js';
import { explainService, type InstanceExplain, type Reason, type ServiceExplain } from './explain-reasons.js';
import { GatewayError } from '../proxy/errors.js';
import { parseRoute } from '../proxy/route.js';

/**
 * GET /_gateway/explain/<service>: every instance Consul knows for a service,
 * whether the gateway routes it and why (explain-reasons.ts decides).
 *
 * Why one Consul read per request rather than the entries discovery keeps:
 * discovery follows check changes through the health-state feed, which carries
 * statuses only, so its entries keep the outputs of the last full read (a
 * check that just went critical would still say "200 OK"), and an answer it
 * did not trust is not kept at all. The output is the point of this page, and
 * an admin request is not the proxy path: one ?stale read of
 * /v1/health/service/<name> through the preferred Consul agent, shared by concurrent asks for
 * the same service, judged against the gateway's own state (table, hold,
 * trust, ejections). When Consul does not answer, the entries discovery keeps
 * are used instead, and the answer says so.
 */
export interface ExplainerDeps {
  table: () => RouteTable;
  synced: () => boolean;
  /** What discovery's answers did for a followed service (Discovery.serviceView). */
  tracked: (name: string) => TrackedServiceView | undefined;
  /** One ?stale read of /v1/health/service/<name>. */
  read: (name: string) => Promise<{ body: HealthEntry[]; meta: QueryMeta }>;
  /** The outlier detector's ejection of an instance key (address:port). */
  ejection: (key: string) => Ejection | null;
  /** Why configuration excludes a service (null: it does not); see exclusionReason. */
  exclusion: (name: string) => string | null;
  /** CONSUL_STALE_AFTER_MS, for judging the read as discovery would (shared's distrust). */
  staleAfterMs: number;
  /** LB_POLICY and the balancer's view of a service's instances, by id (InstancePicker.view). */
  balancer?: { policy: string; view: (instances: readonly Instance[]) => Map<string, LoadView> };
  now?: () => number;
}

/** One routed instance as the balancer sees it, and why it gets little traffic when it does. */
export interface BalancerExplain {
  id: string;
  score: number | null;
  latencyMs: number | null;
  inflight: number;
  /** Its last attempts failed, this many in a row. */
  failures: number;
  /** Why the balancer sends it little traffic right now; null when it gets its share. */
  lowTraffic: string | null;
}

export interface ConsulSource {
  /** 'consul': read for this request; 'gateway': Consul did not answer, these are the entries discovery keeps. */
  source: 'consul' | 'gateway';
  agent: string | null;
  index: string | null;
  knownLeader: boolean | null;
  lastContactMs: number | null;
  /** Why this answer can't take instances away on its own (shared's distrust); null when it can. */
  distrust: string | null;
  /** Why Consul was not read (source 'gateway'). */
  error: string | null;
}

export interface ExplainResponse {
  service: string;
  checkedAt: string;
  /** Some instance is routable. */
  routable: boolean;
  decision: ServiceExplain['decision'];
  excluded: Reason | null;
  summary: string;
  instances: InstanceExplain[];
  gateway: {
    synced: boolean;
    /** Discovery follows the service (it is in the catalog and not excluded). */
    followed: boolean;
    /** What the route table has for the service; null: not in the table. */
    table: Array<{ id: string; address: string; port: number; node: string }> | null;
    holdMs: number | null;
    hold: { since: string; until: string } | null;
    trust: { index: string | null; untrusted: { why: string; since: string } | null };
    agentLost: boolean;
    failure: { error: string; attempts: number; since: string } | null;
    ejected: number;
  };
  /** LB_POLICY and each routed instance's score; null when the service is not in the table. */
  balancer: { policy: string; instances: BalancerExplain[] } | null;
  consul: ConsulSource;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (ms: number) => (ms < 10 ? ms.toFixed(1) : String(Math.round(ms)));

/**
 * Each routed instance's score, with a reason for those that get little
 * traffic: latency or requests in flight well above the median of the
 * others (3 times and 20 ms or 2 requests more: a score alone means little).
 */
export function explainBalancer(policy: string, instances: readonly Instance[], views: Map<string, LoadView>): BalancerExplain[] {
  const rows = instances.map((i) => {
    const v = views.get(i.key) ?? { score: null, latencyMs: null, inflight: 0, failures: 0 };
    return { id: i.id, score: v.score, latencyMs: v.latencyMs, inflight: v.inflight, failures: v.failures, lowTraffic: null as string | null };
  });
  if (policy === 'round_robin' || rows.length < 2) return rows;
  for (const r of rows) {
    const others = rows.filter((o) => o !== r);
    const lat = others.map((o) => o.latencyMs).filter((x): x is number => x !== null);
    if (policy === 'peak_ewma' && r.latencyMs !== null && lat.length > 0) {
      const m = median(lat);
      if (r.latencyMs > 3 * m && r.latencyMs - m > 20) {
        const what = r.failures > 0 ? `failing: its last ${r.failures === 1 ? 'attempt' : `${r.failures} attempts`} failed, each counted as at least 1 s; EWMA` : 'slow: EWMA';
        r.lowTraffic = `${what} ${fmt(r.latencyMs)} ms vs ${fmt(m)} ms (the others' median); it gets requests again as its estimate decays (10 s) or the others slow down`;
        continue;
      }
    }
    const m = median(others.map((o) => o.inflight));
    if (r.inflight > 3 * m && r.inflight - m >= 2) r.lowTraffic = `busy: ${r.inflight} requests in flight vs ${m} (the others' median)`;
  }
  return rows;
}

/** Why a service is never routed, naming the setting responsible; null when it is routed. */
export function exclusionReason(
  name: string,
  c: { excluded: ReadonlySet<string>; GATEWAY_SERVICE_NAME: string; EXCLUDE_SERVICES: readonly string[] },
): string | null {
  const key = name.toLowerCase();
  if (!c.excluded.has(key)) return null;
  if (c.EXCLUDE_SERVICES.some((s) => s.toLowerCase() === key)) return `"${key}" is listed in EXCLUDE_SERVICES: the gateway never routes it`;
  if (c.GATEWAY_SERVICE_NAME.toLowerCase() === key)
    return `"${key}" is the gateway's own service (GATEWAY_SERVICE_NAME): routing it would send requests back to the gateway`;
  if (key === 'consul') return '"consul" is the Consul servers\' own service: the gateway never routes it';
  return `"${key}" is excluded from routing`;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The service name from the raw (still percent-encoded) path segment, validated as the proxy does (route.ts). */
export function explainedName(rawSegment: string): string {
  const route = parseRoute(`/${rawSegment}`);
  if (!route.ok || route.path !== '/')
    throw new GatewayError('invalid_service_name', 'the service name must be letters, digits and dashes, up to 63 characters, not starting or ending with a dash', {
      service: route.service,
    });
  return route.service;
}

export function createExplainer(deps: ExplainerDeps) {
  const now = deps.now ?? Date.now;
  // Concurrent asks for one service (a dashboard open twice) share one read.
  const reading = new Map<string, Promise<{ body: HealthEntry[]; meta: QueryMeta }>>();

  const read = (name: string) => {
    let p = reading.get(name);
    if (!p) {
      p = deps.read(name).finally(() => reading.delete(name));
      reading.set(name, p);
    }
    return p;
  };

  /** The explanation for `rawSegment` (the path segment after /_gateway/explain/). */
  async function explain(rawSegment: string): Promise<ExplainResponse> {
    const name = explainedName(rawSegment);
    const excluded = deps.exclusion(name);
    let entries: readonly HealthEntry[];
    let consul: ConsulSource;
    try {
      const { body, meta } = await read(name);
      entries = Array.isArray(body) ? body : [];
      const view = deps.tracked(name);
      consul = {
        source: 'consul',
        agent: meta.agent,
        index: String(meta.index),
        knownLeader: meta.knownLeader,
        lastContactMs: meta.lastContactMs,
        distrust: distrust(meta, view?.index ?? 0n, deps.staleAfterMs),
        error: null,
      };
    } catch (err) {
      const e = err instanceof ReadError ? `${err.agent}: ${describeConsulError(err.consul)}` : (err as Error).message;
      // What discovery applied: trusted by construction.
      entries = deps.tracked(name)?.entries ?? [];
      consul = { source: 'gateway', agent: null, index: null, knownLeader: null, lastContactMs: null, distrust: null, error: e };
    }
    // Read after the answer: the table and the holds as they are when it arrived.
    const view = deps.tracked(name);
    const table = deps.table().services.get(name);
    if (excluded === null && entries.length === 0 && table === undefined && view === undefined) {
      if (!deps.synced()) throw new GatewayError('not_ready', 'the gateway has not synced with Consul yet', { service: name, retryAfterS: 1 });
      throw new GatewayError('unknown_service', `no service named "${name}" is registered in Consul`, { service: name });
    }
    const t = now();
    const result = explainService({
      before: table,
      entries,
      distrust: consul.distrust,
      holdMs: view?.holdMs ?? 0,
      excluded,
      ejection: (i) => deps.ejection(i.key),
      hold: view?.hold ?? null,
      now: t,
    });
    const ejected = result.instances.filter((i) => i.routable && i.ejection !== null).length;
    const balancer = table && deps.balancer ? { policy: deps.balancer.policy, instances: explainBalancer(deps.balancer.policy, table, deps.balancer.view(table)) } : null;
    return {
      service: name,
      checkedAt: iso(t),
      routable: result.routable > 0,
      decision: result.decision,
      excluded: excluded === null ? null : { code: 'service_excluded', detail: excluded },
      summary: summary(result, excluded, consul, ejected, balancer?.instances ?? []),
      instances: result.instances,
      gateway: {
        synced: deps.synced(),
        followed: view !== undefined,
        table: table ? table.map(({ id, address, port, node }) => ({ id, address, port, node })) : null,
        holdMs: view?.holdMs ?? null,
        hold: view?.hold ? { since: iso(view.hold.since), until: iso(view.hold.until) } : null,
        trust: {
          index: view ? String(view.index) : null,
          untrusted: view?.untrusted ? { why: view.untrusted.why, since: iso(view.untrusted.since) } : null,
        },
        agentLost: view?.agentLost ?? false,
        failure: view?.failure ? { error: describeConsulError(view.failure.error), attempts: view.failure.attempts, since: iso(view.failure.since) } : null,
        ejected,
      },
      balancer,
      consul,
    };
  }

  return { explain };
}

function summary(r: ServiceExplain, excluded: string | null, consul: ConsulSource, ejected: number, balanced: BalancerExplain[]): string {
  if (excluded !== null) return `not routed: ${excluded}`;
  const parts = [`${r.routable} of ${r.instances.length} instances routable`];
  if (ejected > 0) parts.push(`${ejected} of them ejected by passive health`);
  for (const b of balanced) if (b.lowTraffic) parts.push(`${b.id} gets little traffic (${b.lowTraffic.split(';')[0]})`);
  if (r.decision === 'confirm') parts.push(`Consul's answer cannot be trusted for removals (${consul.distrust}): the gateway keeps what it routes until the leader confirms`);
  if (r.decision === 'hold') parts.push('Consul suddenly reports no passing instance: the gateway keeps routing to the last ones for a while');
  if (consul.source === 'gateway') parts.push(`Consul did not answer (${consul.error}): from the gateway's last answer, check outputs may be old`);
  return parts.join('; ');
}
