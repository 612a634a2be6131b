// ESTABLISHED TCP connections to a local port, read from /proc (Linux): how many belong to one
// process (matched by socket inode) and how many there are in all. Used by the discovery-at-scale
// script and the integration test that bounds the gateway's connections to its Consul agent.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** @param {number | 'self'} pid @param {number} port @returns {{ mine: number, all: number }} */
export function connectionsTo(pid, port) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      /* fd closed meanwhile */
    }
  }
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let mine = 0;
  let all = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '01') continue; // 01: ESTABLISHED
      if (!f[2].endsWith(hexPort)) continue; // the remote end is the port
      all += 1;
      if (inodes.has(f[9])) mine += 1;
    }
  }
  return { mine, all };
}
