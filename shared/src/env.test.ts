import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { ConfigError, intVar, listVar, logLevelVar, parseEnv } from './env.js';

const schema = z.object({
  PORT: intVar(3000, 0, 65535),
  RETRIES: intVar(2, 1, 10),
  NAMES: listVar(['a', 'b']),
  EMPTY_DEFAULT: listVar(),
  LOG_LEVEL: logLevelVar,
});

describe('parseEnv: defaults', () => {
  test('an empty env gives every default', () => {
    assert.deepEqual(parseEnv(schema, {}), {
      PORT: 3000,
      RETRIES: 2,
      NAMES: ['a', 'b'],
      EMPTY_DEFAULT: [],
      LOG_LEVEL: 'info',
    });
  });

  test('unrelated variables are ignored', () => {
    const out = parseEnv(schema, { HOME: '/root', PATH: '/bin' });
    assert.equal(out.PORT, 3000);
    assert.ok(!('HOME' in out));
  });

  test('explicitly undefined values take the default', () => {
    assert.equal(parseEnv(schema, { PORT: undefined }).PORT, 3000);
  });
});

describe('parseEnv: good values', () => {
  const cases: Array<[string, Record<string, string>, Partial<z.output<typeof schema>>]> = [
    ['int', { PORT: '8080' }, { PORT: 8080 }],
    ['int at min', { PORT: '0' }, { PORT: 0 }],
    ['int at max', { PORT: '65535' }, { PORT: 65535 }],
    ['int with spaces', { PORT: ' 42 ' }, { PORT: 42 }],
    ['int with leading zeros', { RETRIES: '007' }, { RETRIES: 7 }],
    ['list', { NAMES: 'x,y,z' }, { NAMES: ['x', 'y', 'z'] }],
    ['list trims and drops empty items', { NAMES: ' x , ,y,, ' }, { NAMES: ['x', 'y'] }],
    ['list keeps case', { NAMES: 'Foo,BAR' }, { NAMES: ['Foo', 'BAR'] }],
    ['empty list string → [] (not the default)', { NAMES: '' }, { NAMES: [] }],
    ['log level', { LOG_LEVEL: 'debug' }, { LOG_LEVEL: 'debug' }],
    ['log level silent', { LOG_LEVEL: 'silent' }, { LOG_LEVEL: 'silent' }],
  ];
  for (const [name, env, expected] of cases) {
    test(name, () => {
      const out = parseEnv(schema, env);
      for (const [k, v] of Object.entries(expected)) assert.deepEqual(out[k as keyof typeof out], v, k);
    });
  }

  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const) {
    test(`logLevelVar accepts ${level}`, () => {
      assert.equal(logLevelVar.parse(level), level);
    });
  }
});

describe('parseEnv: errors name the variable and the value', () => {
  const cases: Array<[Record<string, string>, string, string]> = [
    [{ PORT: 'abc' }, 'PORT', '"abc"'],
    [{ PORT: '-1' }, 'PORT', '"-1"'],
    [{ PORT: '1.5' }, 'PORT', '"1.5"'],
    [{ PORT: '1e3' }, 'PORT', '"1e3"'],
    [{ PORT: '0x10' }, 'PORT', '"0x10"'],
    [{ PORT: '' }, 'PORT', '""'],
    [{ PORT: '65536' }, 'PORT', '"65536"'],
    [{ PORT: '99999999999999999999999' }, 'PORT', '"99999999999999999999999"'],
    [{ RETRIES: '0' }, 'RETRIES', '"0"'],
    [{ RETRIES: '11' }, 'RETRIES', '"11"'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', '"loud"'],
    [{ LOG_LEVEL: 'INFO' }, 'LOG_LEVEL', '"INFO"'],
    [{ LOG_LEVEL: '' }, 'LOG_LEVEL', '""'],
  ];
  for (const [env, name, value] of cases) {
    test(`${name}=${value}`, () => {
      assert.throws(
        () => parseEnv(schema, env),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.name, 'ConfigError');
          assert.ok(err.message.includes(`${name}=${value}`), err.message);
          return true;
        },
      );
    });
  }

  test('every bad variable is reported at once', () => {
    assert.throws(
      () => parseEnv(schema, { PORT: 'x', RETRIES: '99', LOG_LEVEL: 'nope' }),
      (err: Error) => {
        assert.match(err.message, /PORT="x"/);
        assert.match(err.message, /RETRIES="99"/);
        assert.match(err.message, /LOG_LEVEL="nope"/);
        assert.equal(err.message.split('\n').length, 4);
        return true;
      },
    );
  });

  test('a required variable that is missing is reported as unset', () => {
    const s = z.object({ NEEDED: z.string() });
    assert.throws(() => parseEnv(s, {}), /NEEDED=unset/);
  });

  test('a range error says what was expected', () => {
    assert.throws(() => parseEnv(schema, { PORT: '70000' }), /PORT="70000": .*65535/);
    assert.throws(() => parseEnv(schema, { PORT: 'abc' }), /PORT="abc": expected a whole number/);
  });
});
