/** The gateway's hedge and attempt counters for one service, read from its /metrics. */
export interface HedgeCounts {
  /** gateway_hedges_total */
  sent: number;
  /** gateway_hedges_won_total */
  won: number;
  /** gateway_upstream_attempts_total, every instance still in the table and outcome (an instance that leaves takes its count along) */
  attempts: number;
  /** gateway_retries_total */
  retries: number;
  /** gateway_requests_total, every status class */
  requests: number;
}

export async function hedgeCounts(gatewayUrl: string, service = 'service-web'): Promise<HedgeCounts> {
  const text = await (await fetch(`${gatewayUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const sum = (name: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) && l.includes(`service="${service}"`))
      .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return { sent: sum('gateway_hedges_total'), won: sum('gateway_hedges_won_total'), attempts: sum('gateway_upstream_attempts_total'), retries: sum('gateway_retries_total'), requests: sum('gateway_requests_total') };
}

/** What happened between two readings: hedges, and extra attempts (hedges and retries) as a share of the requests. */
export function hedgeDelta(a: HedgeCounts, b: HedgeCounts) {
  const requests = b.requests - a.requests;
  const sent = b.sent - a.sent;
  const extra = sent + b.retries - a.retries;
  const pct = (n: number) => (requests > 0 ? Math.round((n / requests) * 10_000) / 100 : 0);
  return { requests, sent, won: b.won - a.won, extra, hedgePct: pct(sent), extraPct: pct(extra), text: `${sent} hedges (${pct(sent)} %), ${b.won - a.won} won; ${extra} extra attempts (${pct(extra)} %) for ${requests} requests` };
}
