import { viaCount } from '@stack/shared';
import { HttpError } from './http.js';

/**
 * Which /call requests are refused before any discovery or network work, so
 * one client request can't fan out into a storm:
 *
 * - never to `consul`, the gateway, names in CALL_DENY, or (unless allowed)
 *   this service itself: 403 call_forbidden. The gateway routes /<svc>/... to
 *   any service, so a call through it could come back to /call, and so on.
 * - never from a request that already made maxDepth /call hops, counted as the
 *   Via entries marked "(call)" that every /call adds (any service's): 508
 *   loop_detected. With the default 1, a client request makes at most one
 *   /call hop (two upstream attempts when the first can't connect), however
 *   the path nests or services are named.
 */
export interface CallPolicyOptions {
  self: string;
  gateway: string;
  deny: readonly string[];
  allowSelf: boolean;
  maxDepth: number;
}

/** The mark /call puts in its Via entry, e.g. "1.1 service-web (call)". */
export const CALL_MARK = 'call';

export type CallPolicy = (service: string, via: string | undefined) => void;

export function callPolicy(o: CallPolicyOptions): CallPolicy {
  const self = o.self.toLowerCase();
  const gateway = o.gateway.toLowerCase();
  const deny = new Set(o.deny.map((n) => n.toLowerCase()));
  return (service, via) => {
    const hops = viaCount(via, CALL_MARK); // Infinity when Via is too long to read
    if (hops >= o.maxDepth) {
      const why = Number.isFinite(hops)
        ? `this request already made ${hops} /call hop(s); at most ${o.maxDepth} allowed (CALL_MAX_DEPTH)`
        : 'the Via header is too long to trace this request; refused as a loop';
      throw new HttpError('loop_detected', why, { service, hops: Number.isFinite(hops) ? hops : null, maxDepth: o.maxDepth });
    }
    const name = service.toLowerCase();
    const reason =
      name === 'consul' ? `/call may not call consul (Consul's own API)`
      : name === gateway ? `/call may not call the gateway (${o.gateway}): a call through it can come back here`
      : name === self && !o.allowSelf ? `/call may not call this service (${o.self}) itself; CALL_ALLOW_SELF=true allows it`
      : deny.has(name) ? `${service} is in CALL_DENY`
      : undefined;
    if (reason) throw new HttpError('call_forbidden', reason, { service });
  };
}
