import { agentLostInstances, routableInstances, type HealthEntry, type Instance } from './instances.js';

export type ServiceDecision =
  /** Route to these from now on. */
  | { action: 'apply'; instances: Instance[]; agentLost: boolean }
  /** The answer takes instances away but cannot be trusted for that: ask the leader first. */
  | { action: 'confirm'; why: string }
  /** Suddenly nothing passes: keep routing to the last instances until that persists. */
  | { action: 'hold'; instances: Instance[] };

export interface ServiceAnswer {
  /** What the table routes to now (undefined: nothing known yet). */
  before: readonly Instance[] | undefined;
  entries: readonly HealthEntry[];
  /** Why the answer can't be trusted for removals (see trust.ts); null when it can. */
  distrust: string | null;
  /** How long an N → 0 answer is held (0: not held). */
  holdMs: number;
}

/**
 * What to do with one /v1/health/service/<name> answer. Passing instances
 * are routed; failing that, the ones only their lost agent makes critical. An
 * untrusted answer may add instances but not take any away; a trusted one
 * that takes every instance away is held for a while.
 */
export function decideServiceAnswer(a: ServiceAnswer): ServiceDecision {
  const passing = routableInstances(a.entries);
  const lost = passing.length === 0 ? agentLostInstances(a.entries) : [];
  const instances = passing.length > 0 ? passing : lost;
  const before = a.before ?? [];
  if (a.distrust !== null && removesAny(before, instances)) return { action: 'confirm', why: a.distrust };
  if (before.length > 0 && instances.length === 0 && a.holdMs > 0) return { action: 'hold', instances };
  return { action: 'apply', instances, agentLost: lost.length > 0 };
}

/** What makes two instances the same one for removesAny (and explain.ts): node, id, address and port. */
export const identityKey = (i: Instance) => `${i.node}\u0000${i.id}\u0000${i.address}\u0000${i.port}`;

/** True when some instance of `before` is not in `after` (same node, id, address and port). */
export function removesAny(before: readonly Instance[], after: readonly Instance[]): boolean {
  if (before.length === 0) return false;
  const next = new Set(after.map(identityKey));
  return before.some((i) => !next.has(identityKey(i)));
}
