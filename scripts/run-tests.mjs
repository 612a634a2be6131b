// Runs test suites with node's own runner. Node 20 does not expand globs in
// `node --test`, so the files are listed here.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const suites = {
  unit: { dirs: ['shared/src', 'gateway/src', 'web-service/src', 'consul-acl/src', 'test/lib'], concurrency: 2 },
  integration: { dirs: ['test/integration'], concurrency: 1 },
  e2e: { dirs: ['test/e2e'], concurrency: 1 },
  // The integration files whose paths depend on the Consul version (docs/consul-versions.md):
  // CI runs them a second time with CONSUL_BIN pointing at Consul 1.8.7.
  'consul-compat': {
    // discovery-*: the node scan reads /v1/catalog/node/<node>, whose index is per node on 1.16 and not on 1.8.
    files: [
      'test/integration/consul-acl.test.ts',
      'test/integration/discovery-catalog.test.ts',
      'test/integration/discovery-churn.test.ts',
      'test/integration/empty-hold.test.ts',
      'test/integration/explain.test.ts',
    ],
    concurrency: 1,
  },
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
  const empty = (suite.dirs ?? []).filter((dir) => testFiles(dir).length === 0);
  const missing = (suite.files ?? []).filter((f) => !existsSync(join(root, f)));
  if (empty.length > 0 || missing.length > 0) {
    console.error(`suite "${name}": ${empty.length > 0 ? `no *.test.ts file in ${empty.join(', ')}` : `missing ${missing.join(', ')}`}`);
    process.exit(1);
  }
  const files = suite.files ?? suite.dirs.flatMap(testFiles);
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
