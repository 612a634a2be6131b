import type { Logger } from 'pino';
import { type ConsulAgents, describeConsulError, rawEndpoints, ReadError, readRaw } from './agents.js';
import { changedMembers, objectMembers } from './json-members.js';

/**
 * The agent's hint: which services the agent discovery talks to registered,
 * deregistered or changed since the last catalog move. Registrator registers
 * through its host's agent, which in the compose stack is the one discovery
 * talks to, so a change there is in that agent's own state
 * (/v1/agent/services) before Consul commits it. That read
 * is a guess that can save the node scan's wait: it is cheaper than a read
 * of the agent's node (with 2,000 instances on one node, 6-17 ms for the
 * answer against 18-22 ms for the node's and its parsing: scale-discovery.mjs's
 * agentServicesRead and agentNodeRead), and it names the service at once. Its answer is
 * compared with the last as bytes and only the registrations that differ are
 * parsed (json-members.ts): parsing all 2,000 cost 5 ms against 1 ms for the
 * comparison, and the collections after it were what held up the change's
 * own read (a traced run, docs/performance.md).
 * It never replaces the scan: a service it names is read like any other
 * (decided by its own answer), and the scan still reads every node, so what
 * the agent does not hold (catalog API writes, other nodes) is found as before.
 */

/** One local registration, as far as routing cares: its service and what a change to it would show. */
export interface AgentRegistration {
  /** The service name, lowercased (the table's key). */
  key: string;
  /** Address, port and tags: what a re-registration that matters changes. */
  digest: string;
}

/** A burst (an agent restarted, a deploy) names more than this: left to the node scan, which reads only what changed. */
export const HINT_MAX = 8;

interface AgentService {
  ID?: unknown;
  Service?: unknown;
  Address?: unknown;
  Port?: unknown;
  Tags?: unknown;
}

/** /v1/agent/services' answer as registrations by id (anything malformed is left out: the scan covers it). */
export function agentRegistrations(body: unknown): Map<string, AgentRegistration> {
  const out = new Map<string, AgentRegistration>();
  if (!body || typeof body !== 'object' || Array.isArray(body)) return out;
  for (const raw of Object.values(body as Record<string, AgentService | null>)) {
    if (!raw || typeof raw.ID !== 'string' || typeof raw.Service !== 'string' || raw.ID === '' || raw.Service === '') continue;
    const tags = Array.isArray(raw.Tags) ? raw.Tags.map(String).join('\u0000') : '';
    out.set(raw.ID, { key: raw.Service.toLowerCase(), digest: `${String(raw.Address ?? '')}\u0001${String(raw.Port ?? '')}\u0001${tags}` });
  }
  return out;
}

/**
 * The services whose local registrations differ between two answers: an id
 * added, gone, moved to another service, or with another address, port or
 * tags. Undefined when more than `max` differ (a burst, left to the scan).
 * Pure, for table-driven tests.
 */
export function agentChanges(
  before: ReadonlyMap<string, AgentRegistration>,
  after: ReadonlyMap<string, AgentRegistration>,
  max = HINT_MAX,
): Set<string> | undefined {
  const out = new Set<string>();
  for (const [id, a] of after) {
    const b = before.get(id);
    if (b?.digest === a.digest && b.key === a.key) continue;
    out.add(a.key);
    if (b) out.add(b.key);
  }
  for (const [id, b] of before) if (!after.has(id)) out.add(b.key);
  return out.size > max ? undefined : out;
}

/**
 * Reads the agent's registrations on each catalog move and names the services
 * that changed since the previous read; `baseline()` at start gives the first
 * move something to compare with. Reads run one after another, so each answer
 * is compared with the one before it. An agent that refuses the read (an old
 * ACL policy, a proxy in the way) is not asked again; one that does not answer
 * is asked on the next move, and the change compared with the last answer.
 */
export class AgentHint {
  /** The last answer, as bytes and where its members are. */
  #last: { text: Buffer; members: number[] } | undefined;
  #off = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly agents: ConsulAgents,
    private readonly log: Logger,
  ) {}

  /** Reads the registrations to compare the first move with. */
  async baseline(): Promise<void> {
    await this.changed();
  }

  /** The services that changed on the agent since the last answer (none on the first answer, on a burst, or when the read fails). */
  changed(): Promise<Set<string>> {
    const next = this.#queue.then(() => this.#read());
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #read(): Promise<Set<string>> {
    if (this.#off) return new Set();
    let text: Buffer;
    try {
      // An agent endpoint: answered from the agent's own state, so ?stale means nothing to it.
      ({ body: text } = await readRaw(this.agents, rawEndpoints.agentServices, true));
    } catch (err) {
      if (!(err instanceof ReadError)) throw err;
      if (!err.consul.retryable) {
        this.#off = true;
        this.log.info({ agent: err.agent, err: describeConsulError(err.consul) }, 'the agent refuses to list its services: changes are found by the node scan alone');
      }
      return new Set();
    }
    // Compared as bytes: only the members that differ are parsed (json-members.ts). An answer
    // that is not an object is no baseline: the next one is compared with the last good one.
    const members = objectMembers(text);
    if (!members) return new Set();
    const before = this.#last;
    this.#last = { text, members };
    const differ = before && changedMembers(before.text, before.members, text, members);
    if (!differ) return new Set();
    let b: Map<string, AgentRegistration>;
    let a: Map<string, AgentRegistration>;
    try {
      b = agentRegistrations(JSON.parse(differ.before));
      a = agentRegistrations(JSON.parse(differ.after));
    } catch {
      return new Set(); // a member that is not JSON: the scan covers whatever changed
    }
    return agentChanges(b, a) ?? new Set();
  }
}
