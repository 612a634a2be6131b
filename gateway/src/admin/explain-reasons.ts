import {
  byIdThenNode,
  decideServiceAnswer,
  identityKey,
  judgeEntries,
  type EntryProblem,
  type EntryVerdict,
  type HealthCheck,
  type Instance,
  type ServiceAnswer,
  type ServiceDecision,
} from '@stack/shared';
import type { Ejection } from '../balancing/outlier.js';

/**
 * Why an instance does or does not get traffic: shared's routability rules
 * (judgeEntries, decideServiceAnswer) read back as reasons. Pure: explain.ts
 * gathers the inputs (a Consul answer, the table, holds and ejections) and
 * renders the result.
 */
export type ReasonCode =
  /** Every check passes: routed. */
  | 'passing'
  /** A service check is critical (not maintenance). */
  | 'check_critical'
  /** A service check is warning: the rules route only instances whose every check passes. */
  | 'check_warning'
  /** A check with any other status. */
  | 'check_failing'
  /** A node-level check is not passing (serfHealth: the node's agent is unreachable). */
  | 'node_unhealthy'
  /** Consul's `_service_maintenance:<id>` check. */
  | 'service_maintenance'
  /** Consul's `_node_maintenance` check. */
  | 'node_maintenance'
  /** No usable address or port. */
  | 'invalid_address'
  /** The same node and id listed twice: the first routable one is used. */
  | 'duplicate'
  /** In the gateway's table but not in Consul's answer. */
  | 'not_in_consul'
  /** Routed although not passing: nothing passes, and only its lost agent makes it critical. */
  | 'kept_agent_unreachable'
  /** Routed although not passing (or gone): the answer can't be trusted for removals. */
  | 'kept_untrusted'
  /** Passes, but not routed: it came in an untrusted answer that also removes others, which waits for the leader. */
  | 'awaiting_leader'
  /** Routed although not passing (or gone): a sudden "none passing" answer is being held. */
  | 'held_empty'
  /** The gateway's table does not match this answer yet (routed or not, see inTable). */
  | 'table_behind'
  /** Passive health took it out of rotation for a while: not picked (unless every instance is). */
  | 'ejected'
  /** The whole service is never routed (EXCLUDE_SERVICES, the gateway itself, consul). */
  | 'service_excluded';

export interface CheckView {
  id: string;
  name: string;
  status: string;
  /** Consul's Output (the Notes of a maintenance check without one), truncated. */
  output: string;
  /** 'node': a check of the node (serfHealth, node maintenance); 'service': of this instance. */
  scope: 'service' | 'node';
}

export interface Reason {
  code: ReasonCode;
  detail: string;
  /** The check the reason is about, for the check_* , node_* and *_maintenance codes. */
  check?: CheckView;
}

export interface EjectionView {
  since: string;
  until: string;
  remainingMs: number;
  failures: number;
  kinds: Record<string, number>;
  ejections: number;
}

export interface InstanceExplain {
  id: string;
  address: string;
  port: number;
  node: string;
  /** Routed by the gateway's rules for this answer (an ejected instance is routable but not picked). */
  routable: boolean;
  /** Listed in Consul's answer. */
  inConsul: boolean;
  /** In the gateway's route table now. */
  inTable: boolean;
  /** The first one says why it is (not) routable; the rest add to it. */
  reasons: Reason[];
  /** Every check Consul reports for it, node checks included; [] when Consul does not list it. */
  checks: CheckView[];
  ejection: EjectionView | null;
}

/** decideServiceAnswer's inputs (`before`: the gateway's table for the service now), and the gateway's own state. */
export interface ExplainInput extends ServiceAnswer {
  /** Why configuration excludes the whole service; null when it does not. */
  excluded: string | null;
  /** The instance's ejection, if the gateway ejected it. */
  ejection: (instance: Instance) => Ejection | null;
  /** The N → 0 answer the gateway holds now, if any (ms since the epoch). */
  hold: { since: number; until: number } | null;
  now: number;
}

export type ExplainDecision = ServiceDecision['action'] | 'excluded';

export interface ServiceExplain {
  /** What the gateway does with this answer (decideServiceAnswer, instances.ts), or 'excluded'. */
  decision: ExplainDecision;
  /** Instances routable (ejected ones included). */
  routable: number;
  instances: InstanceExplain[];
}

