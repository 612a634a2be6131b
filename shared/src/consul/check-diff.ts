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
  /** Raft indexes at which some check was written (removals: the answer's index). */
  writtenAt: bigint[];
}

/**
 * What changed between two snapshots of the health state. Consul bumps a
 * check's ModifyIndex whenever its status (or definition) changes, so
 * comparing status and ModifyIndex finds every change that matters.
 */
export function diffChecks(prev: CheckSnapshot, next: CheckSnapshot, answerIndex: bigint): CheckChanges {
  const services = new Map<string, bigint>();
  const unsure = new Set<string>();
  const nodes = new Set<string>();
  const writtenAt = new Set<bigint>();
  // at 0n: a change whose index is unknown
  const touch = (c: CheckState, at: bigint) => {
    if (c.service === '') return void nodes.add(c.node);
    services.set(c.service, max(services.get(c.service) ?? 0n, at));
    if (at <= 0n) unsure.add(c.service);
  };
  for (const [key, c] of next) {
    const before = prev.get(key);
    if (before && before.status === c.status && before.modify === c.modify && before.service === c.service) continue;
    touch(c, BigInt(c.modify));
    if (before && before.service !== c.service) touch(before, 0n);
    if (c.modify > 0) writtenAt.add(BigInt(c.modify));
  }
  for (const [key, c] of prev) {
    if (next.has(key)) continue;
    // A removed check leaves no index behind: the answer's index is when the checks last changed.
    touch(c, 0n);
    writtenAt.add(answerIndex);
  }
  return { services, unsure, nodes, writtenAt: [...writtenAt] };
}

/**
 * Folds an answer listing only the checks that are not passing into the last
 * full snapshot. A check that was not passing and is no longer listed has
 * turned passing (or is gone: a full read will tell); its ModifyIndex is then
 * unknown, so the next full read reads its service once more.
 */
export function mergeNotPassing(
  prev: CheckSnapshot,
  notPassing: CheckSnapshot,
  answerIndex: bigint,
): { next: CheckSnapshot; changes: CheckChanges } {
  const next = new Map(prev);
  const changed = new Map<string, CheckState>();
  const writtenAt = new Set<bigint>();
  for (const [key, c] of prev) {
    if (c.status === 'passing' || notPassing.has(key)) continue;
    const now = { ...c, status: 'passing', modify: -1 };
    next.set(key, now);
    changed.set(key, now);
    writtenAt.add(answerIndex);
  }
  for (const [key, c] of notPassing) next.set(key, c);
  const listed = new Map([...prev].filter(([key]) => notPassing.has(key)));
  const d = diffChecks(listed, notPassing, answerIndex);
  const { services, unsure, nodes } = d;
  for (const c of changed.values()) {
    if (c.service === '') {
      nodes.add(c.node);
    } else {
      if (!services.has(c.service)) services.set(c.service, 0n);
      unsure.add(c.service);
    }
  }
  for (const at of d.writtenAt) writtenAt.add(at);
  return { next, changes: { services, unsure, nodes, writtenAt: [...writtenAt] } };
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
