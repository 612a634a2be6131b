import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHtml } from './html.js';

describe('escapeHtml', () => {
  const cases: Array<[unknown, string]> = [
    ['plain-name_1.2', 'plain-name_1.2'],
    ['<>&"\'', '&#60;&#62;&#38;&#34;&#39;'],
    ['`=', '&#96;&#61;'],
    [`<a href="x" onclick='y'>&</a>`, '&#60;a href&#61;&#34;x&#34; onclick&#61;&#39;y&#39;&#62;&#38;&#60;/a&#62;'],
    [42, '42'],
  ];
  for (const [input, out] of cases) test(JSON.stringify(input), () => assert.equal(escapeHtml(input), out));
});