/** Consul check outputs can be whole HTTP bodies: enough to see why, not a page. */
export const OUTPUT_MAX = 500;

export function truncateOutput(s: string, max = OUTPUT_MAX): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length - max} more characters)`;
}

export function checkView(c: HealthCheck): CheckView {
  const id = c.CheckID ?? '';
  const maintenance = id === '_node_maintenance' || id.startsWith('_service_maintenance:');
  return {
    id,
    name: c.Name ?? '',
    status: c.Status ?? '',
    output: truncateOutput((c.Output || (maintenance ? c.Notes : '') || '').trim()),
    scope: c.ServiceID ? 'service' : 'node',
  };
}

const said = (s: string) => (s ? `: ${s}` : ' (no output)');
const named = (c: CheckView) => (c.name && c.name !== c.id ? `"${c.name}" (${c.id})` : `"${c.id}"`);

/** One failing check as a reason. */
function checkReason(c: HealthCheck, node: string): Reason {
  const check = checkView(c);
  const why = check.output || 'no reason given';
  if (check.id === '_node_maintenance')
    return { code: 'node_maintenance', detail: `node "${node}" is in maintenance mode: ${why}`, check };
  if (check.id.startsWith('_service_maintenance:'))
    return { code: 'service_maintenance', detail: `the instance is in maintenance mode: ${why}`, check };
  if (check.scope === 'node') {
    const detail =
      check.id === 'serfHealth'
        ? `the Consul agent of node "${node}" is unreachable (serfHealth ${check.status})${said(check.output)}`
        : `node check ${named(check)} of node "${node}" is ${check.status}${said(check.output)}`;
    return { code: 'node_unhealthy', detail, check };
  }
  if (check.status === 'critical') return { code: 'check_critical', detail: `check ${named(check)} is critical${said(check.output)}`, check };
  if (check.status === 'warning')
    return {
      code: 'check_warning',
      detail: `check ${named(check)} is warning${said(check.output)}; the gateway routes only instances whose every check passes`,
      check,
    };
  return { code: 'check_failing', detail: `check ${named(check)} is ${check.status ? `"${check.status}"` : 'without a status'}`, check };
}

function problemReason(p: EntryProblem, v: EntryVerdict): Reason {
  const i = v.instance;
  if (p.kind === 'check') return checkReason(p.check, i.node);
  if (p.kind === 'address')
    return { code: 'invalid_address', detail: `Consul gives it no usable address and port (address "${i.address}", port ${i.port})` };
  return { code: 'duplicate', detail: `Consul lists id "${i.id}" on node "${i.node}" more than once; the first routable entry is used` };
}

const iso = (ms: number) => new Date(ms).toISOString();

function keptReason(d: ServiceDecision, input: ExplainInput): Reason {
  if (d.action === 'confirm')
    return {
      code: 'kept_untrusted',
      detail: `Consul's answer would take it out, but cannot be trusted for removals (${d.why}): the gateway keeps routing to it until a read from the Consul leader confirms`,
    };
  if (d.action === 'hold') {
    const h = input.hold;
    const until = h ? `until ${iso(h.until)} (held since ${iso(h.since)})` : `for up to ${input.holdMs} ms`;
    return {
      code: 'held_empty',
      detail: `Consul suddenly reports no passing instance of the service: the gateway keeps routing to the last ones ${until}, in case Consul is rebuilding its state (a restarted agent re-runs its checks)`,
    };
  }
  return {
    code: 'kept_agent_unreachable',
    detail: "no instance of the service passes, and this one fails only because its node's Consul agent is unreachable: the gateway keeps routing to it (retries and passive health weed it out if it is really gone)",
  };
}

function ejectedReason(e: Ejection, now: number): Reason {
  const kinds = Object.entries(e.kinds).filter(([, n]) => n > 0).map(([k, n]) => `${k} ×${n}`).join(', ');
  return {
    code: 'ejected',
    detail:
      `passive health ejected it at ${iso(e.since)} after ${e.failures} consecutive failure${e.failures === 1 ? '' : 's'}${kinds ? ` (${kinds})` : ''}` +
      `: not picked until ${iso(e.until)} (${Math.max(0, e.until - now)} ms left), unless every instance of the service is ejected`,
  };
}

