import type { CheckSchedule } from './empty-hold.js';

/** One routable instance of a service, as the gateway and /call use it. */
export interface Instance {
  id: string;
  service: string;
  address: string;
  port: number;
  node: string;
  tags: string[];
  /** The instance's one identity (instanceKey): what the gateway keys per-instance state by. */
  key: string;
}

/**
 * An instance's identity: Consul's service id is unique per node (agent), so
 * node/id is unique in the datacenter; the same id on two nodes is two instances.
 */
export function instanceKey(node: string, id: string): string {
  return `${node}/${id}`;
}

/** The parts of a check in a /v1/health/service/<name> entry we read (Name, Output, Notes: for explain.ts). */
export type HealthCheck = { Status?: string; CheckID?: string; Name?: string; Output?: string; Notes?: string; ModifyIndex?: number } & CheckSchedule;

/** The parts of a /v1/health/service/<name> entry we read. */
export interface HealthEntry {
  Node?: { Node?: string; Address?: string };
  Service?: { ID?: string; Service?: string; Address?: string; Port?: number; Tags?: string[] | null; ModifyIndex?: number };
  Checks?: HealthCheck[] | null;
}

/**
 * Consul's DNS-safe service name: letters, digits and dashes, 1-63 chars, not
 * starting or ending with a dash. Also what the gateway accepts in a URL, so
 * a name can never smuggle a dot, slash, colon or @ into anything.
 */
const SERVICE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

export function isValidServiceName(name: string): boolean {
  return SERVICE_NAME.test(name);
}

/** Why one entry is not routable on its own. */
export type EntryProblem =
  /** A check (service or node) that is not passing: warning counts, maintenance is a critical check. */
  | { kind: 'check'; check: HealthCheck }
  /** No address, or a port outside 1-65535. */
  | { kind: 'address' }
  /** Same node and service id as an entry before it that is routable. */
  | { kind: 'duplicate' };

export interface EntryVerdict {
  entry: HealthEntry;
  /** The instance the entry stands for (address '' or port 0 when unusable). */
  instance: Instance;
  /** Empty: routable on its own. */
  problems: readonly EntryProblem[];
}

const NO_PROBLEMS: readonly EntryProblem[] = Object.freeze([]);

/**
 * The one predicate of routability, entry by entry, in Consul's order:
 * every check (node and service) passing, a usable address and port, not a
 * repeat. routableInstances keeps the entries without problems; explain.ts
 * turns the problems into reasons, so the two cannot disagree. Entries
 * without a service ID or name are skipped.
 */
export function judgeEntries(entries: readonly HealthEntry[]): EntryVerdict[] {
  const seen = new Set<string>();
  const out: EntryVerdict[] = [];
  for (const e of entries) {
    const svc = e.Service;
    if (!svc?.ID || !svc.Service) continue;
    let problems: EntryProblem[] | undefined;
    for (const c of e.Checks ?? []) if (c.Status !== 'passing') (problems ??= []).push({ kind: 'check', check: c });
    const address = svc.Address || e.Node?.Address || '';
    const port = svc.Port ?? 0;
    if (!address || !Number.isInteger(port) || port < 1 || port > 65535) (problems ??= []).push({ kind: 'address' });
    const node = e.Node?.Node ?? '';
    if (!problems) {
      const key = instanceKey(node, svc.ID);
      if (seen.has(key)) problems = [{ kind: 'duplicate' }];
      else seen.add(key);
    }
    const instance = { id: svc.ID, service: svc.Service, address, port, node, tags: svc.Tags ?? [], key: instanceKey(node, svc.ID) };
    out.push({ entry: e, instance, problems: problems ?? NO_PROBLEMS });
  }
  return out;
}

/** Instances in a stable order: by id, then node. */
export function byIdThenNode(a: { id: string; node: string }, b: { id: string; node: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

/**
 * Turns a health response into the instances we may route to: the entries
 * judgeEntries finds no problem with. `?passing` already filters on Consul's
 * side; this keeps the decision ours and testable, and covers maintenance
 * mode (a critical check) the same way. Sorted by id so equal sets compare
 * equal whatever order Consul returned them in.
 */
export function routableInstances(entries: readonly HealthEntry[]): Instance[] {
  const out: Instance[] = [];
  for (const v of judgeEntries(entries)) if (v.problems.length === 0) out.push(v.instance);
  return out.sort(byIdThenNode);
}

/** Names from /v1/catalog/services that may be routed: valid and not excluded. */
export function routableServiceNames(
  catalog: Record<string, unknown>,
  excluded: ReadonlySet<string>,
): string[] {
  return Object.keys(catalog)
    .filter((name) => isValidServiceName(name) && !excluded.has(name.toLowerCase()))
    .sort();
}

export function sameInstances(a: readonly Instance[], b: readonly Instance[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    return x.id === y.id && x.node === y.node && x.address === y.address && x.port === y.port && sameTags(x.tags, y.tags);
  });
}

/** Tags carry the routes a service declares (the gateway's routes/tags.ts): a tag change is a change. */
function sameTags(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Instances whose own checks pass but whose node's agent is unreachable
 * (serfHealth critical, nothing else failing). When an agent dies, every
 * service registered on it turns critical although the instances may well be
 * serving; the gateway falls back to these only when nothing passes at all,
 * with passive health and retries to weed out the ones really gone.
 */
export function agentLostInstances(entries: readonly HealthEntry[]): Instance[] {
  const lenient = entries.map((e) => ({
    ...e,
    Checks: (e.Checks ?? []).filter((c) => c.CheckID !== 'serfHealth'),
  }));
  const agentDown = (e: HealthEntry) => (e.Checks ?? []).some((c) => c.CheckID === 'serfHealth' && c.Status !== 'passing');
  return routableInstances(lenient.filter((_, i) => agentDown(entries[i]!)));
}
