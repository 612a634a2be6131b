// CPU time and memory of a process from /proc, for "CPU µs per request" and RSS.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

// utime/stime are in clock ticks (usually 100 per second).
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** Fields after "pid (comm) ": comm may contain spaces, so split after its last ')'. */
function statFields(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/** utime+stime of every thread of the process, in seconds (field 14 and 15 of /proc/pid/stat). */
export function cpuSeconds(pid) {
  const f = statFields(pid); // f[0] is field 3 (state)
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** Sum over pids; a pid that vanished counts as 0 (the caller notices it elsewhere). */
export function cpuSecondsOf(pids) {
  let total = 0;
  for (const pid of pids) {
    try {
      total += cpuSeconds(pid);
    } catch {}
  }
  return total;
}

/** Resident set size in bytes (VmRSS), summed over pids. */
export function rssBytesOf(pids) {
  let total = 0;
  for (const pid of pids) {
    try {
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {}
  }
  return total;
}

/** Direct children of pid (e.g. nginx workers), found by their parent pid. */
export function childPids(pid) {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (Number(statFields(name)[1]) === pid) out.push(Number(name));
    } catch {}
  }
  return out;
}
