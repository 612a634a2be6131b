import { appendFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../../test-results/', import.meta.url));

/**
 * Records a measured figure: printed as a test diagnostic and appended to
 * test-results/figures.jsonl, so closing notes and the README quote real runs.
 */
export function recordFigure(suite: string, name: string, value: unknown): void {
  mkdirSync(dir, { recursive: true });
  const rec = { at: new Date().toISOString(), suite, name, value };
  appendFileSync(`${dir}figures.jsonl`, JSON.stringify(rec) + '\n');
  console.log(`# figure ${suite} / ${name}: ${JSON.stringify(value)}`);
}
