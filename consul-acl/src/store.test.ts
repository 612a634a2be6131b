import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileTokenStore } from './store.js';

// On a real directory. Owners are "-" (null: the writer's uid), so this runs without root; the
// hand-over to each reader's uid is checked on the compose stack (test/e2e/security.test.ts reads
// each token as its service's user).
const root = mkdtempSync(join(tmpdir(), 'acl-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
const store = (dir: string) => new FileTokenStore(join(root, dir), new Map([['management', null], ['gateway', null]]));

test('FileTokenStore: writes <root>/<role>/token, mode 0440, with no temporary file left', () => {
  const s = store('write');
  s.write('gateway', 'f3b2c6e0-0000-4000-8000-000000000001');
  assert.equal(s.path('gateway'), join(root, 'write', 'gateway', 'token'));
  assert.equal(readFileSync(s.path('gateway'), 'utf8'), 'f3b2c6e0-0000-4000-8000-000000000001\n');
  assert.equal(statSync(s.path('gateway')).mode & 0o777, 0o440);
  assert.deepEqual(readdirSync(join(root, 'write', 'gateway')), ['token']);
  assert.equal(s.read('gateway'), 'f3b2c6e0-0000-4000-8000-000000000001');
});

test('FileTokenStore: a second write replaces the token (its file is read-only)', () => {
  const s = store('rewrite');
  s.write('management', 'old');
  s.write('management', 'new');
  assert.equal(s.read('management'), 'new');
  assert.deepEqual(readdirSync(join(root, 'rewrite', 'management')), ['token']);
});

test('FileTokenStore: a role it does not keep is neither written nor read', () => {
  const s = store('unlisted');
  s.write('registrator', 'secret');
  assert.throws(() => statSync(join(root, 'unlisted', 'registrator')), { code: 'ENOENT' });
  // even when a file is there
  mkdirSync(join(root, 'unlisted', 'registrator'), { recursive: true });
  writeFileSync(join(root, 'unlisted', 'registrator', 'token'), 'secret\n');
  assert.equal(s.read('registrator'), undefined);
});

test('FileTokenStore: a missing or empty file reads as no token; other read errors are thrown', () => {
  const s = store('missing');
  assert.equal(s.read('gateway'), undefined);
  mkdirSync(join(root, 'missing', 'gateway'), { recursive: true });
  writeFileSync(join(root, 'missing', 'gateway', 'token'), ' \n');
  assert.equal(s.read('gateway'), undefined);
  // a directory where the file should be
  mkdirSync(join(root, 'missing', 'management', 'token'), { recursive: true });
  assert.throws(() => s.read('management'), { code: 'EISDIR' });
});
