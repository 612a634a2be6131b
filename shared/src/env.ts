import { z } from 'zod';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parses env with a zod object schema whose keys are the variable names, so a
 * failure names the variable, the value it got and what was expected.
 */
export function parseEnv<S extends z.ZodObject>(
  schema: S,
  env: Record<string, string | undefined>,
): z.output<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(env)';
    const value = env[name];
    const got = value === undefined ? 'unset' : JSON.stringify(value);
    return `${name}=${got}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
}

/** An optional env var holding an integer in [min, max], with a default. */
export function intVar(def: number, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return z
    .string()
    .trim()
    .regex(/^\d+$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .optional()
    .transform((v) => v ?? def);
}

/** An optional comma-separated list; empty items are dropped. */
export function listVar(def: string[] = []) {
  return z
    .string()
    .optional()
    .transform((v) =>
      v === undefined ? def : v.split(',').map((s) => s.trim()).filter((s) => s.length > 0),
    );
}

/** An optional boolean: true/false, 1/0, yes/no (any case); unset or empty takes the default. */
export function boolVar(def: boolean) {
  return z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no', '']))
    .optional()
    .transform((v) => (v === undefined || v === '' ? def : v === 'true' || v === '1' || v === 'yes'));
}

export const logLevelVar = z
  .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  .optional()
  .transform((v) => v ?? 'info');
