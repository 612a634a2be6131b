import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readmeMap } from '../lib/readme.js';

// The README's map is how a newcomer finds things: every file it names exists
// where it says, and every product file of a source folder it lists is named.
const root = new URL('../..', import.meta.url).pathname;
const product = (dir: string) =>
  readdirSync(join(root, dir)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'));

const map = readmeMap();
const sources = map.filter((e) => /\/src\/$|\/src\/[\w-]+\/$/.test(e.folder));

test('the map lists the source folders', () => assert.ok(sources.length >= 10, sources.map((e) => e.folder).join(' ')));

for (const { folder, text } of sources) {
  test(`${folder}: the files it names exist, and it names every product file there`, () => {
    assert.ok(existsSync(join(root, folder)), `${folder} does not exist`);
    const named = new Set([...text.matchAll(/([\w.-]+\.ts)\b/g)].map((m) => m[1]!));
    for (const f of named) assert.ok(existsSync(join(root, folder, f)), `${folder}${f} is named but does not exist`);
    const missing = product(folder).filter((f) => !named.has(f));
    assert.deepEqual(missing, [], `${folder}: not in the README's map`);
  });
}

test('every source folder with product files is in the map', () => {
  const listed = new Set(map.map((e) => e.folder));
  const dirs = ['shared/src', 'gateway/src', 'web-service/src', 'consul-acl/src'];
  const missing: string[] = [];
  const walk = (dir: string) => {
    if (product(dir).length > 0 && !listed.has(`${dir}/`) && !dir.includes('/ui')) missing.push(dir);
    for (const d of readdirSync(join(root, dir), { withFileTypes: true })) if (d.isDirectory()) walk(`${dir}/${d.name}`);
  };
  dirs.forEach(walk);
  assert.deepEqual(missing, []);
});

test('every relative link in README.md and docs/*.md resolves (npm run docs:links)', () => {
  const r = spawnSync(process.execPath, [join(root, 'scripts/check-links.mjs')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
});
