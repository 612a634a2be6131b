// HAProxy as a second reference proxy: Debian's haproxy, one thread, connection reuse always.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { start, waitFor } from './proc.mjs';

export function haproxyVersion(bin) {
  try {
    return /version (\S+)/.exec(execFileSync(bin, ['-v'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * HAProxy defaults except: nbthread 1 (one core under test), http-reuse always (keep upstream
 * connections, like the gateway and nginx rows), the timeouts HAProxy warns about when absent,
 * and the /<service> prefix stripped as the gateway does. No `log` line: HAProxy logs nothing by
 * default (it only logs to syslog when told to), unlike nginx and the gateway.
 */
export function haproxyConfig({ port, service, upstreams, connections }) {
  return `global
  nbthread 1
  maxconn ${Math.max(4096, connections * 4)}
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend bench
  bind 127.0.0.1:${port}
  http-request set-path %[path,regsub(^/${service}/,/)]
  default_backend ${service}
backend ${service}
  balance roundrobin
${upstreams.map((p, i) => `  server s${i + 1} 127.0.0.1:${p}`).join('\n')}
`;
}

export async function startHaproxy({ bin, dir, port, service, upstreams, connections, cpu }) {
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(conf, haproxyConfig({ port, service, upstreams, connections }));
  // -db: stay in the foreground, one process, so its pid is the one to measure.
  const child = start('haproxy', bin, ['-db', '-f', conf], { cpu, logFile: path.join(dir, 'haproxy.log') });
  await waitFor('haproxy', async () => (await fetch(`http://127.0.0.1:${port}/`)).status > 0, { child });
  return { child, pids: () => [child.pid] };
}
