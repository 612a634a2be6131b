// Installs a missing Debian package (wrk, nginx-light, haproxy) with apt-get.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { which } from './proc.mjs';

/**
 * Returns the path of `bin`, installing `pkg` first when it is missing. Waits up to 5 min for
 * the dpkg lock (another apt may be running). Throws with the tail of apt's output on failure.
 */
export function ensureBinary(bin, pkg, say) {
  const found = which(bin);
  if (found) return found;
  if (process.getuid?.() !== 0) throw new Error(`${bin} not found; install it: sudo apt-get install -y ${pkg}`);
  say(`${bin} not found: apt-get install ${pkg}`);
  const log = path.join(os.tmpdir(), `consul-stack-bench-apt-${pkg}.log`);
  const apt = (...args) =>
    spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=300', ...args], {
      // A service the package would start is not wanted here (and policy-rc.d usually forbids it anyway).
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', fs.openSync(log, 'a'), fs.openSync(log, 'a')],
      timeout: 15 * 60_000,
    }).status;
  let status = apt('install', '-y', '-q', '--no-install-recommends', pkg);
  if (status !== 0) {
    // Stale package lists are the usual cause: refresh once and retry.
    apt('update', '-q');
    status = apt('install', '-y', '-q', '--no-install-recommends', pkg);
  }
  const now = which(bin);
  if (status !== 0 || !now) {
    const tail = fs.readFileSync(log, 'utf8').trim().split('\n').slice(-8).join('\n');
    throw new Error(`apt-get install ${pkg} failed (log ${log}):\n${tail}`);
  }
  return now;
}
