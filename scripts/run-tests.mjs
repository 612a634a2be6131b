// Runs test suites with node's own runner. Node 20 does not expand globs in
// `node --test`, so the files are listed here.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const suites = {
  unit: { dirs: ['shared/src', 'gateway/src', 'web-service/src', 'test/lib'], concurrency: 2 },
  integration: { dirs: ['test/integration'], concurrency: 1 },
  e2e: { dirs: ['test/e2e'], concurrency: 1 },
};

function testFiles(dir) {
  let out = [];
  let entries;
  try {
    entries = readdirSync(join(root, dir));
  } catch {
    return out;
  }
  for (const name of entries.sort()) {
    const rel = join(dir, name);
    if (statSync(join(root, rel)).isDirectory()) out = out.concat(testFiles(rel));
    else if (name.endsWith('.test.ts')) out.push(rel);
  }
  return out;
}

const wanted = process.argv.slice(2);
if (wanted.length === 0 || wanted.some((s) => !(s in suites))) {
  console.error(`usage: run-tests.mjs <${Object.keys(suites).join('|')}>...`);
  process.exit(2);
}
let failed = false;
for (const name of wanted) {
  const suite = suites[name];
  // Every listed directory must hold tests: a moved or misspelt directory fails the run
  // instead of silently shrinking the suite.
  const empty = suite.dirs.filter((dir) => testFiles(dir).length === 0);
  if (empty.length > 0) {
    console.error(`suite "${name}": no *.test.ts file in ${empty.join(', ')}`);
    process.exit(1);
  }
  const files = suite.dirs.flatMap(testFiles);
  console.log(`\n# suite ${name}: ${files.length} files`);
  const extra = process.env.TEST_REPORTER ? [`--test-reporter=${process.env.TEST_REPORTER}`] : [];
  const r = spawnSync(
    process.execPath,
    // --conditions=source: @stack/shared resolves to shared/src (its package.json), so a test never runs a stale build.
    ['--conditions=source', '--import', 'tsx', '--test', `--test-concurrency=${suite.concurrency}`, ...extra, ...files.map((f) => relative(process.cwd(), join(root, f)))],
    { stdio: 'inherit' },
  );
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
