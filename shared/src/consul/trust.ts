import type { QueryMeta } from './meta.js';

/**
 * Whether an answer may take something away (an instance, a service).
 * Reads use ?stale so any server answers, also without a leader; Consul says
 * such reads are "generally consistent to within 50 ms of the leader" but
 * "can be arbitrarily stale", and reports how stale in X-Consul-LastContact
 * and X-Consul-KnownLeader. An answer older than one already applied (its
 * index went back: another, lagging server answered, or a snapshot was
 * restored) shows a past state. Such answers may add, but a removal from them
 * waits for a read from the leader (no ?stale) to confirm it.
 *
 * Returns why the answer is not trusted for removals, or null when it is.
 */
export function distrust(
  meta: Pick<QueryMeta, 'index' | 'knownLeader' | 'lastContactMs' | 'fresh'>,
  /** Highest index already applied from this endpoint (0n: none). */
  seen: bigint,
  staleAfterMs: number,
): string | null {
  if (meta.fresh) return null; // the leader's own view: the most current there is
  if (!meta.knownLeader) return 'the answering server knows no leader';
  if (meta.lastContactMs > staleAfterMs)
    return `the answering server last heard from the leader ${meta.lastContactMs} ms ago`;
  if (meta.index < seen) return `index went back from ${seen} to ${meta.index}`;
  return null;
}
