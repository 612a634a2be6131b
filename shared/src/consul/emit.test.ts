import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { memoryLog } from '../../../test/lib/memory-log.js';
import { deliver, guard } from './emit.js';

test('guard: a throw is logged as a bug with the caller\'s fields, and the fallback is returned', () => {
  const mem = memoryLog();
  const out = guard(mem.log, 'applying a reconciliation answer', { service: 'web' }, () => {
    throw new Error('boom');
  }, false);
  assert.equal(out, false);
  assert.equal(mem.lines.length, 1);
  const l = mem.lines[0]!;
  assert.equal(l.level, 50);
  assert.equal(l.msg, 'bug: applying a reconciliation answer threw; consul is not at fault');
  assert.equal(l.service, 'web');
  assert.equal((l.err as { message: string }).message, 'boom');
  assert.equal(guard(mem.log, 'x', {}, () => true, false), true, 'no throw: the result');
  assert.equal(mem.lines.length, 1, 'and nothing logged');
});

test('deliver: a throwing listener is logged with the query and event; an unheard error is a warning', () => {
  const mem = memoryLog();
  const e = new EventEmitter();
  e.on('data', () => {
    throw new Error('listener bug');
  });
  deliver(e, mem.log, 'catalog', 'data', {});
  deliver(e, mem.log, 'catalog', 'error', { message: 'connect ECONNREFUSED' }, 'http://127.0.0.1:8500', 1);
  assert.deepEqual(
    mem.lines.map((l) => [l.level, l.msg, l.query, l.event ?? l.agent]),
    [
      [50, 'bug: a listener of the catalog query threw; consul is not at fault', 'catalog', 'data'],
      [40, 'consul query failed', 'catalog', 'http://127.0.0.1:8500'],
    ],
  );
});
