// nginx as the reference proxy: Debian's nginx-light, one worker, its own config in a temp dir.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { childPids } from './procstat.mjs';
import { start, trackPid, waitFor } from './proc.mjs';

export function nginxVersion(bin) {
  // `nginx -v` writes to stderr.
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  return /nginx\/(\S+)/.exec(`${r.stderr}${r.stdout}`)?.[1] ?? 'unknown';
}

/**
 * nginx defaults everywhere except what the comparison needs:
 * - worker_processes 1 (one core under test, like a single Node process);
 * - worker_connections raised only when the load needs more than its default 512
 *   (each client connection may hold one upstream connection too);
 * - an upstream block with keepalive 256 + HTTP/1.1 + empty Connection, so nginx reuses upstream
 *   connections as the gateway does (nginx's default is a new connection per request);
 * - `location /<service>/` strips the service prefix, as the gateway's routing does;
 * - access_log stays on (the default, combined format, to a file) because the gateway also logs
 *   every request at its default level; it is only moved into the temp dir.
 */
/**
 * What the gateway does to every request and answer, in nginx terms: the forwarded headers
 * rebuilt, a request id both ways, Via, and the answering instance named. With this, nginx does
 * the same job, not only the same proxying.
 */
const GATEWAY_HEADERS = `
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Request-Id $request_id;
      proxy_set_header Forwarded "";
      proxy_set_header Via "1.1 gateway";
      add_header X-Request-Id $request_id;
      add_header X-Upstream-Instance $upstream_addr;`;

export function nginxConfig({ dir, port, service, upstreams, connections, gatewayHeaders = false }) {
  const workerConnections = Math.max(512, connections * 2 + 64);
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections ${workerConnections}; }
http {
  access_log ${dir}/access.log;
  upstream ${service} {
${upstreams.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port};
    location /${service}/ {
      proxy_pass http://${service}/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";${gatewayHeaders ? GATEWAY_HEADERS : ''}
    }
  }
}
`;
}

/** Starts nginx (master + 1 worker); `pids()` gives both, for CPU and RSS. */
export async function startNginx({ bin, dir, port, service, upstreams, connections, cpu, gatewayHeaders }) {
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, nginxConfig({ dir, port, service, upstreams, connections, gatewayHeaders }));
  // -e: the error log before the config is read (else /var/log/nginx); -p: relative paths.
  const child = start('nginx', bin, ['-c', conf, '-p', dir, '-e', path.join(dir, 'error.log')], {
    cpu,
    logFile: path.join(dir, 'stdout.log'),
  });
  await waitFor('nginx', async () => (await fetch(`http://127.0.0.1:${port}/`)).status > 0, { child });
  const workers = await waitFor('nginx workers', () => {
    const w = childPids(child.pid);
    return w.length > 0 && w;
  }, { child });
  for (const w of workers) trackPid(w, 'nginx: worker');
  return { child, pids: () => [child.pid, ...childPids(child.pid)] };
}
