import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../env.js';
import { describeTokenVars, resolveConsulToken } from './config.js';

describe('resolveConsulToken', () => {
  const dir = mkdtempSync(join(tmpdir(), 'token-'));
  const file = (name: string, body: string) => {
    const p = join(dir, name);
    writeFileSync(p, body);
    return p;
  };
  const good = file('good', 'a1b2c3-secret\n');
  const empty = file('empty', ' \n');

  const cases: Array<{ name: string; vars: Record<string, string | undefined>; want?: string; error?: RegExp }> = [
    { name: 'neither: anonymous', vars: {}, want: undefined },
    { name: 'the variable', vars: { CONSUL_HTTP_TOKEN: 'tok' }, want: 'tok' },
    { name: 'the file, trimmed', vars: { CONSUL_HTTP_TOKEN_FILE: good }, want: 'a1b2c3-secret' },
    { name: 'both', vars: { CONSUL_HTTP_TOKEN: 'tok', CONSUL_HTTP_TOKEN_FILE: good }, error: /both set/ },
    { name: 'a missing file', vars: { CONSUL_HTTP_TOKEN_FILE: join(dir, 'nope') }, error: /CONSUL_HTTP_TOKEN_FILE=.*cannot read it \(ENOENT\)/ },
    { name: 'an empty file', vars: { CONSUL_HTTP_TOKEN_FILE: empty }, error: /CONSUL_HTTP_TOKEN_FILE=.*empty/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      if (c.error) {
        assert.throws(() => resolveConsulToken(c.vars), (err: unknown) => err instanceof ConfigError && c.error!.test(err.message));
      } else {
        assert.equal(resolveConsulToken(c.vars), c.want);
      }
    });
  }

  test('the logged form never holds the secret', () => {
    const d = describeTokenVars({ CONSUL_HTTP_TOKEN: 'sekrit', consulToken: 'sekrit' });
    assert.ok(!JSON.stringify(d).includes('sekrit'));
    assert.equal(d.consulToken, '(set)');
    assert.equal(describeTokenVars({}).consulToken, '(none: anonymous)');
  });
});