function ejectionView(e: Ejection, now: number): EjectionView {
  return { since: iso(e.since), until: iso(e.until), remainingMs: Math.max(0, e.until - now), failures: e.failures, kinds: { ...e.kinds }, ejections: e.ejections };
}

/**
 * Every instance of a service (in Consul's answer, or in the gateway's table
 * only), whether the gateway routes it and why. The routed set is
 * decideServiceAnswer's own decision on the same inputs and the per-instance
 * problems are judgeEntries', the predicate routableInstances is built on, so
 * this can't disagree with routing. Sorted by id, then node.
 */
export function explainService(input: ExplainInput): ServiceExplain {
  const verdicts = judgeEntries(input.entries);
  const table = input.before ?? [];
  const tableKeys = new Set(table.map(identityKey));
  const decision: ServiceDecision | null = input.excluded === null ? decideServiceAnswer(input) : null;
  const routed = decision === null ? [] : decision.action === 'apply' ? decision.instances : table;
  const routedKeys = new Set(routed.map(identityKey));
  // Each routed (and table) instance is claimed by one entry only: a duplicate is not routed twice.
  const claimedRouted = new Set<string>();
  const claimedTable = new Set<string>();
  const out: InstanceExplain[] = [];

  const finish = (i: Instance, routable: boolean, inTable: boolean, reasons: Reason[], checks: CheckView[], inConsul: boolean) => {
    if (decision !== null && routable !== inTable)
      reasons.push({
        code: 'table_behind',
        detail: inTable
          ? "still in the gateway's route table: the table has not caught up with this answer yet"
          : "not in the gateway's route table yet: the table has not caught up with this answer yet",
      });
    const e = input.ejection(i);
    if (e) reasons.push(ejectedReason(e, input.now));
    out.push({
      id: i.id,
      address: i.address,
      port: i.port,
      node: i.node,
      routable,
      inConsul,
      inTable,
      reasons,
      checks,
      ejection: e ? ejectionView(e, input.now) : null,
    });
  };

  // Entries routable on their own claim first, so a failing entry never takes a passing twin's place.
  const ordered = [...verdicts.filter((v) => v.problems.length === 0), ...verdicts.filter((v) => v.problems.length > 0)];
  for (const v of ordered) {
    const k = identityKey(v.instance);
    const routable = routedKeys.has(k) && !claimedRouted.has(k);
    if (routable) claimedRouted.add(k);
    const inTable = tableKeys.has(k) && !claimedTable.has(k);
    if (inTable) claimedTable.add(k);
    const problems = v.problems.map((p) => problemReason(p, v));
    let reasons: Reason[];
    if (decision === null) reasons = [{ code: 'service_excluded', detail: input.excluded! }, ...problems];
    else if (routable) reasons = problems.length === 0 ? [{ code: 'passing', detail: 'every check passes: the gateway routes to it' }] : [keptReason(decision, input), ...problems];
    else if (problems.length === 0 && decision.action === 'confirm')
      reasons = [{
        code: 'awaiting_leader',
        detail: `it passes, but the answer it came in cannot be trusted for removals (${decision.why}) and takes other instances away: the gateway applies it once the Consul leader confirms`,
      }];
    else reasons = problems;
    finish(v.instance, routable, inTable, reasons, (v.entry.Checks ?? []).map(checkView), true);
  }

  for (const i of table) {
    const k = identityKey(i);
    if (claimedTable.has(k)) continue;
    claimedTable.add(k);
    const routable = routedKeys.has(k) && !claimedRouted.has(k);
    if (routable) claimedRouted.add(k);
    const reasons: Reason[] = [];
    if (decision === null) reasons.push({ code: 'service_excluded', detail: input.excluded! });
    else if (routable) reasons.push(keptReason(decision, input));
    reasons.push({ code: 'not_in_consul', detail: "Consul's answer does not list it (deregistered, or registered again with another address or port)" });
    finish(i, routable, true, reasons, [], false);
  }

  out.sort(byIdThenNode);
  return { decision: decision?.action ?? 'excluded', routable: out.filter((i) => i.routable).length, instances: out };
}

/** The explanation of one instance (by id, and node when ids repeat across nodes). */
export function explainInstance(input: ExplainInput, id: string, node?: string): InstanceExplain | undefined {
  return explainService(input).instances.find((i) => i.id === id && (node === undefined || i.node === node));
}
