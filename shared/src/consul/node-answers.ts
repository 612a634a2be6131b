import { type NodeAnswer, type NodeService, nodeServices } from './changes.js';
import { changedMembers, objectMembers } from './json-members.js';

/**
 * Each node's last answer to the node scan (/v1/catalog/node/<node>), kept as
 * bytes with the instances it held, so that the next answer is not parsed
 * whole: one that comes back the same (every node a change was not on) is not
 * parsed at all, and one with a few registrations changed has only those
 * parsed (json-members.ts). What services() returns is what nodeServices()
 * of the parsed answer would return; only the work differs. A big node's
 * answer parsed on every catalog move was most of the garbage discovery made.
 */
export class NodeAnswers {
  #last = new Map<string, { text: Buffer; members: number[]; byKey: Map<string, NodeService>; found: NodeService[] }>();

  /** The instances in `text`, `node`'s answer. Throws when it is not JSON (the caller's read failed). */
  services(node: string, text: Buffer): NodeService[] {
    const members = servicesMembers(text);
    const last = this.#last.get(node);
    if (members && last) {
      const differ = changedMembers(last.text, last.members, text, members);
      if (!differ) {
        last.text = text;
        return last.found;
      }
      const before = parseObject(differ.before);
      const after = parseObject(differ.after);
      if (before && after) {
        for (const key of Object.keys(before)) last.byKey.delete(key);
        for (const [key, s] of Object.entries(after)) {
          const [found] = nodeServices(node, { Services: { [key]: s } } as NodeAnswer);
          if (found) last.byKey.set(key, found);
        }
        Object.assign(last, { text, members, found: [...last.byKey.values()] });
        return last.found;
      }
    }
    const body = JSON.parse(text.toString('utf8')) as NodeAnswer | null;
    const byKey = new Map<string, NodeService>();
    for (const [key, s] of Object.entries(body?.Services ?? {})) {
      const [found] = nodeServices(node, { Services: { [key]: s } });
      if (found) byKey.set(key, found);
    }
    const found = [...byKey.values()];
    if (members) this.#last.set(node, { text, members, byKey, found });
    else this.#last.delete(node);
    return found;
  }

  /** Forgets the nodes not in `nodes` (gone from the node list). */
  keepOnly(nodes: ReadonlySet<string>): void {
    for (const node of this.#last.keys()) if (!nodes.has(node)) this.#last.delete(node);
  }
}

const SERVICES = Buffer.from('"Services"');

/**
 * Where the members of a node answer's Services object are, in the whole
 * text (objectMembers' form). Undefined unless the text is an object whose
 * Services is an object or null (none then).
 */
export function servicesMembers(text: Buffer): number[] | undefined {
  const top = objectMembers(text);
  if (!top) return undefined;
  for (let k = 0; k < top.length; k += 2) {
    const start = top[k]!;
    const end = top[k + 1]!;
    if (!text.subarray(start, start + SERVICES.length).equals(SERVICES)) continue;
    let v = start + SERVICES.length;
    while (v < end && text[v] !== 0x3a) v++; // the colon
    v++;
    while (v < end && (text[v] === 0x20 || text[v] === 0x0a || text[v] === 0x0d || text[v] === 0x09)) v++;
    if (text.subarray(v, end).toString() === 'null') return [];
    const inner = objectMembers(text.subarray(v, end));
    return inner?.map((offset) => offset + v);
  }
  return undefined;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
