import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendVia,
  formatViaEntry,
  parseVia,
  VIA_MAX_ENTRIES,
  VIA_MAX_LENGTH,
  viaCount,
  viaNames,
  viaVisited,
  type ViaEntry,
  type ViaHeader,
} from './via.js';

const show = (h: ViaHeader) => String(JSON.stringify(h)).slice(0, 60);
const e = (protocol: string, receivedBy: string, comment?: string): ViaEntry =>
  comment === undefined ? { protocol, receivedBy } : { protocol, receivedBy, comment };

describe('parseVia', () => {
  const cases: Array<[string, ViaHeader, ViaEntry[], boolean?]> = [
    ['absent', undefined, []],
    ['null', null, []],
    ['empty', '', []],
    ['one entry', '1.1 gateway', [e('1.1', 'gateway')]],
    ['protocol name and port', 'HTTP/2 proxy.example:8080', [e('HTTP/2', 'proxy.example:8080')]],
    ['comment', '1.1 service-web (call)', [e('1.1', 'service-web', 'call')]],
    ['comment without a space', '1.1 service-web(call)', [e('1.1', 'service-web', 'call')]],
    ['list', '1.1 gateway, 1.1 service-web (call),1.0 b', [e('1.1', 'gateway'), e('1.1', 'service-web', 'call'), e('1.0', 'b')]],
    ['tabs and extra spaces', ' 1.1\tgateway \t,\t 1.1  b  (x) ', [e('1.1', 'gateway'), e('1.1', 'b', 'x')]],
    ['empty members', ', ,1.1 a,,', [e('1.1', 'a')]],
    ['comma inside a comment', '1.1 a (x, y), 1.1 b', [e('1.1', 'a', 'x, y'), e('1.1', 'b')]],
    ['nested comment', '1.1 a (outer (inner) tail), 1.1 b', [e('1.1', 'a', 'outer (inner) tail'), e('1.1', 'b')]],
    ['escaped paren', '1.1 a (x\\) y), 1.1 b', [e('1.1', 'a', 'x) y'), e('1.1', 'b')]],
    ['unclosed comment runs to the end', '1.1 a (x, 1.1 gateway', [e('1.1', 'a', 'x, 1.1 gateway')]],
    ['text after received-by that is not a comment is ignored', '1.1 a junk junk', [e('1.1', 'a')]],
    ['IPv6 received-by', '1.1 [fd00::1]:3000', [e('1.1', '[fd00::1]:3000')]],
    ['junk members dropped, good ones kept', 'garbage, 1.1 a, (x) y, 1.1 , ??? !!!, 1.1 b', [e('1.1', 'a'), e('1.1', 'b')]],
    ['array of lines', ['1.1 a', '1.1 b (call)'], [e('1.1', 'a'), e('1.1', 'b', 'call')]],
    ['non-ASCII junk', '1.1 ☃, 1.1 ok', [e('1.1', 'ok')]],
  ];
  for (const [name, header, entries, overLimit = false] of cases) {
    test(name, () => assert.deepEqual(parseVia(header), { entries, overLimit }));
  }

  test(`${VIA_MAX_ENTRIES} entries are fine, one more is over the limit`, () => {
    const list = (n: number) => Array.from({ length: n }, (_, i) => `1.1 h${i}`).join(', ');
    const at = parseVia(list(VIA_MAX_ENTRIES));
    assert.equal(at.overLimit, false);
    assert.equal(at.entries.length, VIA_MAX_ENTRIES);
    const over = parseVia(list(VIA_MAX_ENTRIES + 1));
    assert.equal(over.overLimit, true);
    assert.equal(over.entries.length, VIA_MAX_ENTRIES, 'only the first ones are read');
  });

  test('junk members count toward the entry limit', () => {
    assert.equal(parseVia(Array(VIA_MAX_ENTRIES + 1).fill('x').join(',')).overLimit, true);
  });

  test(`over ${VIA_MAX_LENGTH} characters is over the limit, even as one member`, () => {
    assert.equal(parseVia(`1.1 a (${'x'.repeat(VIA_MAX_LENGTH - 8)})`).overLimit, false);
    assert.equal(parseVia(`1.1 a (${'x'.repeat(VIA_MAX_LENGTH)})`).overLimit, true);
    assert.equal(parseVia(['1.1 a', 'y'.repeat(VIA_MAX_LENGTH)]).overLimit, true);
  });

  test('a huge header is bounded work: it costs what a header just over the limit costs', () => {
    const huge = '('.repeat(1_000_000) + ', 1.1 gateway'.repeat(100_000);
    const justOver = huge.slice(0, VIA_MAX_LENGTH + 1);
    const p = parseVia(huge);
    assert.equal(p.overLimit, true);
    assert.deepEqual(p, parseVia(justOver), 'only the first VIA_MAX_LENGTH characters are read');
    // The work, against a reference in the same run rather than the clock: the fastest of
    // interleaved rounds of each. Reading all 2.3 M characters costs ~900 times the 4 kB
    // reference (measured with the slice to VIA_MAX_LENGTH removed); bounded, about 1 time.
    const fastest = { huge: Infinity, justOver: Infinity };
    for (let round = 0; round < 20; round++)
      for (const [name, header] of [['huge', huge], ['justOver', justOver]] as const) {
        const t0 = performance.now();
        parseVia(header);
        fastest[name] = Math.min(fastest[name], performance.now() - t0);
      }
    const ratio = fastest.huge / fastest.justOver;
    assert.ok(ratio < 10, `parsing ${huge.length} characters took ${ratio.toFixed(1)} times as long as ${justOver.length}`);
  });
});

