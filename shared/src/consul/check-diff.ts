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
