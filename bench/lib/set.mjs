// One upstream set, start to finish: its two upstreams (registered in Consul), every row's proxy,
// the discarded warm-up, the interleaved measured rounds, then its processes stopped.
import fs from 'node:fs';
import path from 'node:path';
import { isStopping, liveChildren, logTail, sleep, stop } from './proc.mjs';
import { cpuSecondsOf, rssBytesOf } from './procstat.mjs';
import { summarize } from './report.mjs';
import { startTarget, startUpstreams, upstreamsSeen } from './targets.mjs';
import { runWrk } from './wrk.mjs';

/** Resolves the rows with their rounds and summary; pushes what went wrong onto `failures`. */
export async function runSet(set, rows, { root: ROOT, tmp, opts, say, bins, nodes, consul, cpu, loadCpu, failures }) {
  const before = new Set(liveChildren()); // Consul: it outlives the set
  const dir = path.join(tmp, set);
  fs.mkdirSync(dir);
  say(`${set}: starting upstreams`);
  const ups = await startUpstreams(set, { root: ROOT, dir, cpu: loadCpu, consulAddr: consul?.addr });
  const ids = [];
  if (consul) for (const p of ups.ports) ids.push(await consul.register(ups.service, p));

  const results = rows.map((r) => ({ ...r, failed: null, url: null, upstreamsSeen: [], warmupRssBytes: null, rounds: [] }));
  const targets = new Map();
  try {
    for (const r of results) {
      say(`${set}: starting ${r.label}`);
      try {
        const t = await startTarget(r, ups, { root: ROOT, dir, set, bins, nodes, consul, cpu, connections: opts.connections });
        targets.set(r.id, t);
        r.url = t.url;
        r.upstreamsSeen = await upstreamsSeen(t.url);
      } catch (err) {
        r.failed = err.message;
        failures.push(`${set}/${r.label}: ${err.message}`);
        say(`${set}: ${r.label} FAILED: ${err.message}`);
      }
    }
    const live = results.filter((r) => !r.failed);
    // A proxy that died mid-run fails its row, with the end of its log as the reason.
    const alive = (r, when) => {
      if (r.failed) return false;
      const dead = targets.get(r.id)?.children.find((c) => c.exitInfo);
      if (!dead) return true;
      r.failed = `${dead.label} exited ${JSON.stringify(dead.exitInfo)} ${when}`;
      failures.push(`${set}/${r.label}: ${r.failed}; its log ends:\n${logTail(dead)}`);
      say(`${set}: ${r.label} FAILED: ${r.failed}`);
      return false;
    };
    const wrk = (r, duration) => runWrk({ bin: bins.wrk, url: r.url, duration, connections: opts.connections, cpu: loadCpu });

    if (opts.warmup > 0) {
      for (const r of live) {
        if (isStopping()) throw new Error('interrupted');
        say(`${set}: warm-up ${r.label} (${opts.warmup} s, discarded)`);
        await wrk(r, opts.warmup).catch((err) => say(`${set}: warm-up ${r.label}: ${err.message}`));
        const pids = targets.get(r.id).pids?.();
        if (pids) r.warmupRssBytes = rssBytesOf(pids);
      }
    }

    for (let round = 0; round < opts.rounds; round++) {
      // Rotate the order each round so no row always runs first or last.
      const order = live.map((_, i) => live[(i + round) % live.length]);
      for (const r of order) {
        if (isStopping()) throw new Error('interrupted');
        if (!alive(r, `before round ${round + 1}`)) continue;
        if (consul) await consul.pass(ids);
        const pids = targets.get(r.id).pids?.() ?? null;
        const cpu0 = pids ? cpuSecondsOf(pids) : 0;
        let m;
        try {
          m = await wrk(r, opts.duration);
        } catch (err) {
          m = { requests: 0, ok: 0, rps: 0, p50Ms: null, p99Ms: null, non2xx: 0, socketErrors: 0, error: err.message };
        }
        const cpuS = pids ? cpuSecondsOf(targets.get(r.id).pids()) - cpu0 : null;
        const rec = {
          round: round + 1,
          rps: m.rps,
          p50Ms: m.p50Ms,
          p99Ms: m.p99Ms,
          requests: m.requests,
          ok: m.ok,
          non2xx: m.non2xx,
          socketErrors: m.socketErrors,
          socketDetail: m.socketDetail ?? null,
          cpuUsPerReq: pids && m.requests ? (cpuS * 1e6) / m.requests : null,
          rssBytes: pids ? rssBytesOf(targets.get(r.id).pids()) : null,
          error: m.error ?? null,
        };
        r.rounds.push(rec);
        say(
          `${set}: round ${round + 1}/${opts.rounds} ${r.label}: ${Math.round(rec.rps)} req/s, p99 ${rec.p99Ms ?? '–'} ms` +
            (rec.non2xx || rec.socketErrors ? `, ${rec.non2xx} non-2xx, ${rec.socketErrors} socket errors` : '') +
            (rec.error ? `, wrk error: ${rec.error}` : ''),
        );
        await sleep(300); // let the previous run's sockets close before the next row
      }
    }
    for (const r of results) {
      if (r.failed || !alive(r, 'after the last round')) continue;
      r.summary = summarize(r);
      if (r.summary.ok === 0) failures.push(`${set}/${r.label}: zero successful requests`);
    }
    return results;
  } finally {
    // Everything this set started, including a proxy whose start failed half-way.
    await Promise.all(liveChildren().filter((c) => !before.has(c)).map((c) => stop(c)));
    if (consul) await consul.deregister(ids);
  }
}