describe('viaNames / viaVisited / viaCount', () => {
  const h = '1.1 Gateway, HTTP/1.1 service-web:3000 (call), 1.1 [fd00::1]:80 (CALL), 1.0 b (other)';
  test('names are lowercased, without port', () => {
    assert.deepEqual(viaNames(h), ['gateway', 'service-web', '[fd00::1]', 'b']);
    assert.deepEqual(viaNames(undefined), []);
  });

  const visited: Array<[ViaHeader, string, boolean]> = [
    [h, 'gateway', true],
    [h, 'GATEWAY', true],
    [h, 'service-web', true],
    [h, 'service-b', false],
    ['', 'gateway', false],
    [undefined, 'gateway', false],
    ['1.1 gateway-2', 'gateway', false],
    ['1.1 x (1.1 gateway)', 'gateway', false],
    ['1.1 x (', 'gateway', false],
    [Array(VIA_MAX_ENTRIES + 1).fill('1.1 a').join(','), 'gateway', true],
  ];
  for (const [header, name, want] of visited) {
    test(`viaVisited(${show(header)}, ${name}) → ${want}`, () => assert.equal(viaVisited(header, name), want));
  }

  const counts: Array<[ViaHeader, number]> = [
    [h, 2],
    [undefined, 0],
    ['1.1 gateway', 0],
    ['1.1 a ( call ), 1.1 b (calls), 1.1 c (call) (x)', 2],
    ['1.1 a (call', 1],
    ['x'.repeat(VIA_MAX_LENGTH + 1), Infinity],
  ];
  for (const [header, want] of counts) {
    test(`viaCount(${show(header)}, "call") → ${want}`, () => assert.equal(viaCount(header, 'call'), want));
  }
});

describe('appendVia', () => {
  const own = e('1.1', 'service-web', 'call');
  const cases: Array<[string, ViaHeader, string]> = [
    ['to nothing', undefined, '1.1 service-web (call)'],
    ['to empty', '', '1.1 service-web (call)'],
    ['after the gateway', '1.1 gateway', '1.1 gateway, 1.1 service-web (call)'],
    ['junk is dropped', 'junk, 1.1 gateway,,', '1.1 gateway, 1.1 service-web (call)'],
    ['an unclosed comment is closed, so it cannot swallow the new entry', '1.1 x (', '1.1 x (), 1.1 service-web (call)'],
    ['comments are re-escaped', '1.1 x (a\\) (b))', '1.1 x (a\\) \\(b\\)), 1.1 service-web (call)'],
  ];
  for (const [name, header, want] of cases) {
    test(name, () => {
      const out = appendVia(header, own);
      assert.equal(out, want);
      assert.equal(viaCount(out, 'call'), viaCount(header, 'call') + 1, 'the new entry is always counted');
    });
  }

  test('an over-limit header stays over the limit downstream', () => {
    const over = Array(VIA_MAX_ENTRIES + 1).fill('1.1 a').join(', ');
    const out = appendVia(over, own);
    assert.ok(out.startsWith(over) && out.endsWith(', 1.1 service-web (call)'));
    assert.equal(parseVia(out).overLimit, true);
  });

  test('a bad own entry throws: it is ours to get right', () => {
    assert.throws(() => formatViaEntry(e('1.1', 'has space')), TypeError);
    assert.throws(() => formatViaEntry(e('1 1', 'x')), TypeError);
    assert.throws(() => formatViaEntry(e('1.1', 'a,b')), TypeError);
    assert.equal(formatViaEntry(e('1.1', 'x', 'a\r\nb')), '1.1 x (ab)');
  });
});
