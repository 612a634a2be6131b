import { test } from 'node:test';
import assert from 'node:assert/strict';
import { distrust } from './trust.js';

const base = { index: 100n, knownLeader: true, lastContactMs: 0, fresh: false };

const cases: Array<[what: string, meta: Partial<typeof base>, seen: bigint, trusted: boolean, why?: RegExp]> = [
  ['a current answer from a server in touch with the leader', {}, 90n, true],
  ['the same index again (a blocking query timing out)', {}, 100n, true],
  ['first answer ever', { index: 5n }, 0n, true],
  ['last contact at the threshold', { lastContactMs: 5000 }, 90n, true],
  ['last contact above the threshold', { lastContactMs: 5001 }, 90n, false, /5001 ms ago/],
  ['no known leader', { knownLeader: false }, 90n, false, /no leader/],
  ['index went back (lagging server or restored snapshot)', { index: 80n }, 90n, false, /went back from 90 to 80/],
  ['index went back, but from the leader', { index: 80n, fresh: true }, 90n, true],
  ['no leader, but a fresh read (it would have failed otherwise)', { knownLeader: false, fresh: true }, 90n, true],
  ['very stale but fresh', { lastContactMs: 60_000, fresh: true }, 90n, true],
];

for (const [what, meta, seen, trusted, why] of cases) {
  test(`distrust: ${what} → ${trusted ? 'trusted' : 'needs confirmation'}`, () => {
    const r = distrust({ ...base, ...meta }, seen, 5000);
    if (trusted) assert.equal(r, null);
    else assert.match(r ?? '', why!);
  });
}
