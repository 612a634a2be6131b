import type Router from '@koa/router';
import type { Context } from 'koa';
import type { ConsulState, RouteTable } from '@stack/shared';
import type { ConsulServers } from './consul-servers.js';
import { GatewayError } from '../proxy/errors.js';
import type { EventFeed } from './events.js';
import type { OutlierDetector } from '../balancing/outlier.js';
import { dashboardView, PAGE_HEADERS, renderPage, type DashboardView } from './page.js';
import type { SseHub } from './sse.js';
import { dashboardScript } from './ui/script.js';
import { DASHBOARD_CSS } from './ui/style.js';

/** How the dashboard's live parts run (index.ts wires them with these). */
export const DASHBOARD_DEFAULTS = {
  /** Events kept for replay and the timeline. */
  events: 200,
  /** How often the outlier detector and Consul's state are sampled for events. */
  sampleMs: 500,
  /** Open event streams at most. */
  maxStreams: 100,
  heartbeatMs: 15_000,
  retryMs: 2_000,
  /** Consul's /v1/status/{leader,peers}: read at most this often, and only while a dashboard looks. */
  serversIntervalMs: 3_000,
  serversIdleMs: 30_000,
} as const;

/** The live parts of the dashboard; index.ts wires them (tests of other endpoints may leave them out). */
export interface DashboardParts {
  events: EventFeed;
  hub: SseHub;
  servers: ConsulServers;
}

export interface DashboardDeps {
  table: () => RouteTable;
  synced: () => boolean;
  consul: () => ConsulState;
  outliers: OutlierDetector;
  dashboard?: DashboardParts;
}

function snapshot(d: DashboardDeps): DashboardView {
  return dashboardView({
    table: d.table(),
    synced: d.synced(),
    consul: d.consul(),
    ejectedUntil: (i) => d.outliers.ejectedUntil(i.key),
    joinedAt: (service, i) => d.dashboard?.events.joinedAt(service, i) ?? null,
    servers: d.dashboard?.servers.snapshot() ?? null,
    boot: d.dashboard?.events.boot ?? null,
  });
}

/** GET / for a browser: the dashboard, under a strict CSP. */
export function sendPage(ctx: Context, d: DashboardDeps): void {
  ctx.set(PAGE_HEADERS);
  ctx.type = 'html';
  ctx.body = renderPage(snapshot(d), d.dashboard?.events.recent() ?? []);
}

function asset(type: string, body: () => string) {
  return (ctx: Context) => {
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.type = type;
    ctx.body = body();
  };
}

/** The dashboard's endpoints: its snapshot, Consul's servers, the event stream and the page's two files. */
export function dashboardRoutes(r: Router, d: DashboardDeps): void {
  // The script is read when the gateway starts (index.ts) and kept; an app built without index.ts (tests) reads it on first use.
  r.get('/_gateway/ui/dashboard.js', asset('application/javascript; charset=utf-8', dashboardScript));
  r.get('/_gateway/ui/dashboard.css', asset('text/css; charset=utf-8', () => DASHBOARD_CSS));
  r.get('/_gateway/dashboard', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = snapshot(d);
  });
  r.get('/_gateway/consul', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ...d.consul(), servers: d.dashboard?.servers.snapshot() ?? null };
  });
  r.get('/_gateway/events', (ctx) => {
    const parts = d.dashboard;
    if (!parts) throw new GatewayError('not_found', 'events are not recorded by this gateway');
    ctx.set('Cache-Control', 'no-store');
    if (ctx.query.format === 'json') {
      ctx.body = { boot: parts.events.boot, events: parts.events.recent() };
      return;
    }
    const refused = parts.hub.refusal();
    if (refused) throw new GatewayError('overloaded', refused, { retryAfterS: 5 });
    if (ctx.method === 'HEAD') {
      ctx.type = 'text/event-stream';
      ctx.status = 200;
      return;
    }
    // The stream is written by the hub, not by Koa.
    ctx.respond = false;
    const query = typeof ctx.query.lastEventId === 'string' ? ctx.query.lastEventId : null;
    parts.hub.open(ctx.req, ctx.res, ctx.get('last-event-id') || query);
  });
}
