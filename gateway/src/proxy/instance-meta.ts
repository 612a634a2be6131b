import type { Instance } from '@stack/shared';
import { safeHeaderValue } from './headers.js';

/** What the proxy derives from an instance: worked out once per instance, not per request. */
export interface InstanceMeta {
  /** address:port, where the instance is (logs); its identity is instance.key. */
  upstream: string;
  /** The address as a URL host: an IPv6 one in brackets. */
  host: string;
  /** host:port, the upstream request's Host. */
  authority: string;
  /** The instance id as a header value that can never throw (safeHeaderValue). */
  headerId: string;
}

// A table's Instance objects are never changed, only replaced by the next
// table's, so an entry lives as long as its instance is in use and no longer.
const memo = new WeakMap<Instance, InstanceMeta>();

export function instanceMeta(i: Instance): InstanceMeta {
  let m = memo.get(i);
  if (m === undefined) {
    const host = i.address.includes(':') ? `[${i.address}]` : i.address;
    // Flattened once here: strings built once per instance, not per request.
    m = { upstream: `${i.address}:${i.port}`, host, authority: `${host}:${i.port}`, headerId: safeHeaderValue(i.id) };
    memo.set(i, m);
  }
  return m;
}
