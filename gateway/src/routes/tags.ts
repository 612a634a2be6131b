/**
 * Routes a service declares in its Consul tags (docs/routes.md has the table).
 * Pure: a list of tags in, routes and the tags that were refused out. A bad
 * tag never throws; it is ignored and reported, so one service's typo can't
 * break discovery or anyone else's routes.
 *
 *   gateway.route=[host]/path[ strip=/p][ weight=N]   a route (repeatable)
 *   gateway.strip=/p                                  strip for the service's routes under /p
 *   gateway.weight=N                                  share (percent, 0-100) of a shared route
 *   gateway.default=off                               no /<service>/ route
 */
const TAG_PREFIX = 'gateway.';

export interface DeclaredRoute {
  /** Exact lower-case host, `*.domain` (one or more labels below domain), or null: any host. */
  host: string | null;
  /** Raw path prefix, no trailing slash except the root `/`. Matched on segment boundaries. */
  prefix: string;
  /** Removed from the front of the path sent upstream (segment boundary); null: none. */
  strip: string | null;
  /** Share in percent of a route other services also declare; null: the rest. */
  weight: number | null;
  /** The tag it came from, as written. */
  tag: string;
}

export interface RejectedTag {
  tag: string;
  reason: string;
}

export interface ServiceRoutes {
  routes: DeclaredRoute[];
  /** False when `gateway.default=off`: no `/<service>/` route. */
  defaultRoute: boolean;
  rejected: RejectedTag[];
}

