import Router from '@koa/router';
import { tableToJSON, type ConsulState, type RouteTable } from '@stack/shared';
import { dashboardRoutes, sendPage, type DashboardParts } from './dashboard.js';
import type { OutlierDetector } from '../balancing/outlier.js';
import type { LiveStatsJSON } from '../observe/live-stats.js';
import { explainRoute, routesView } from '../routes/explain.js';
import type { RoutesSnapshot } from '../routes/table.js';

export interface AdminDeps {
  table: () => RouteTable;
  synced: () => boolean;
  syncedAt: () => Date | null;
  consul: () => ConsulState;
  outliers: OutlierDetector;
  inflight: () => number;
  /** Why a service's instances are (not) routed (explain.ts), from the raw path segment: GET /_gateway/explain/<service>. */
  explain?: (rawSegment: string) => Promise<unknown>;
  /** Live windowed figures per service and instance (live-stats.ts): GET /_gateway/stats. */
  stats?: () => LiveStatsJSON;
  /** Prometheus exposition (metrics.ts): GET /metrics. */
  metrics?: { readonly contentType: string; text(): Promise<string> };
  /** Routes services declare in tags: GET /_gateway/routes and /_gateway/explain/route?host=&path=. */
  routes?: () => RoutesSnapshot;
  /** The live dashboard's feed, streams and Consul servers (dashboard.ts). */
  dashboard?: DashboardParts;
}

function servicesView(d: AdminDeps) {
  const json = tableToJSON(d.table());
  const services = Object.fromEntries(
    [...d.table().services].map(([name, list]) => [
      name,
      list.map((i) => {
        const until = d.outliers.ejectedUntil(i.key);
        return { id: i.id, key: i.key, address: i.address, port: i.port, node: i.node, ...(until ? { ejectedUntil: new Date(until).toISOString() } : {}) };
      }),
    ]),
  );
  return { ...json, services };
}

/** What the gateway routes and how it is, for people and for checks. */
export function adminRouter(d: AdminDeps): Router {
  const r = new Router();
  r.get('/_gateway/services', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { synced: d.synced(), ...servicesView(d) };
  });
  // 200 as long as the gateway can route: once synced, also from its last good
  // table while Consul is away; the body says how Consul is doing.
  r.get('/_gateway/health', (ctx) => {
    const consul = d.consul();
    const synced = d.synced();
    ctx.status = synced ? 200 : 503;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      status: !synced ? 'starting' : consul.degraded ? 'degraded' : 'ok',
      synced,
      syncedAt: d.syncedAt()?.toISOString() ?? null,
      services: d.table().services.size,
      tableChangedAt: d.table().changedAt?.toISOString() ?? null,
      inflight: d.inflight(),
      consul,
    };
  });
  r.get('/', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const consul = d.consul();
    if (ctx.accepts('html', 'json') === 'html') {
      sendPage(ctx, d);
    } else {
      ctx.body = { synced: d.synced(), consul, ...servicesView(d) };
    }
  });
  r.get('/favicon.ico', (ctx) => {
    ctx.status = 204;
  });
  const { stats, metrics } = d;
  if (stats)
    r.get('/_gateway/stats', (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = stats();
    });
  if (metrics)
    r.get('/metrics', async (ctx) => {
      const text = await metrics.text();
      ctx.set('Cache-Control', 'no-store');
      ctx.set('Content-Type', metrics.contentType);
      ctx.body = text;
    });
  const { routes } = d;
  if (routes) {
    r.get('/_gateway/routes', (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = routesView(routes(), d.table());
    });
    // With ?path= this is the route explain; without, a service named "route" is explained as any other.
    r.get('/_gateway/explain/route', async (ctx, next) => {
      if (ctx.query.path === undefined) return next();
      const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
      ctx.set('Cache-Control', 'no-store');
      ctx.body = explainRoute(routes(), d.table(), one(ctx.query.host) ?? ctx.get('host'), one(ctx.query.path));
    });
  }
  const { explain } = d;
  if (explain)
    r.get('/_gateway/explain/:service', async (ctx) => {
      // The raw segment, not the decoded param: names are checked before any decoding, as the proxy does.
      const body = await explain(ctx.path.slice('/_gateway/explain/'.length));
      ctx.set('Cache-Control', 'no-store');
      ctx.body = body;
    });
  dashboardRoutes(r, d);
  return r;
}
