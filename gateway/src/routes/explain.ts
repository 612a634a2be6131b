import type { RouteTable } from '@stack/shared';
import { GatewayError } from '../proxy/errors.js';
import { parseRoute } from '../proxy/route.js';
import { matchRoute, normalHost, stripPrefix, type MatchKind } from './match.js';
import { shares, type Share } from './split.js';
import { underPrefix } from './tags.js';
import type { RouteEntry, RoutesSnapshot } from './table.js';

const live = (table: RouteTable) => (s: string) => (table.services.get(s)?.length ?? 0) > 0;

/** One route as the dashboard and /_gateway/routes list it. */
function routeView(e: RouteEntry, table: RouteTable) {
  const s = shares(e.targets, live(table));
  return {
    host: e.host,
    prefix: e.prefix,
    route: `${e.host ?? ''}${e.prefix}`,
    targets: e.targets.map((t, i) => ({ service: t.service, weight: t.weight, strip: t.strip, tag: t.tag, live: s[i]!.live, percent: round(s[i]!.percent) })),
    conflict: e.losers.length > 0,
    losers: e.losers.map((l) => ({ service: l.service, tag: l.tag, reason: l.reason })),
  };
}

/** GET /_gateway/routes: every declared route, the tags that were refused, and what is off. */
export function routesView(snap: RoutesSnapshot, table: RouteTable) {
  return {
    routes: snap.routes.map((e) => routeView(e, table)),
    conflicts: snap.routes.filter((e) => e.losers.length > 0).length,
    defaultRouteOff: [...snap.defaultOff].sort(),
    rejectedTags: snap.rejected,
    tagsDisagree: snap.disagreeing,
    rules:
      'host routes (exact, then the longest *.domain) before routes for any host; within them the longest path prefix on segment boundaries; ' +
      'a default /<service>/ route competes by length and loses a tie to a declared route; ' +
      'services sharing a route without weights: the name that sorts first takes it',
  };
}

const round = (n: number) => Math.round(n * 100) / 100;

interface Candidate {
  route: string;
  kind: MatchKind;
  services: string[];
  why: string;
}

/**
 * GET /_gateway/explain/route?host=&path=: which route a request would take,
 * which service its split would pick next, and why every other route that
 * could have matched did not. Pure over the snapshot and table: the same
 * functions the proxy calls, so the two can't disagree.
 */
export function explainRoute(snap: RoutesSnapshot, table: RouteTable, hostParam: string | undefined, pathParam: string | undefined) {
  if (pathParam === undefined || pathParam === '') throw new GatewayError('bad_request', 'give the raw request path as ?path=/… (and the Host as ?host=…)');
  const q = pathParam.indexOf('?');
  const rawPath = q < 0 ? pathParam : pathParam.slice(0, q);
  if (rawPath[0] !== '/') throw new GatewayError('bad_request', 'path must start with /');
  const host = normalHost(hostParam);
  const isLive = live(table);
  const base = { host: host || null, path: rawPath, rejectedTags: snap.rejected };
  const m = snap.empty ? defaultOnly(table, rawPath) : matchRoute(snap, table, hostParam, rawPath);
  const others = candidates(snap, table, host, rawPath).filter((c) => !m || m.entry === null || c.route !== `${m.entry.host ?? ''}${m.entry.prefix}`);
  if (!m) {
    const r = parseRoute(rawPath);
    const why = r.ok && snap.defaultOff.has(r.service)
      ? `"${r.service}" turned its /${r.service}/ route off (gateway.default=off)`
      : r.ok ? `no declared route matches and no service is named "${r.service}"` : `no declared route matches and the first segment is no service name (${r.reason})`;
    return { ...base, matched: null, summary: `no route: ${why}`, others: others.map((c) => ({ ...c, why: c.why })) };
  }
  if (m.entry === null) {
    const r = parseRoute(rawPath);
    const service = m.service!;
    const declared = others.filter((c) => c.kind === 'path');
    return {
      ...base,
      matched: { kind: 'default' as const, route: `/${service}`, services: [{ service, percent: 100, live: isLive(service), next: true }] },
      upstreamPath: r.ok ? r.path : null,
      summary: `default route of "${service}" (/${service}/)`,
      others: [...others.filter((c) => c.kind !== 'path'), ...declared.map((c) => ({ ...c, why: `${c.why}; /${service} is a longer prefix` }))],
    };
  }
  const e = m.entry;
  const s: Share[] = shares(e.targets, isLive);
  const next = e.split.peek(isLive);
  const route = `${e.host ?? ''}${e.prefix}`;
  const strip = e.targets.find((t) => t.service === next)?.strip ?? null;
  const split = e.targets.length > 1;
  return {
    ...base,
    matched: {
      kind: m.kind,
      route,
      services: e.targets.map((t, i) => ({ service: t.service, weight: t.weight, percent: round(s[i]!.percent), live: s[i]!.live, strip: t.strip, next: t.service === next })),
      losers: e.losers.map((l) => ({ service: l.service, tag: l.tag, reason: l.reason })),
      conflict: e.losers.length > 0,
    },
    upstreamPath: stripPrefix(rawPath, strip),
    summary:
      `${m.kind === 'host' ? 'host route' : m.kind === 'wildcard' ? 'wildcard host route' : 'path route'} ${route}` +
      (split ? `, split ${s.map((x, i) => `${e.targets[i]!.service} ${round(x.percent)}%`).join(' / ')}; next request: ${next}` : ` → ${next}`) +
      (e.losers.length > 0 ? `; conflict: ${e.losers.map((l) => l.service).join(', ')} lost (the name that sorts first wins)` : ''),
    others: others.map((c) => ({ ...c, why: `${c.why}; ${m.kind === 'host' || m.kind === 'wildcard' ? 'lost to' : 'shorter than'} ${route}` })),
  };
}

function defaultOnly(table: RouteTable, rawPath: string) {
  const r = parseRoute(rawPath);
  return r.ok && table.services.has(r.service) ? { kind: 'default' as const, entry: null, service: r.service } : null;
}

/** Every route whose host and prefix fit the request, in the order the matcher tries them. */
function candidates(snap: RoutesSnapshot, table: RouteTable, host: string, rawPath: string): Candidate[] {
  const out: Candidate[] = [];
  for (const e of snap.routes) {
    if (!underPrefix(rawPath, e.prefix)) continue;
    let kind: MatchKind;
    if (e.host === null) kind = 'path';
    else if (e.host === host) kind = 'host';
    else if (e.host.startsWith('*.') && host.length > e.host.length - 1 && host.endsWith(e.host.slice(1))) kind = 'wildcard';
    else continue;
    out.push({ route: `${e.host ?? ''}${e.prefix}`, kind, services: e.targets.map((t) => t.service), why: `matches (${kind}, prefix ${e.prefix.length} chars)` });
  }
  const r = parseRoute(rawPath);
  if (r.ok && table.services.has(r.service)) {
    const off = snap.defaultOff.has(r.service);
    out.push({ route: `/${r.service}`, kind: 'default', services: [r.service], why: off ? 'default route turned off (gateway.default=off)' : 'default /<service>/ route' });
  }
  const rank = { host: 0, wildcard: 1, path: 2, default: 2 } as const;
  return out.sort((a, b) => rank[a.kind] - rank[b.kind] || b.route.length - a.route.length);
}
