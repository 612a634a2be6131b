import type { HealthEntry } from './instances.js';

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
