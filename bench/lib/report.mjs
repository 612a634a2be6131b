// Medians of the rounds and the markdown tables printed at the end.

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

const MB = 1024 * 1024;

/** One row's medians and totals over its measured rounds. */
export function summarize(row) {
  const r = row.rounds;
  const sum = (k) => r.reduce((a, x) => a + (x[k] ?? 0), 0);
  const rss = r.map((x) => x.rssBytes).filter((x) => x > 0);
  // Growth: last measured round against the first reading (after the warm-up when there is one).
  const firstRss = row.warmupRssBytes || rss[0];
  const rssDelta = rss.length && firstRss ? rss[rss.length - 1] - firstRss : null;
  return {
    rps: median(r.map((x) => x.rps)),
    p50Ms: median(r.map((x) => x.p50Ms)),
    p99Ms: median(r.map((x) => x.p99Ms)),
    cpuUsPerReq: median(r.map((x) => x.cpuUsPerReq)),
    maxRssMb: rss.length ? Math.max(...rss) / MB : null,
    rssDeltaMb: rssDelta === null ? null : rssDelta / MB,
    // "Grew": more than 1 MB and 5 % over the run; a first-round bump is normal warm-up.
    rssGrew: rssDelta !== null && rssDelta > MB && rssDelta > 0.05 * firstRss,
    requests: sum('requests'),
    ok: sum('ok'),
    non2xx: sum('non2xx'),
    socketErrors: sum('socketErrors'),
    failedRounds: r.filter((x) => x.error).length, // wrk itself failed (e.g. connection refused)
  };
}

const fmt = (v, digits) => (v === null || v === undefined ? '–' : v.toFixed(digits));
const ratio = (v, ref) => (v === null || !ref ? '–' : `${(v / ref).toFixed(2)}×`);

export function table(rows) {
  const ref = rows.find((r) => r.id === 'nginx' && !r.failed)?.summary;
  const lines = [
    '| proxy | req/s | × nginx | p50 ms | p99 ms | CPU µs/req | × nginx CPU | max RSS MB | RSS Δ MB | errors |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|---|',
  ];
  for (const row of rows) {
    if (row.failed) {
      lines.push(`| ${row.label} | FAILED: ${row.failed.replaceAll('|', '/').split('\n')[0]} | | | | | | | | |`);
      continue;
    }
    const s = row.summary;
    const parts = [];
    if (s.non2xx) parts.push(`${s.non2xx} non-2xx`);
    if (s.socketErrors) parts.push(`${s.socketErrors} socket`);
    if (s.failedRounds) parts.push(`${s.failedRounds} round(s) failed`);
    const errs = parts.length ? `**${parts.join(', ')}**` : '0';
    const grew = s.rssGrew ? ' ↑' : '';
    lines.push(
      `| ${row.label} | ${fmt(s.rps, 0)} | ${ratio(s.rps, ref?.rps)} | ${fmt(s.p50Ms, 2)} | ${fmt(s.p99Ms, 2)} | ` +
        `${fmt(s.cpuUsPerReq, 1)} | ${ratio(s.cpuUsPerReq, ref?.cpuUsPerReq)} | ${fmt(s.maxRssMb, 1)} | ` +
        `${s.rssDeltaMb === null ? '–' : (s.rssDeltaMb >= 0 ? '+' : '') + s.rssDeltaMb.toFixed(1)}${grew} | ${errs} |`,
    );
  }
  return lines.join('\n');
}

export function header(c) {
  const nodes = Object.entries(c.node).map(([k, v]) => `${k} → ${v}`).join(', ');
  return [
    `## Proxy benchmark, ${c.startedAt}`,
    '',
    `- machine: ${c.cores} cores (${c.cpuModel}), ${c.kernel}; load average at start ${c.loadavg}`,
    `- pinning: ${c.pinning}`,
    `- node: ${nodes}`,
    `- ${c.versions.nginx ? `nginx ${c.versions.nginx} (1 worker, access_log on)` : 'nginx not run'}, ` +
      `${c.versions.haproxy ? `haproxy ${c.versions.haproxy} (1 thread, no log)` : 'haproxy not run'}, ` +
      `gateway: shipped defaults (access log off, ACCESS_LOG=true turns it on; node flags of the image's CMD: ${c.gatewayNodeFlags?.join(' ') || 'none'}), wrk ${c.versions.wrk}, ` +
      `${c.versions.consul ? `consul ${c.versions.consul}` : 'no consul'}`,
    `- load: wrk -t1 -c${c.connections}, ${c.rounds} round(s) × ${c.duration} s per row, rows interleaved ` +
      `(order rotates each round), warm-up ${c.warmup ? `${c.warmup} s per row, discarded` : 'none'}; ` +
      'medians of the rounds',
    '- CPU µs/req: utime+stime of the proxy process(es) over a round / requests completed in it. ' +
      'RSS Δ: last round against the first reading (↑ = grew > 5 %). direct has no proxy, so no CPU/RSS.',
  ].join('\n');
}
