import type { Instance } from '@stack/shared';
import type { AttemptOutcome, HedgeEvent } from './observer.js';

/** Seconds, 1 ms to 10 s: a proxied request, and a Consul change on its way into the table. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const CODES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const;
export const OUTCOMES: readonly AttemptOutcome[] = ['ok', 'connect_failure', 'reset', 'timeout', 'error'];

export const codeIndex = (status: number) => (status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : 5);

/**
 * A service's counts. The hot path only adds to plain numbers here; prom-client
 * sees them at scrape time (its labelled inc/observe hash the label set on every
 * call, which cost a measurable share of a proxied request).
 */
export interface ServiceChildren {
  codes: number[];
  /** Per bucket of LATENCY_BUCKETS (not cumulative), then +Inf. */
  buckets: number[];
  sum: number;
  count: number;
  retries: number;
  retriesRefused: number;
  hedges: Record<HedgeEvent, number>;
  /** The table's instance list these counts were last matched to. */
  list: readonly Instance[] | null;
  /** By instance.key: the same id on two nodes is two rows. */
  instances: Map<string, InstanceChildren>;
}

export interface InstanceChildren {
  /** Its labels: instance_id (Consul's service id) and node. */
  id: string;
  node: string;
  outcomes: Record<AttemptOutcome, number>;
  ejections: number;
}

export const zeroOutcomes = (): Record<AttemptOutcome, number> => ({ ok: 0, connect_failure: 0, reset: 0, timeout: 0, error: 0 });

/** Index of the first bucket whose bound holds `v` (LATENCY_BUCKETS.length: +Inf). */
export function bucketOf(v: number): number {
  let i = 0;
  while (i < LATENCY_BUCKETS.length && v > LATENCY_BUCKETS[i]!) i++;
  return i;
}
