import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import type { ConsulError, QueryMeta } from './agents.js';
import { ConsulStatus } from './health.js';

const meta = (m: Partial<QueryMeta> = {}): QueryMeta => ({ agent: 'http://a:8500', index: 10n, knownLeader: true, lastContactMs: 0, fresh: false, at: 0, ...m });
const err = (kind: ConsulError['kind'], status?: number): ConsulError => ({ kind, status, message: kind === 'denied' ? 'Permission denied' : 'socket hang up', retryable: kind !== 'denied', failover: kind === 'unreachable' });

type Step = (s: ConsulStatus) => void;
const cases: Array<[what: string, steps: Step[], reachable: boolean, knownLeader: boolean, reasons: string[]]> = [
  ['nothing heard yet', [], true, false, []],
  ['an answer', [(s) => s.answered(meta())], true, true, []],
  ['unreachable', [(s) => s.answered(meta()), (s) => s.failed(err('unreachable'), 'http://a:8500', 'catalog', 1)], false, true, ['consul unreachable']],
  ['unreachable, then an answer', [(s) => s.failed(err('unreachable'), 'a', 'catalog', 1), (s) => s.answered(meta())], true, true, []],
  ['no known leader', [(s) => s.answered(meta({ knownLeader: false }))], true, false, ['consul has no known leader']],
  ['a read from the leader failed: no leader', [(s) => s.answered(meta()), (s) => s.failed(err('no-leader', 500), 'a', 'service web (from the leader)', 1)], true, false, ['consul has no known leader']],
  ['stale answers', [(s) => s.answered(meta({ lastContactMs: 7000 }))], true, true, ['answers are 7000 ms stale']],
  ['a fresh read does not hide staleness', [(s) => s.answered(meta({ lastContactMs: 7000 })), (s) => s.answered(meta({ fresh: true }))], true, true, ['answers are 7000 ms stale']],
  ['403 on the catalog: reachable, misconfigured', [(s) => s.answered(meta()), (s) => s.failed(err('denied', 403), 'a', 'catalog', 1, true)], true, true, ['consul refuses the catalog read: 403 Permission denied']],
  ['403 on the catalog, then the catalog answers', [(s) => s.failed(err('denied', 403), 'a', 'catalog', 1, true), (s) => s.answered(meta(), 'catalog')], true, true, []],
  ['403 not tracked (a service: reported by service-sync instead)', [(s) => s.answered(meta()), (s) => s.failed(err('denied', 403), 'a', 'service x', 1)], true, true, []],
];

for (const [what, steps, reachable, knownLeader, reasons] of cases) {
  test(`ConsulStatus: ${what}`, () => {
    const s = new ConsulStatus(pino({ level: 'silent' }), 5000);
    for (const step of steps) step(s);
    const st = s.state();
    assert.deepEqual([st.reachable, st.knownLeader, st.reasons, st.degraded], [reachable, knownLeader, reasons, reasons.length > 0]);
  });
}

test('ConsulStatus: extra reasons count as degraded; lastError names the agent', () => {
  const s = new ConsulStatus(pino({ level: 'silent' }), 5000);
  s.failed(err('unreachable'), 'http://b:8500', 'catalog', 1);
  s.answered(meta());
  const st = s.state(['holding last table: consul suddenly returned no services']);
  assert.equal(st.degraded, true);
  assert.equal(st.lastError, 'http://b:8500: socket hang up');
});
