// What wrk is pointed at: the upstream sets, and each row's proxy in front of them.
import fs from 'node:fs';
import path from 'node:path';
import { startHaproxy } from './haproxy.mjs';
import { startNginx } from './nginx.mjs';
import { freePort, get, start, waitFor } from './proc.mjs';

export const SETS = {
  minimal: { service: 'bench-minimal', path: '/hello', label: '2 × bench/upstream.mjs (~300 B of JSON)' },
  web: { service: 'bench-web', path: '/', label: '2 × web-service/dist (GET /)' },
};

/** Two upstream processes of a set, on `cpu`, answering 200 on the set's path. */
export async function startUpstreams(set, { root, dir, cpu, consulAddr }) {
  const { service, path: reqPath } = SETS[set];
  const ports = [await freePort(), await freePort()];
  const children = ports.map((port, i) => {
    const logFile = path.join(dir, `${set}-upstream-${i + 1}.log`);
    if (set === 'minimal') return start(`upstream-${i + 1}`, process.execPath, [path.join(root, 'bench/upstream.mjs'), String(port)], { cpu, logFile });
    // The web image's env (NODE_ENV=production) plus what an instance needs; its request log is at
    // debug level, so the default LOG_LEVEL (info) does not log per request.
    const env = {
      NODE_ENV: 'production',
      PORT: String(port),
      SERVICE_NAME: service,
      SERVICE_ADDRESS: '127.0.0.1',
      CONSUL_HTTP_ADDR: consulAddr ?? '127.0.0.1:8500', // only used by /call, which the bench never hits
    };
    return start(`web-${i + 1}`, process.execPath, [path.join(root, 'web-service/dist/index.js')], { cpu, env, cwd: root, logFile });
  });
  await Promise.all(
    ports.map((port, i) =>
      waitFor(`${set} upstream ${port}`, async () => (await get(`http://127.0.0.1:${port}${reqPath}`)).status === 200, { child: children[i] }),
    ),
  );
  return { service, reqPath, ports, children };
}

/**
 * Starts the proxy of `row` in front of `ups` on `cpu`; resolves { url, pids(), children } once a
 * request through it answers 200. `pids()` is null for direct (nothing between wrk and upstream).
 */
export async function startTarget(row, ups, ctx) {
  const { service, reqPath, ports } = ups;
  if (row.family === 'direct') return { url: `http://127.0.0.1:${ports[0]}${reqPath}`, pids: null, children: [] };
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/${service}${reqPath}`;
  const dir = path.join(ctx.dir, `${ctx.set}-${row.id}`);
  const common = { dir, port, service, upstreams: ports, connections: ctx.connections, cpu: ctx.cpu };
  let t;
  if (row.family === 'nginx') t = await startNginx({ bin: ctx.bins.nginx, ...common, gatewayHeaders: row.gatewayHeaders });
  else if (row.family === 'haproxy') t = await startHaproxy({ bin: ctx.bins.haproxy, ...common });
  else if (row.family === 'raw') {
    const args = [path.join(ctx.root, 'bench/raw-proxy.mjs'), ...(row.gatewayHeaders ? ['--gateway-headers'] : []), ...(row.client ? [`--client=${row.client}`] : []), String(port), ...ports.map(String)];
    const child = start(row.id, ctx.nodes[row.node], args, { cpu: ctx.cpu, cwd: ctx.root, logFile: `${dir}.log` });
    t = { child, pids: () => [child.pid] };
  } else if (row.family === 'gateway') {
    // Shipped defaults: only the port and the Consul agent, plus NODE_ENV=production as the image sets it.
    const env = { NODE_ENV: 'production', PORT: String(port), CONSUL_HTTP_ADDR: ctx.consul.addr, ...row.env };
    const root = row.root ? path.resolve(row.root) : ctx.root;
    const child = start(row.id, ctx.nodes[row.node], [...imageNodeFlags(root), path.join(root, 'gateway/dist/index.js')], {
      cpu: ctx.cpu, cwd: root, env, logFile: `${dir}.log`,
    });
    // Routed only once the gateway's table (fed by Consul) lists both instances.
    const what = `${row.id}: GET /_gateway/services never listed ${service} on ports ${ports.join(' and ')} (the gateway did not route)`;
    await waitFor(what, async () => {
      const table = JSON.parse((await get(`http://127.0.0.1:${port}/_gateway/services`)).text);
      const seen = (table.services?.[service] ?? []).map((i) => i.port);
      return ports.every((p) => seen.includes(p));
    }, { child, timeoutMs: 30_000 });
    t = { child, pids: () => [child.pid] };
  }
  await waitFor(`${row.id} answering 200`, async () => (await get(url)).status === 200, { child: t.child });
  return { url, pids: t.pids, children: [t.child] };
}

/**
 * The node flags the gateway image starts with (its Dockerfile's CMD, e.g. `--max-semi-space-size=8`):
 * shipped defaults include them. A checkout whose CMD has none (a baseline) runs without.
 */
export function imageNodeFlags(root) {
  const dockerfile = fs.readFileSync(path.join(root, 'gateway/Dockerfile'), 'utf8');
  const cmd = dockerfile.split('\n').filter((l) => l.startsWith('CMD [')).at(-1);
  if (!cmd) throw new Error(`${root}/gateway/Dockerfile has no CMD ["node", ...] line`);
  const argv = JSON.parse(cmd.slice('CMD '.length));
  if (argv[0] !== 'node' || argv.at(-1) !== 'gateway/dist/index.js') throw new Error(`unexpected gateway CMD: ${cmd}`);
  return argv.slice(1, -1);
}

/** Which upstream ports answered 8 requests through url (both expected for a proxy row). */
export async function upstreamsSeen(url) {
  const seen = new Set();
  for (let i = 0; i < 8; i++) {
    try {
      const port = JSON.parse((await get(url)).text).port;
      if (port) seen.add(port);
    } catch {}
  }
  return [...seen].sort();
}
