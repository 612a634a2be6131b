import { readFileSync } from 'node:fs';

/** One documented default: the variable and the value the README gives it. */
export interface DocumentedDefault {
  name: string;
  value: string;
}

const README = new URL('../../README.md', import.meta.url);
const code = (s: string) => s.trim().replace(/^`|`$/g, '');

/**
 * The defaults a README config table documents (`### <section>`): each row's
 * variables (split on " / ") paired with its defaults (split the same way),
 * plus every "`NAME` (`value`)" in a description. Rows without a literal
 * default ("(none)", "as above") document none.
 */
export function documentedDefaults(section: string): DocumentedDefault[] {
  const text = readFileSync(README, 'utf8');
  const start = text.indexOf(`\n### ${section}\n`);
  if (start < 0) throw new Error(`README has no "### ${section}" section`);
  const end = text.indexOf('\n#', start + 5);
  const out: DocumentedDefault[] = [];
  for (const line of text.slice(start, end < 0 ? undefined : end).split('\n')) {
    const cells = line.split(' | ');
    if (!line.startsWith('| `') || cells.length < 3) continue;
    const names = cells[0]!.slice(2).split(' / ').map(code);
    const values = cells[1]!.split(' / ').map(code);
    if (names.length === values.length && values.every((v) => !v.startsWith('('))) names.forEach((name, i) => out.push({ name, value: values[i]! }));
    for (const m of cells.slice(2).join(' | ').matchAll(/`([A-Z][A-Z0-9_]+)` \(`([^`]+)`\)/g)) out.push({ name: m[1]!, value: m[2]! });
  }
  return out;
}

/** The README's "Where things are" map: each folder line and the text that describes it. */
export function readmeMap(): Array<{ folder: string; text: string }> {
  const text = readFileSync(README, 'utf8');
  const start = text.indexOf('## Where things are');
  const block = /```\n([\s\S]*?)```/.exec(text.slice(start))?.[1];
  if (start < 0 || !block) throw new Error('README has no "Where things are" map');
  const out: Array<{ folder: string; text: string }> = [];
  for (const line of block.split('\n')) {
    const m = /^(\S+\/)\s+(.*)$/.exec(line);
    if (m) out.push({ folder: m[1]!, text: m[2]! });
    else if (line.trim() && out.length > 0) out[out.length - 1]!.text += ` ${line.trim()}`;
  }
  return out;
}
