import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { seededRandom } from '../../../test/lib/divergence.js';
import { changedMembers, commonEnds, objectMembers } from './json-members.js';

const buf = (s: string) => Buffer.from(s);
/** Each member objectMembers found, as its own object: the reference is JSON.parse. */
const parsedMembers = (text: string) => {
  const m = objectMembers(buf(text))!;
  const out: unknown[] = [];
  for (let k = 0; k < m.length; k += 2) out.push(JSON.parse(`{${buf(text).toString('utf8', m[k], m[k + 1])}}`));
  return out;
};

describe('objectMembers: where each member of a JSON object is, without parsing it', () => {
  const valid: Array<[string, string]> = [
    ['an empty object', '{}'],
    ['one member', '{"a":1}'],
    ['whitespace everywhere', ' \n{ "a" : 1 ,\t"b" :[ 1 , 2 ] }\n'],
    ['nested objects and arrays', '{"a":{"b":{"c":[1,{"d":[]}]}},"e":[[],{}]}'],
    ['brackets, commas and colons inside strings', '{"a{,":"}],:[{","b":"\\"}","c":"\\\\"}'],
    ['escaped quotes and backslashes', '{"x\\"y":"a\\\\\\"b","z":"\\\\"}'],
    ['unicode and escapes', '{"ü":"\\u00fc😀","n":null,"t":true,"f":-1.5e3}'],
    ["Consul's shape", '{"web-1":{"ID":"web-1","Service":"web","Tags":["a,b"],"Meta":{"ID":"x"},"Port":3000,"Weights":{"Passing":1,"Warning":1}}}'],
  ];
  for (const [name, text] of valid)
    test(`${name}: each member parses alone, and together they are JSON.parse's object`, () => {
      const members = parsedMembers(text);
      assert.deepEqual(Object.assign({}, ...members), JSON.parse(text));
      assert.equal(members.length, Object.keys(JSON.parse(text)).length);
      for (const m of members) assert.equal(Object.keys(m as object).length, 1);
    });

  const invalid: Array<[string, string]> = [
    ['nothing', ''],
    ['an array', '[{"a":1}]'],
    ['a string', '"{}"'],
    ['truncated', '{"a":{"b":1}'],
    ['an unterminated string', '{"a":"}'],
    ['an escape at the end', '{"a":"\\'],
    ['a member without a key', '{1:2}'],
    ['an empty member', '{"a":1,,"b":2}'],
    ['a leading comma', '{,"a":1}'],
    ['text after the object', '{"a":1} x'],
    ['a bracket closing a brace', '{"a":[1}]'],
    ['an HTML error page', '<html><body>502 Bad Gateway</body></html>'],
  ];
  for (const [name, text] of invalid) test(`${name}: undefined, never a guess`, () => assert.equal(objectMembers(buf(text)), undefined));
});

describe('commonEnds', () => {
  const cases: Array<[string, string, number, number]> = [
    ['abc', 'abc', 3, 0],
    ['abc', 'abd', 2, 0],
    ['abc', 'xbc', 0, 2],
    ['abcabc', 'abc', 3, 0], // never overlapping: the prefix is taken first
    ['', 'abc', 0, 0],
    ['aXb', 'ab', 1, 1],
  ];
  for (const [a, b, prefix, suffix] of cases)
    test(`${JSON.stringify(a)} / ${JSON.stringify(b)}: ${prefix} from the start, ${suffix} from the end`, () =>
      assert.deepEqual(commonEnds(buf(a), buf(b)), { prefix, suffix }));

  test('across the 4 KiB blocks compared at once: a difference at every offset near a block edge', () => {
    const a = Buffer.alloc(3 * 4096 + 7, 'x');
    for (const at of [0, 1, 4095, 4096, 4097, 8191, 8192, a.length - 1]) {
      const b = Buffer.from(a);
      b[at] = 0x79;
      assert.deepEqual(commonEnds(a, b), { prefix: at, suffix: a.length - 1 - at }, `at ${at}`);
    }
  });
});

describe('changedMembers: the edges of the span', () => {
  // Where the differing bytes end exactly at a member's edge, the member still counts on both sides.
  const cases: Array<[string, string, string, string[], string[]]> = [
    ['a value grown at its end', '{"a":1,"b":2}', '{"a":11,"b":2}', ['a'], ['a']],
    ['a value shrunk at its end', '{"a":11,"b":2}', '{"a":1,"b":2}', ['a'], ['a']],
    ['a member added last', '{"a":1}', '{"a":1,"b":2}', [], ['b']],
    ['a member removed last', '{"a":1,"b":2}', '{"a":1}', [], ['b']],
    ['a member added first', '{"b":2}', '{"a":1,"b":2}', [], ['a']],
    ['a member added between two alike', '{"a":{"x":1},"c":{"x":1}}', '{"a":{"x":1},"b":{"x":1},"c":{"x":1}}', [], ['b']],
    ['everything gone', '{"a":1,"b":2}', '{}', ['a', 'b'], []],
    ['from nothing', '{}', '{"a":1}', [], ['a']],
  ];
  for (const [name, a, b, gone, came] of cases)
    test(name, () => {
      const d = changedMembers(buf(a), objectMembers(buf(a))!, buf(b), objectMembers(buf(b))!)!;
      const before = JSON.parse(d.before) as Record<string, unknown>;
      const after = JSON.parse(d.after) as Record<string, unknown>;
      const [pa, pb] = [JSON.parse(a) as Record<string, unknown>, JSON.parse(b) as Record<string, unknown>];
      for (const id of gone) assert.deepEqual(before[id], pa[id], `${id} before`);
      for (const id of came) assert.deepEqual(after[id], pb[id], `${id} after`);
      for (const id of Object.keys(pa)) if (JSON.stringify(pa[id]) !== JSON.stringify(pb[id])) assert.ok(id in before || !(id in pa), `${id} returned before`);
      for (const id of Object.keys(pb)) if (JSON.stringify(pa[id]) !== JSON.stringify(pb[id])) assert.ok(id in after, `${id} returned after`);
    });
  test('equal texts: nothing', () => assert.equal(changedMembers(buf('{"a":1}'), [1, 6], buf('{"a":1}'), [1, 6]), undefined));
});

