import type { Instance } from '@stack/shared';
import type { ErrorCode } from '../proxy/errors.js';

/** How one attempt at an instance ended, as far as the instance is concerned. */
export type AttemptOutcome = 'ok' | 'connect_failure' | 'reset' | 'timeout' | 'error';

/** What became of a failed attempt: no retry possible, retried, or a retry the retry budget refused. */
export type RetryVerdict = 'none' | 'retried' | 'refused';

/**
 * One attempt, as the proxy reports it. The proxy's own attempt object
 * implements it, so reporting allocates nothing.
 */
export interface AttemptReport {
  readonly inst: Instance;
  readonly outcome: AttemptOutcome;
  /** The instance's status for 'ok'; 0 otherwise. */
  readonly status: number;
  /** From the attempt's dispatch to its response headers or its failure. */
  readonly ms: number;
  readonly retry: RetryVerdict;
  /** This failure ejected the instance (outlier.ts). */
  readonly ejected: boolean;
}

/**
 * Sees every proxied request once and every attempt once (metrics.ts,
 * live-stats.ts). Called on the hot path: implementations must be O(1) and
 * allocation-light, and must not throw.
 */
export interface ProxyObserver {
  /**
   * A request is over. `service`: the name from the path, or null when the
   * request was refused before one was read (a raw name: collapse names not in
   * the table). `status`: what the client got (499: it left). `ms`: since the
   * proxy received it. `refused`: the gateway's own error code when it
   * answered without trying any instance (unknown_service, overloaded, ...).
   */
  request(service: string | null, status: number, ms: number, refused: ErrorCode | null): void;
  /**
   * An attempt's outcome is known: response headers arrived ('ok'), or it
   * failed. Attempts the client ended (it left, its body failed) are not
   * reported: they say nothing about the instance.
   */
  attempt(service: string, a: AttemptReport): void;
  /**
   * A hedge (a second attempt after the per-try timeout, hedge.ts): 'sent';
   * 'won' when its headers came first; 'refused' when the retry budget had
   * none left.
   */
  hedge?(service: string, event: HedgeEvent): void;
}

export type HedgeEvent = 'sent' | 'won' | 'refused';

/** Several observers as one (three in practice: metrics, live stats and the per-try budget). */
export function observers(...list: ProxyObserver[]): ProxyObserver {
  if (list.length === 1) return list[0]!;
  return {
    request(service, status, ms, refused) {
      for (let i = 0; i < list.length; i++) list[i]!.request(service, status, ms, refused);
    },
    attempt(service, a) {
      for (let i = 0; i < list.length; i++) list[i]!.attempt(service, a);
    },
    hedge(service, event) {
      for (let i = 0; i < list.length; i++) list[i]!.hedge?.(service, event);
    },
  };
}