const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
// pchar of RFC 3986 (percent-encodings kept raw: routes match the raw path), segments separated by one slash.
const PATH = /^\/(?:[A-Za-z0-9._~!$&'()*+,;=:@%-]+(?:\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*)?\/?$/;
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?=$|\/)/i;
const WEIGHT = /^\d{1,3}(?:\.\d{1,3})?$/;

/** A host as a route names it: lower-case labels, `*.` allowed as the first label only. Null: invalid. */
export function parseHost(s: string): string | null {
  const host = s.toLowerCase();
  if (host.length === 0 || host.length > 253) return null;
  const labels = host.split('.');
  const first = labels[0] === '*' ? 1 : 0;
  if (first === 1 && labels.length < 3) return null; // `*.com` would take a whole TLD
  for (let i = first; i < labels.length; i++) if (!HOST_LABEL.test(labels[i]!)) return null;
  return host;
}

/** A route's path prefix without its trailing slash (`/` stays); null when not a plain raw path. */
export function parsePrefix(s: string): string | null {
  if (!PATH.test(s) || s.startsWith('//') || DOT_SEGMENT.test(s) || /%(?![0-9a-f]{2})/i.test(s)) return null;
  // %2F inside a prefix would let a route claim what looks like two segments.
  if (/%2f|%5c/i.test(s)) return null;
  return s.length > 1 && s.endsWith('/') ? s.slice(0, -1) : s;
}

/** True when `prefix` is `path` or a whole-segment prefix of it. */
export function underPrefix(path: string, prefix: string): boolean {
  if (prefix === '/') return path[0] === '/';
  return path.startsWith(prefix) && (path.length === prefix.length || path[prefix.length] === '/');
}

function parseWeight(s: string): number | null {
  if (!WEIGHT.test(s)) return null;
  const w = Number(s);
  return w <= 100 ? w : null;
}

type Options = { strip?: string; weight?: number };

/** `host/path`, `/path` or `host`, then space-separated `strip=`/`weight=` options. */
function parseRouteValue(value: string, tag: string): DeclaredRoute | string {
  const [target, ...opts] = value.trim().split(/\s+/);
  if (!target) return 'empty route';
  const slash = target.indexOf('/');
  const hostPart = slash < 0 ? target : target.slice(0, slash);
  const pathPart = slash < 0 ? '/' : target.slice(slash);
  let host: string | null = null;
  // `api` alone reads as a host as well as a typo for `/api`: a one-label host needs its slash.
  if (slash < 0 && !hostPart.includes('.')) return `"${hostPart}" is ambiguous: write /${hostPart} for a path or ${hostPart}/ for a host`;
  if (hostPart) {
    host = parseHost(hostPart.replace(/\.$/, ''));
    if (host === null) return `"${hostPart}" is not a host name (letters, digits, dashes; "*." as the first label only)`;
  }
  const prefix = parsePrefix(pathPart);
  if (prefix === null) return `"${pathPart}" is not a plain path prefix (no dot segments, encoded slashes, query or spaces)`;
  const o: Options = {};
  for (const opt of opts) {
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    const v = eq < 0 ? '' : opt.slice(eq + 1);
    if (key === 'strip') {
      const p = parsePrefix(v);
      if (p === null) return `strip "${v}" is not a plain path prefix`;
      o.strip = p;
    } else if (key === 'weight') {
      const w = parseWeight(v);
      if (w === null) return `weight "${v}" is not a number from 0 to 100`;
      o.weight = w;
    } else return `unknown route option "${opt}" (strip=, weight=)`;
  }
  if (o.strip !== undefined && !underPrefix(prefix, o.strip)) return `strip "${o.strip}" is not a prefix of the route's path "${prefix}"`;
  return { host, prefix, strip: o.strip ?? null, weight: o.weight ?? null, tag };
}

/**
 * The routes a service declares. Tags without the `gateway.` prefix belong to
 * someone else and are skipped silently; a `gateway.` tag that can't be read
 * is rejected with the reason. Service-wide `strip`/`weight` apply to routes
 * that don't set their own. Tags are deduplicated and read in sorted order, so
 * instances listing the same tags in another order give the same routes.
 */
export function parseServiceTags(tags: readonly string[]): ServiceRoutes {
  const rejected: RejectedTag[] = [];
  const pending: DeclaredRoute[] = [];
  let strip: { value: string; tag: string } | null = null;
  let weight: { value: number; tag: string } | null = null;
  let defaultRoute = true;
  let defaultTag: string | null = null;
  for (const tag of [...new Set(tags)].sort()) {
    if (typeof tag !== 'string' || !tag.startsWith(TAG_PREFIX)) continue;
    const eq = tag.indexOf('=');
    const key = eq < 0 ? tag.slice(TAG_PREFIX.length) : tag.slice(TAG_PREFIX.length, eq);
    const value = eq < 0 ? '' : tag.slice(eq + 1);
    const reject = (reason: string) => rejected.push({ tag, reason });
    if (eq < 0) {
      reject('expected key=value');
      continue;
    }
    switch (key) {
      case 'route': {
        const r = parseRouteValue(value, tag);
        if (typeof r === 'string') reject(r);
        else pending.push(r);
        break;
      }
      case 'strip': {
        const p = parsePrefix(value.trim());
        if (p === null) reject(`"${value}" is not a plain path prefix`);
        else if (strip && strip.value !== p) reject(`a second gateway.strip; "${strip.tag}" is used`);
        else strip = { value: p, tag };
        break;
      }
      case 'weight': {
        const w = parseWeight(value.trim());
        if (w === null) reject(`"${value}" is not a number from 0 to 100`);
        else if (weight && weight.value !== w) reject(`a second gateway.weight; "${weight.tag}" is used`);
        else weight = { value: w, tag };
        break;
      }
      case 'default': {
        const v = value.trim().toLowerCase();
        if (v !== 'on' && v !== 'off') reject('gateway.default takes on or off');
        else if (defaultTag !== null && (v === 'on') !== defaultRoute) reject(`contradicts "${defaultTag}", which is used`);
        else {
          defaultRoute = v === 'on';
          defaultTag ??= tag;
        }
        break;
      }
      default:
        reject(`unknown key "${key}" (route, strip, weight, default)`);
    }
  }
  const routes: DeclaredRoute[] = [];
  const seen = new Set<string>();
  for (const r of pending) {
    const key = `${r.host ?? ''}${r.prefix}`;
    if (seen.has(key)) {
      rejected.push({ tag: r.tag, reason: `the service already declares ${key}` });
      continue;
    }
    seen.add(key);
    const s = r.strip ?? (strip && underPrefix(r.prefix, strip.value) ? strip.value : null);
    routes.push({ ...r, strip: s, weight: r.weight ?? weight?.value ?? null });
  }
  if (strip && !routes.some((r) => r.strip === strip.value)) rejected.push({ tag: strip.tag, reason: 'no route of the service is under this prefix' });
  return { routes, defaultRoute, rejected };
}