// ---------------------------------------------------------------- against JSON.parse, under random change

describe('changedMembers, against a full JSON.parse of both texts, under random changes', () => {
  const seed = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  // Strings that would trip a scanner that did not follow JSON's strings.
  const nasty = ['a', 'web', '}', '{', '"', '\\', '","', '":{"ID":"', ',', ':', '[', ']', 'ü', '😀', '\n', ' '];
  const str = () => Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => pick(nasty)).join('');
  const registration = (id: string) => ({
    ID: id,
    Service: pick(['web', 'api', 'db', str()]),
    Tags: Array.from({ length: Math.floor(rnd() * 3) }, str),
    Meta: rnd() < 0.3 ? { [str()]: str(), ID: str() } : {},
    Port: Math.floor(rnd() * 65536),
    Address: pick(['10.0.0.1', '10.0.0.2', '']),
    Weights: { Passing: 1, Warning: 1 },
  });
  // Keys sorted, as Go encodes a map.
  const encode = (o: Map<string, unknown>) => JSON.stringify(Object.fromEntries([...o].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));

  test(`every member that differs is among those returned, with its text on each side (seed ${seed}, SEED=${seed} to replay)`, () => {
    let state = new Map<string, unknown>();
    for (let i = 0; i < 200; i++) state.set(`svc-${i}-${str()}`, registration(`svc-${i}`));
    let text = buf(encode(state));
    let members = objectMembers(text)!;
    for (let round = 0; round < 400; round++) {
      const next = new Map(state);
      const edits = 1 + Math.floor(rnd() * (rnd() < 0.8 ? 1 : 5));
      for (let e = 0; e < edits; e++) {
        const ids = [...next.keys()];
        const r = rnd();
        if (r < 0.3 || ids.length < 5) next.set(`svc-${round}-${e}-${str()}`, registration(`n-${round}`));
        else if (r < 0.55) next.delete(pick(ids));
        else {
          const id = pick(ids);
          const changed = { ...(next.get(id) as object), ...(rnd() < 0.5 ? { Port: Math.floor(rnd() * 65536) } : { Tags: [str()] }) };
          next.set(id, changed);
        }
      }
      const nextText = buf(encode(next));
      const nextMembers = objectMembers(nextText);
      assert.ok(nextMembers, `round ${round}: a valid object was refused`);
      const d = changedMembers(text, members, nextText, nextMembers);
      const want = [...new Set([...state.keys(), ...next.keys()])].filter((id) => JSON.stringify(state.get(id)) !== JSON.stringify(next.get(id)));
      if (want.length === 0) assert.equal(d, undefined, `round ${round}: texts equal, nothing returned`);
      else {
        assert.ok(d, `round ${round}: ${want.length} changed, nothing returned`);
        const before = JSON.parse(d.before) as Record<string, unknown>;
        const after = JSON.parse(d.after) as Record<string, unknown>;
        for (const id of want) {
          assert.deepEqual(before[id], state.get(id), `round ${round}: ${JSON.stringify(id)} before`);
          assert.deepEqual(after[id], next.get(id), `round ${round}: ${JSON.stringify(id)} after`);
        }
        // Returned members are the texts' own: never one from the wrong side.
        for (const [id, v] of Object.entries(before)) assert.deepEqual(v, state.get(id));
        for (const [id, v] of Object.entries(after)) assert.deepEqual(v, next.get(id));
      }
      state = next;
      text = nextText;
      members = nextMembers;
    }
  });

  test('one change among 2,000 members (edited, added, removed) returns it and at most its neighbours', () => {
    const state = new Map<string, unknown>();
    for (let i = 0; i < 2000; i++) state.set(`svc-${String(i).padStart(4, '0')}`, registration(`svc-${i}`));
    const a = buf(encode(state));
    const edits: Array<[string, (m: Map<string, unknown>) => void, string]> = [
      ['edited', (m) => m.set('svc-1234', { ...(state.get('svc-1234') as object), Port: 1 }), 'svc-1234'],
      ['added', (m) => m.set('svc-0500a', registration('new')), 'svc-0500a'],
      ['removed', (m) => m.delete('svc-0500'), 'svc-0500'],
    ];
    for (const [what, edit, id] of edits) {
      const next = new Map(state);
      edit(next);
      const b = buf(encode(next));
      const d = changedMembers(a, objectMembers(a)!, b, objectMembers(b)!)!;
      const before = Object.keys(JSON.parse(d.before));
      const after = Object.keys(JSON.parse(d.after));
      assert.ok(before.length <= 3 && after.length <= 3, `${what}: ${before.length} / ${after.length} members returned`);
      assert.ok(before.includes(id) || after.includes(id), `${what}: ${id} returned`);
    }
  });
});
