import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ID_BATCH, newRequestId, requestIdFrom } from './request-id.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request ids', () => {
  test('new ids are version 4 UUIDs, all different, across several batch refills', () => {
    const n = ID_BATCH * 5 + 3;
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const id = newRequestId();
      assert.match(id, UUID_V4);
      seen.add(id);
    }
    assert.equal(seen.size, n);
  });

  test('the random bits are spread: every hex digit shows up in every free position', () => {
    // 36 positions, 4 dashes, the version digit and the variant digit fixed; the other 30 take any of
    // 16 digits. With 2048 ids a digit missing from a position by chance has odds of about 2^-190.
    const ids = Array.from({ length: 2048 }, newRequestId);
    for (let p = 0; p < 36; p++) {
      if ([8, 13, 18, 23].includes(p)) continue;
      const digits = new Set(ids.map((id) => id[p]));
      if (p === 14) assert.deepEqual([...digits], ['4']);
      else if (p === 19) assert.deepEqual([...digits].sort(), ['8', '9', 'a', 'b']);
      else assert.equal(digits.size, 16, `position ${p}`);
    }
  });

  test("a caller's sane id is kept; a missing or unsafe one is replaced by a new UUID", () => {
    assert.equal(requestIdFrom('abc-123_x.y:z'), 'abc-123_x.y:z');
    for (const bad of [undefined, '', 'a b', 'x'.repeat(129), 'id\r\nx-evil: 1', 'é']) assert.match(requestIdFrom(bad), UUID_V4);
  });
});
