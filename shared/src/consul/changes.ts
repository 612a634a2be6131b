import type { HealthEntry } from './instances.js';

/**
 * What changed, from what Consul said: pure functions with table-driven tests.
 * Two snapshots of the checks (the check feed), one feed answer applied to a
 * service's last entries without reading it, the feed's filter, and each
 * node's services against the entries the table was built from (the node scan).
 */

// ---------------------------------------------------------------- checks: which services changed

/** The parts of a /v1/health/state/any entry we read. */
export interface CheckEntry {
  Node?: string;
  CheckID?: string;
  Status?: string;
  ServiceID?: string;
  ServiceName?: string;
  ModifyIndex?: number;
}

interface CheckState {
  node: string;
  /** Lower-case service name; '' for a node check (serfHealth, maintenance). */
  service: string;
  status: string;
  modify: number;
}

/** Every check in Consul, keyed by node and check id. */
export type CheckSnapshot = ReadonlyMap<string, CheckState>;

export function snapshotChecks(entries: readonly CheckEntry[]): CheckSnapshot {
  const out = new Map<string, CheckState>();
  for (const c of entries) {
    if (!c?.Node || !c.CheckID) continue;
    out.set(`${c.Node}\u0000${c.CheckID}`, {
      node: c.Node,
      service: c.ServiceID ? (c.ServiceName ?? '').toLowerCase() : '',
      status: c.Status ?? '',
      modify: Number(c.ModifyIndex ?? 0),
    });
  }
  return out;
}

export interface CheckChanges {
  /**
   * Services with a check that appeared, went, or changed; with the highest
   * ModifyIndex among their changed checks (0n when only removals): a read of
   * the service older than that is known to be behind.
   */
  services: Map<string, bigint>;
  /** Services with a change whose index is unknown (a check removed, or seen passing again): always read. */
  unsure: Set<string>;
  /** Nodes whose own checks changed: every service on them may have changed. */
  nodes: Set<string>;
  /**
   * For each node in `nodes`, the highest ModifyIndex among its changed checks
   * (0n when unknown: a removal, or seen passing again unnamed). A node check's
   * write moves the index of every service on the node, so a read of one of
   * them older than that is known to be behind.
   */
  nodeIndex: Map<string, bigint>;
}

/**
 * What changed between two snapshots of the health state. Consul bumps a
 * check's ModifyIndex whenever its status (or definition) changes, so
 * comparing status and ModifyIndex finds every change that matters.
 */
export function diffChecks(prev: CheckSnapshot, next: CheckSnapshot): CheckChanges {
  const services = new Map<string, bigint>();
  const unsure = new Set<string>();
  const nodes = new Set<string>();
  const nodeIndex = new Map<string, bigint>();
  // at 0n: a change whose index is unknown
  const touch = (c: CheckState, at: bigint) => {
    if (c.service === '') {
      nodes.add(c.node);
      // unknown (0n) wins: the read must then come from the leader
      const was = nodeIndex.get(c.node);
      nodeIndex.set(c.node, was === 0n || at <= 0n ? 0n : max(was ?? 0n, at));
      return;
    }
    services.set(c.service, max(services.get(c.service) ?? 0n, at));
    if (at <= 0n) unsure.add(c.service);
  };
  for (const [key, c] of next) {
    const before = prev.get(key);
    if (before && before.status === c.status && before.modify === c.modify && before.service === c.service) continue;
    touch(c, BigInt(c.modify));
    if (before && before.service !== c.service) touch(before, 0n);
  }
  for (const [key, c] of prev) {
    if (next.has(key)) continue;
    // A removed check leaves no index behind: the answer's index is when the checks last changed.
    touch(c, 0n);
  }
  return { services, unsure, nodes, nodeIndex };
}

/**
 * Folds an answer listing the checks that are not passing, plus `named`: the
 * passing checks it was asked about by name, into the last full snapshot. A
 * check that was not passing and is now named passing passed at its own
 * ModifyIndex. One that is in neither list has turned passing or is gone (a
 * full read will tell): its index is unknown, so its service is read from the
 * leader (unsure), never from a server that may not have the change yet.
 */
