import { hasPathTraversal, isValidServiceName, type RouteTable } from '@stack/shared';
import { parseRoute, type Route } from '../proxy/route.js';
import type { RouteEntry, RoutesSnapshot } from './table.js';

/** The longest prefix of `rawPath` in `m`, on segment boundaries (`/api` matches `/api` and `/api/x`, not `/apiary`). */
function longestPrefix(m: ReadonlyMap<string, RouteEntry>, rawPath: string): RouteEntry | undefined {
  if (m.size === 0) return undefined;
  let e = m.get(rawPath);
  if (e) return e;
  for (let i = rawPath.lastIndexOf('/'); i > 0; i = rawPath.lastIndexOf('/', i - 1)) {
    e = m.get(rawPath.slice(0, i));
    if (e) return e;
  }
  return m.get('/');
}

/** The Host header as routes compare it: lower-case, no port, no trailing dot. */
export function normalHost(host: string | undefined): string {
  if (!host) return '';
  let h = host.toLowerCase();
  if (h[0] === '[') return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  if (colon >= 0) h = h.slice(0, colon);
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/** Whether routes are declared for this Host (exactly or by a `*.domain`). */
export function hostHasRoutes(snap: RoutesSnapshot, host: string | undefined): boolean {
  if (!snap.hasHosts) return false;
  const h = normalHost(host);
  if (snap.exact.has(h)) return true;
  for (const [suffix] of snap.wildcard) if (h.length > suffix.length && h.endsWith(suffix)) return true;
  return false;
}

export type MatchKind = 'host' | 'wildcard' | 'path' | 'default';

export interface Match {
  kind: MatchKind;
  /** The declared route; null for a default `/<service>/` route. */
  entry: RouteEntry | null;
  /** Lower-case service of a default route. */
  service: string | null;
}

/**
 * Which route a request takes: routes for its exact host, then for the
 * longest matching `*.domain`, then routes for any host, where a service's
 * default `/<service>/` route competes by prefix length and loses a tie to a
 * declared route. Within a group the longest prefix wins. Null: no route.
 */
export function matchRoute(snap: RoutesSnapshot, table: RouteTable, host: string | undefined, rawPath: string): Match | null {
  if (snap.hasHosts) {
    const h = normalHost(host);
    const exact = snap.exact.get(h);
    const e = exact && longestPrefix(exact, rawPath);
    if (e) return { kind: 'host', entry: e, service: null };
    for (const [suffix, m] of snap.wildcard) {
      if (h.length > suffix.length && h.endsWith(suffix)) {
        const w = longestPrefix(m, rawPath);
        if (w) return { kind: 'wildcard', entry: w, service: null };
      }
    }
  }
  const declared = longestPrefix(snap.any, rawPath);
  const end = rawPath.indexOf('/', 1);
  const first = (end < 0 ? rawPath.slice(1) : rawPath.slice(1, end)).toLowerCase();
  if (
    first.length > 0 &&
    (!declared || first.length + 1 > declared.prefix.length) &&
    isValidServiceName(first) &&
    !snap.defaultOff.has(first) &&
    table.services.has(first)
  )
    return { kind: 'default', entry: null, service: first };
  return declared ? { kind: 'path', entry: declared, service: null } : null;
}

/**
 * The proxy's routing step when services declare routes: the service and the
 * upstream path for a raw (still percent-encoded) path, checked as
 * parseRoute checks it, so dot segments or encoded slashes can't reach
 * another route. Falls back to parseRoute's answer (and its errors) when no
 * route matches.
 */
export function resolveRoute(snap: RoutesSnapshot, table: RouteTable, host: string | undefined, rawPath: string): Route {
  if (rawPath[0] !== '/') return { ok: false, reason: 'invalid_path', service: null };
  if (hasPathTraversal(rawPath) || /\s/.test(rawPath)) {
    const first = parseRoute(rawPath);
    return { ok: false, reason: 'invalid_path', service: first.service };
  }
  const m = matchRoute(snap, table, host, rawPath);
  if (!m) {
    const r = parseRoute(rawPath);
    // A default route turned off is not there: the same 404 as an unknown service.
    return r.ok && snap.defaultOff.has(r.service) ? { ok: false, reason: 'no_route', service: null } : r;
  }
  if (m.entry === null) return parseRoute(rawPath);
  const e = m.entry;
  const service = e.split.pick((s) => (table.services.get(s)?.length ?? 0) > 0)!;
  const strip = e.targets.find((t) => t.service === service)?.strip ?? null;
  return { ok: true, service, path: stripPrefix(rawPath, strip) };
}

export function stripPrefix(rawPath: string, strip: string | null): string {
  if (strip === null || strip === '/') return rawPath;
  if (!rawPath.startsWith(strip)) return rawPath;
  const rest = rawPath.slice(strip.length);
  return rest === '' ? '/' : rest[0] === '/' ? rest : rawPath;
}
