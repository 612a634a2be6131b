/** What Consul said about its own state alongside an answer. */
export interface QueryMeta {
  agent: string;
  /** X-Consul-Index: the raft index of the answer (0 when absent or unreadable). */
  index: bigint;
  /** X-Consul-KnownLeader: false while the answering server knows no leader. */
  knownLeader: boolean;
  /** X-Consul-LastContact: ms since the answering server last heard from the leader. */
  lastContactMs: number;
  /** True when the answer came from a read without ?stale (the leader's view). */
  fresh: boolean;
  at: number;
}

export interface Response {
  headers: Record<string, string | string[] | undefined>;
}

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function readMeta(res: Response, agent: string, fresh = false): QueryMeta {
  let index = 0n;
  try {
    index = BigInt(header(res, 'x-consul-index') ?? '0');
  } catch {
    index = 0n;
  }
  const lastContact = Number(header(res, 'x-consul-lastcontact') ?? 0);
  return {
    agent,
    index: index < 0n ? 0n : index,
    knownLeader: header(res, 'x-consul-knownleader') !== 'false',
    lastContactMs: Number.isFinite(lastContact) && lastContact > 0 ? lastContact : 0,
    fresh,
    at: Date.now(),
  };
}