export function mergeNotPassing(
  prev: CheckSnapshot,
  notPassing: CheckSnapshot,
  named: CheckSnapshot = new Map(),
): { next: CheckSnapshot; changes: CheckChanges } {
  const next = new Map(prev);
  const unknown = new Map<string, CheckState>();
  const passed = new Map<string, CheckState>();
  for (const [key, c] of prev) {
    if (c.status === 'passing' || notPassing.has(key)) continue;
    const seen = named.get(key);
    if (seen && seen.status === 'passing' && seen.modify > 0) {
      next.set(key, seen);
      passed.set(key, seen);
      continue;
    }
    const now = { ...c, status: 'passing', modify: -1 };
    next.set(key, now);
    unknown.set(key, now);
  }
  for (const [key, c] of notPassing) next.set(key, c);
  const listed = new Map([...prev].filter(([key]) => notPassing.has(key)));
  const d = diffChecks(listed, notPassing);
  // The checks seen passing again, as changes at their own index; the unknown ones at 0n.
  const again = diffChecks(new Map(), new Map([...passed, ...unknown]));
  for (const [service, at] of again.services) d.services.set(service, max(d.services.get(service) ?? 0n, at));
  for (const s of again.unsure) d.unsure.add(s);
  for (const [node, at] of again.nodeIndex) {
    d.nodes.add(node);
    const was = d.nodeIndex.get(node);
    d.nodeIndex.set(node, was === 0n || at <= 0n ? 0n : max(was ?? 0n, at));
  }
  const { services, unsure, nodes, nodeIndex } = d;
  return { next, changes: { services, unsure, nodes, nodeIndex } };
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

// ---------------------------------------------------------------- the check feed's answer

export function feedView(entries: readonly CheckEntry[]): FeedView {
  const checks = new Map<string, FeedCheck>();
  for (const c of entries) {
    if (!c?.Node || !c.CheckID) continue;
    const serviceId = c.ServiceID ?? '';
    checks.set(checkKey(c.Node, c.CheckID), {
      node: c.Node,
      checkId: c.CheckID,
      serviceId,
      service: serviceId ? (c.ServiceName ?? '').toLowerCase() : '',
      status: c.Status ?? '',
      modify: Number(c.ModifyIndex ?? 0),
    });
  }
  return { checks };
}

/**
 * The snapshot keeps only the checks not passing: all that mergeNotPassing needs (a passing check
 * that fails is listed by the next answer anyway). Kept whole, it would grow with every check that
 * ever existed, since a deregistration of a passing instance no longer triggers a full read.
 */
export function notPassingOnly(snapshot: CheckSnapshot): CheckSnapshot {
  return new Map([...snapshot].filter(([, c]) => c.status !== 'passing'));
}

/** A check as one answer of the check feed shows it. */
export interface FeedCheck {
  node: string;
  checkId: string;
  /** '' for a node check (serfHealth, node maintenance). */
  serviceId: string;
  /** Lower-case service name; '' for a node check. */
  service: string;
  status: string;
  modify: number;
}

/**
 * What one answer of the check feed says: every check that is not passing,
 * plus the checks it was asked about by name (the ones not passing in the
 * answer before) that still exist and now pass. A check in neither is
 * passing, or gone: the feed cannot tell which.
 */
export interface FeedView {
  checks: ReadonlyMap<string, FeedCheck>;
}

export type FeedPatch =
  /**
   * The entries with the feed's statuses. `changed`: some status differs from
   * the entries given; `asOf`: the highest ModifyIndex among those changes.
   * `unknownInstance`: the feed names an instance of this service the entries
   * lack (a new registration): routing is right without it (its checks don't
   * pass), but a read should learn it.
   */
  | { entries: HealthEntry[]; changed: boolean; asOf: bigint; unknownInstance: boolean }
  /** A check the entries show not passing is no longer listed: it passes, or it (or its instance) went. Read. */
  | null;

export const checkKey = (node: string, checkId: string) => `${node}\u0000${checkId}`;

/**
 * The last /v1/health/service entries of a service brought up to date with
 * the check feed, without reading the service: a known check takes the
 * feed's status; a check the feed lists for a known instance or its node
 * but the entries lack (maintenance turned on) is added. Whether the result
 * is routable stays for instances.ts to decide, as for a read.
 */
export function patchEntries(entries: readonly HealthEntry[], service: string, view: FeedView): FeedPatch {
  const known = new Set<string>();
  const byNode = new Map<string, FeedCheck[]>();
  for (const c of view.checks.values()) {
    if (c.status === 'passing') continue;
    const list = byNode.get(c.node);
    if (list) list.push(c);
    else byNode.set(c.node, [c]);
  }
  let changed = false;
  let asOf = 0n;
  const note = (c: FeedCheck) => {
    changed = true;
    if (BigInt(c.modify) > asOf) asOf = BigInt(c.modify);
  };
  const out: HealthEntry[] = [];
  for (const e of entries) {
    const node = e.Node?.Node ?? '';
    const id = e.Service?.ID ?? '';
    known.add(checkKey(node, id));
    const checks: NonNullable<HealthEntry['Checks']> = [];
    const have = new Set<string>();
    for (const c of e.Checks ?? []) {
      have.add(c.CheckID ?? '');
      const now = c.CheckID ? view.checks.get(checkKey(node, c.CheckID)) : undefined;
      if (now) {
        if (now.status !== c.Status) note(now);
        checks.push({ ...c, Status: now.status });
      } else if (c.Status === 'passing') {
        checks.push(c);
      } else {
        return null;
      }
    }
    for (const c of byNode.get(node) ?? []) {
      if (have.has(c.checkId) || (c.serviceId !== '' && c.serviceId !== id)) continue;
      note(c);
      checks.push({ CheckID: c.checkId, Status: c.status, ServiceID: c.serviceId });
    }
    out.push({ ...e, Checks: checks });
  }
  let unknownInstance = false;
  for (const c of view.checks.values())
    if (c.service === service && c.serviceId !== '' && !known.has(checkKey(c.node, c.serviceId))) unknownInstance = true;
  return { entries: out, changed, asOf, unknownInstance };
}

/** Characters a name may hold to be quoted in a filter as is (bexpr double-quoted strings). */
const QUOTABLE = /^[^"\\`\u0000-\u001f]+$/;

/**
 * The check feed's filter: every check not passing, and these checks by
 * name whatever their status, so one that leaves the non-passing list is
 * seen passing, or seen gone. Names that can't be quoted safely are left
 * out (a read settles those); at most `max` are named, to keep the URL short.
 */
export function feedFilter(watch: Iterable<{ node: string; checkId: string }>, max: number): string {
  const parts = ['Status != "passing"'];
  for (const w of watch) {
    if (parts.length > max) break;
    if (!QUOTABLE.test(w.node) || !QUOTABLE.test(w.checkId)) continue;
    parts.push(`(Node == "${w.node}" and CheckID == "${w.checkId}")`);
  }
  return parts.join(' or ');
}

// ---------------------------------------------------------------- the node scan's comparison

/** One instance as a node's catalog lists it. */
export interface NodeService {
  node: string;
  id: string;
  /** Lower-case service name. */
  service: string;
  modify: number;
}

/** The parts of /v1/catalog/node/<node> we read. */
export interface NodeAnswer {
  Services?: Record<string, { ID?: string; Service?: string; ModifyIndex?: number }> | null;
}

/** A node's answer as the instances on it. */
export function nodeServices(node: string, body: NodeAnswer | null): NodeService[] {
  const out: NodeService[] = [];
  for (const s of Object.values(body?.Services ?? {}))
    if (s?.ID && s.Service) out.push({ node, id: s.ID, service: s.Service.toLowerCase(), modify: Number(s.ModifyIndex ?? 0) });
  return out;
}

type Entries = Iterable<[key: string, entries: readonly HealthEntry[] | undefined]>;

/**
 * Adds to `out` the services whose instances on `node` (`found`, the node's
 * whole answer) differ from the entries the table was built from: the highest
 * ModifyIndex among new or changed instances (a read older than that is
 * behind), or 0n when one went (its index is unknown: read from the leader).
 * Pure, for table-driven tests. A service not read yet is left to its first
 * read; an instance whose catalog ModifyIndex is lower than the entry's is a
 * catalog answer behind the table, not a change. The entries are taken as
 * they are when the node answers: a service's first read may have landed
 * while the node was read.
 */
export function diffNode(entries: Entries, node: string, found: readonly NodeService[], out: Map<string, bigint>): void {
  const note = (key: string, at: bigint) => {
    const was = out.get(key);
    out.set(key, was === 0n || at <= 0n ? 0n : was !== undefined && was > at ? was : at);
  };
  const inCatalog = new Map<string, Map<string, number>>();
  for (const s of found) {
    let ids = inCatalog.get(s.service);
    if (!ids) inCatalog.set(s.service, (ids = new Map()));
    ids.set(s.id, s.modify);
  }
  for (const [key, list] of entries) {
    if (!list) continue;
    const catalog = inCatalog.get(key);
    const known = new Set<string>();
    for (const e of list) {
      if ((e.Node?.Node ?? '') !== node || !e.Service?.ID) continue;
      known.add(e.Service.ID);
      const modify = catalog?.get(e.Service.ID);
      if (modify === undefined) note(key, 0n);
      else if (modify > Number(e.Service.ModifyIndex ?? 0)) note(key, BigInt(modify));
    }
    for (const [id, modify] of catalog ?? []) if (!known.has(id)) note(key, BigInt(modify > 0 ? modify : 0));
  }
}

/** The nodes the entries' instances sit on. */
export function nodesOf(entries: Entries): Set<string> {
  const out = new Set<string>();
  for (const [, list] of entries) for (const e of list ?? []) if (e.Node?.Node) out.add(e.Node.Node);
  return out;
}

/**
 * The services whose instances in the catalog (`found`, from the nodes in
 * `scanned`) differ from the entries the table was built from: diffNode over
 * every scanned node. A node that could not be read takes nothing away.
 */
export function diffInstances(
  entries: Iterable<[key: string, entries: readonly HealthEntry[] | undefined]>,
  found: readonly NodeService[],
  scanned: ReadonlySet<string>,
): Map<string, bigint> {
  const list = [...entries];
  const out = new Map<string, bigint>();
  for (const node of scanned) diffNode(list, node, found.filter((s) => s.node === node), out);
  return out;
}
