import type { Instance, RouteTable } from '@stack/shared';
import { parseServiceTags, type DeclaredRoute, type RejectedTag } from './tags.js';
import { Split } from './split.js';

/** One service's claim on a route. */
export interface RouteTarget {
  service: string;
  /** Declared share in percent; null: the rest of the route. */
  weight: number | null;
  strip: string | null;
  tag: string;
}

export interface LosingTarget extends RouteTarget {
  /** Why the route does not send to it. */
  reason: string;
}

/** A host + prefix and the services it sends to. */
export interface RouteEntry {
  /** Exact host, `*.domain`, or null: any host. */
  host: string | null;
  prefix: string;
  /** Services taking part: every weighted one, plus at most one unweighted one. */
  targets: RouteTarget[];
  /** Services that declared the route but lost the conflict rule. */
  losers: LosingTarget[];
  /** Picks a target per request (split.ts); state lives as long as this snapshot. */
  split: Split;
}

export interface RoutesSnapshot {
  /** No declared route and no default turned off: the proxy parses `/<service>/` as it always did. */
  readonly empty: boolean;
  readonly exact: ReadonlyMap<string, ReadonlyMap<string, RouteEntry>>;
  /** `*.domain` groups, keyed by `.domain`, longest suffix first. */
  readonly wildcard: ReadonlyArray<readonly [string, ReadonlyMap<string, RouteEntry>]>;
  readonly any: ReadonlyMap<string, RouteEntry>;
  /** Lower-case services with `gateway.default=off`. */
  readonly defaultOff: ReadonlySet<string>;
  readonly hasHosts: boolean;
  readonly routes: readonly RouteEntry[];
  readonly rejected: ReadonlyArray<RejectedTag & { service: string }>;
  /** Services whose instances don't all carry the same gateway tags (the union counts). */
  readonly disagreeing: readonly string[];
}

const emptyRoutes: RoutesSnapshot = {
  empty: true,
  exact: new Map(),
  wildcard: [],
  any: new Map(),
  defaultOff: new Set(),
  hasHosts: false,
  routes: [],
  rejected: [],
  disagreeing: [],
};

const ownTags = (i: Instance) => i.tags.filter((t) => t.startsWith('gateway.')).sort();

/**
 * The conflict rule: among services that declare the same host + prefix
 * without a weight, the one whose name sorts first takes the unweighted
 * share; the others lose and say so. Sorting by name needs nothing but the
 * table, so every gateway replica and every rebuild picks the same winner,
 * whatever order Consul's answers arrived in.
 */
function resolveTargets(claims: RouteTarget[]): { targets: RouteTarget[]; losers: LosingTarget[] } {
  const sorted = [...claims].sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
  const targets: RouteTarget[] = [];
  const losers: LosingTarget[] = [];
  let unweighted: RouteTarget | null = null;
  for (const c of sorted) {
    if (c.weight !== null) targets.push(c);
    else if (!unweighted) {
      unweighted = c;
      targets.push(c);
    } else
      losers.push({
        ...c,
        reason: `conflict: "${unweighted.service}" also declares this route without a weight and its name sorts first; give both a gateway.weight to split`,
      });
  }
  return { targets, losers };
}

/**
 * Builds route snapshots from route tables. Keeps each service's last
 * non-empty tags, so a service whose instances are all failing keeps its
 * routes (and answers 503, or drops out of its splits) instead of vanishing
 * into a 404; a service that leaves the table takes its routes along.
 * A snapshot is replaced whole, never changed: a request holds one view.
 */
export class RouteBuilder {
  #tags = new Map<string, string[][]>();
  #signature = '';
  #snapshot: RoutesSnapshot = emptyRoutes;
  #table: RouteTable | null = null;

  get snapshot(): RoutesSnapshot {
    return this.#snapshot;
  }

  /** The snapshot for `table`: the same object when no service's gateway tags changed. */
  update(table: RouteTable): RoutesSnapshot {
    if (table === this.#table) return this.#snapshot;
    this.#table = table;
    for (const name of [...this.#tags.keys()]) if (!table.services.has(name)) this.#tags.delete(name);
    for (const [name, instances] of table.services) {
      if (instances.length === 0) continue;
      // Distinct tag sets only: more instances with the same tags change nothing here.
      const sets = [...new Map(instances.map(ownTags).map((s) => [JSON.stringify(s), s])).values()];
      if (sets.every((s) => s.length === 0)) this.#tags.delete(name);
      else this.#tags.set(name, sets.sort());
    }
    const names = [...this.#tags.keys()].sort();
    const signature = JSON.stringify(names.map((n) => [n, this.#tags.get(n)]));
    if (signature === this.#signature) return this.#snapshot;
    this.#signature = signature;
    this.#snapshot = buildRoutes(new Map(names.map((n) => [n, this.#tags.get(n)!])));
    return this.#snapshot;
  }
}

/** A snapshot from each service's instances' tag lists (pure; RouteBuilder feeds it). */
export function buildRoutes(tagsByService: ReadonlyMap<string, readonly (readonly string[])[]>): RoutesSnapshot {
  const claims = new Map<string, { host: string | null; prefix: string; claims: RouteTarget[] }>();
  const rejected: Array<RejectedTag & { service: string }> = [];
  const defaultOff = new Set<string>();
  const disagreeing: string[] = [];
  for (const [service, sets] of tagsByService) {
    const union = [...new Set(sets.flat())];
    if (sets.some((s) => s.length !== union.length)) disagreeing.push(service);
    const parsed = parseServiceTags(union);
    if (!parsed.defaultRoute) defaultOff.add(service.toLowerCase());
    for (const r of parsed.rejected) rejected.push({ service, ...r });
    for (const r of parsed.routes) claim(claims, service, r);
  }
  const routes: RouteEntry[] = [];
  const exact = new Map<string, Map<string, RouteEntry>>();
  const wild = new Map<string, Map<string, RouteEntry>>();
  const any = new Map<string, RouteEntry>();
  const keys = [...claims.keys()].sort();
  for (const k of keys) {
    const c = claims.get(k)!;
    const { targets, losers } = resolveTargets(c.claims);
    const entry: RouteEntry = { host: c.host, prefix: c.prefix, targets, losers, split: new Split(targets) };
    routes.push(entry);
    if (c.host === null) any.set(c.prefix, entry);
    else {
      const group = c.host.startsWith('*.') ? wild : exact;
      const key = c.host.startsWith('*.') ? c.host.slice(1) : c.host;
      let m = group.get(key);
      if (!m) group.set(key, (m = new Map()));
      m.set(c.prefix, entry);
    }
  }
  const wildcard = [...wild].sort((a, b) => b[0].length - a[0].length);
  return {
    empty: routes.length === 0 && defaultOff.size === 0,
    exact,
    wildcard,
    any,
    defaultOff,
    hasHosts: exact.size > 0 || wildcard.length > 0,
    routes,
    rejected,
    disagreeing,
  };
}

function claim(claims: Map<string, { host: string | null; prefix: string; claims: RouteTarget[] }>, service: string, r: DeclaredRoute): void {
  const key = `${r.host ?? ''}${r.prefix}`;
  let c = claims.get(key);
  if (!c) claims.set(key, (c = { host: r.host, prefix: r.prefix, claims: [] }));
  c.claims.push({ service, weight: r.weight, strip: r.strip, tag: r.tag });
}
