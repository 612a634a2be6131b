// Command line of `npm run bench`.
import { parseArgs } from 'node:util';

export const USAGE = `usage: npm run bench [-- options]      (or: node bench/run.mjs [options])

Compares, on the same upstreams and the same load: direct (no proxy), nginx, HAProxy, the gateway
(gateway/dist, shipped defaults, routing from a real Consul) and a raw node:http+undici proxy.
Proxy on core 0, wrk + upstreams + Consul on core 1. Prints a markdown table per upstream set and
writes bench/results/latest.json. Needs root for apt-get when wrk/nginx-light are missing.

  --rounds=N          measured rounds per row, interleaved across rows   (default 5)
  --duration=S        seconds per round                                  (default 6)
  --warmup=S          discarded warm-up per row before the rounds, 0=none (default min(5, duration))
  --connections=C     wrk connections (wrk runs 1 thread)                (default 50)
  --set=minimal|web|both   upstreams: 2 minimal Node servers, 2 web-service instances (default both)
  --node=24|20|both   Node for the gateway and raw rows: 24 = the images' Node (fetched once with
                      npm pack into ~/.cache/consul-stack-bench), 20 = this Node  (default both)
  --only=ROWS         comma list of rows: direct, nginx, haproxy, gateway, raw, or one row such
                      as nginx-headers / raw-headers (nginx / the raw proxy setting the same
                      headers as the gateway), raw-own (the raw proxy on the gateway's own
                      upstream client, same headers), gateway-24, raw-20    (default all)
  --haproxy           include HAProxy, installing it with apt-get when missing
  --no-haproxy        leave HAProxy out (by default it is included only when already installed)
  --baseline=DIR      add rows for another checkout's built gateway (DIR/gateway/dist/index.js,
                      e.g. a git worktree of main) to compare a change in the same run
  --access-log        add a row for the gateway with ACCESS_LOG=true (on the images' Node), to
                      show what its access log costs
  --smoke             quick proof that the bench works (CI): 1 round of 2 s, 10 connections, no
                      warm-up, minimal set, node 20; explicit options still win
  -h, --help          this text

Exits non-zero when a row fails to start, a row has zero successful requests, or the gateway
never routes to the upstreams. Absolute numbers depend on the machine: compare rows, not runs.`;

export function parseOptions(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      set: { type: 'string' },
      node: { type: 'string' },
      only: { type: 'string' },
      haproxy: { type: 'boolean' },
      'no-haproxy': { type: 'boolean' },
      smoke: { type: 'boolean' },
      baseline: { type: 'string' },
      'access-log': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { help: true };
  if (positionals.length) throw new Error(`unexpected argument: ${positionals[0]}`);
  const smoke = Boolean(values.smoke);
  const int = (name, def, min, max) => {
    if (values[name] === undefined) return def;
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
    return n;
  };
  const oneOf = (name, def, allowed) => {
    const v = values[name] ?? def;
    if (!allowed.includes(v)) throw new Error(`--${name} must be one of ${allowed.join(', ')}`);
    return v;
  };
  // 5 rounds of 6 s rather than 3 of 10: about the same time, and a median that two noisy rounds cannot move.
  const duration = int('duration', smoke ? 2 : 6, 1, 3600);
  const opts = {
    smoke,
    rounds: int('rounds', smoke ? 1 : 5, 1, 100),
    duration,
    warmup: int('warmup', smoke ? 0 : Math.min(5, duration), 0, 3600),
    connections: int('connections', smoke ? 10 : 50, 1, 10_000),
    set: oneOf('set', smoke ? 'minimal' : 'both', ['minimal', 'web', 'both']),
    node: oneOf('node', smoke ? '20' : 'both', ['24', '20', 'both']),
    only: null,
    haproxy: values['no-haproxy'] ? 'no' : values.haproxy ? 'yes' : 'if-installed',
    baseline: values.baseline ?? null,
    accessLog: Boolean(values['access-log']),
  };
  if (values.only !== undefined) {
    opts.only = values.only.split(',').map((s) => s.trim()).filter(Boolean);
    for (const o of opts.only) {
      if (!ROW_NAMES.has(o)) throw new Error(`--only: unknown row "${o}" (rows: ${[...ROW_NAMES].join(', ')})`);
    }
    // Naming haproxy explicitly asks for it.
    if (opts.only.includes('haproxy') && opts.haproxy === 'if-installed') opts.haproxy = 'yes';
  }
  return opts;
}

/**
 * The rows to run, in table order; `nodes` are the Node majors available ('24', '20'). `--only`
 * names a row by its id, its family or its group (every node's row of one kind).
 */
export function planRows(opts, { nodes, haproxy }) {
  const rows = [
    { id: 'direct', family: 'direct', label: 'direct (no proxy)' },
    { id: 'nginx', family: 'nginx', label: 'nginx' },
    { id: 'nginx-headers', family: 'nginx', group: 'nginx-headers', label: "nginx, the gateway's headers", gatewayHeaders: true },
  ];
  if (haproxy) rows.push({ id: 'haproxy', family: 'haproxy', label: 'haproxy' });
  for (const n of nodes) rows.push({ id: `gateway-${n}`, family: 'gateway', node: n, label: `gateway (node ${n})` });
  if (opts.accessLog && nodes.length) {
    const n = nodes.includes('24') ? '24' : nodes[0];
    rows.push({ id: `gateway-log-${n}`, family: 'gateway', node: n, label: `gateway, ACCESS_LOG=true (node ${n})`, env: { ACCESS_LOG: 'true' } });
  }
  if (opts.baseline) {
    for (const n of nodes) rows.push({ id: `baseline-${n}`, family: 'gateway', group: 'baseline', node: n, label: `baseline gateway (node ${n})`, root: opts.baseline });
  }
  for (const n of nodes) rows.push({ id: `raw-${n}`, family: 'raw', node: n, label: `raw node+undici (node ${n})` });
  for (const n of nodes)
    rows.push({ id: `raw-headers-${n}`, family: 'raw', group: 'raw-headers', node: n, label: `raw node+undici, the gateway's headers (node ${n})`, gatewayHeaders: true });
  // The floor under the gateway: node:http and the gateway's own upstream client, the same headers.
  for (const n of nodes)
    rows.push({ id: `raw-own-${n}`, family: 'raw', group: 'raw-own', node: n, label: `raw node+the gateway's client, its headers (node ${n})`, gatewayHeaders: true, client: 'gateway' });
  if (!opts.only) return rows;
  return rows.filter((r) => opts.only.includes(r.id) || opts.only.includes(r.family) || opts.only.includes(r.group));
}

/** Every name --only accepts: each possible row's id, family and group. */
const ROW_NAMES = new Set(
  planRows({ only: null, baseline: '-', accessLog: true }, { nodes: ['24', '20'], haproxy: true }).flatMap((r) => [r.family, r.group, r.id].filter(Boolean)),
);
