#!/usr/bin/env node
// Checks the relative links in README.md and docs/*.md: the file exists and, for
// a #fragment, a heading in it makes that anchor (GitHub's rule: lower case,
// punctuation dropped, spaces to dashes). Pages another branch adds may be
// listed with --allow-missing=docs/x.md,... so they don't fail the check.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const allow = new Set(
  (process.argv.find((a) => a.startsWith('--allow-missing=')) ?? '--allow-missing=').slice(16).split(',').filter(Boolean),
);
const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

const slug = (h) => h.trim().toLowerCase().replace(/[`*_]/g, '').replace(/[^\p{L}\p{N} -]/gu, '').replace(/ /g, '-');
function anchors(file) {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  const seen = new Map();
  const out = new Set();
  for (const m of text.matchAll(/^#{1,6} +(.+)$/gm)) {
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

let bad = 0;
for (const page of pages) {
  const text = readFileSync(join(root, page), 'utf8').replace(/```[\s\S]*?```/g, '');
  for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1];
    if (/^[a-z]+:/i.test(target)) continue; // http:, https:, mailto:
    const [path, frag] = target.split('#');
    const file = path ? normalize(join(dirname(join(root, page)), path)) : join(root, page);
    const rel = relative(root, file);
    if (!existsSync(file)) {
      if (allow.has(rel)) continue;
      console.error(`${page}: ${target}: no such file`);
      bad++;
      continue;
    }
    if (frag && file.endsWith('.md') && !anchors(file).has(frag)) {
      console.error(`${page}: ${target}: no heading makes #${frag} in ${rel}`);
      bad++;
    }
  }
}
console.log(`${pages.length} pages checked, ${bad} broken link(s)`);
process.exit(bad ? 1 : 0);
