import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { seededRandom } from '../../../test/lib/divergence.js';
import { type NodeAnswer, nodeServices } from './changes.js';
import { NodeAnswers, servicesMembers } from './node-answers.js';

const sorted = (xs: ReturnType<typeof nodeServices>) => [...xs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
/** The reference: the whole answer parsed. */
const reference = (node: string, text: Buffer) => sorted(nodeServices(node, JSON.parse(text.toString()) as NodeAnswer | null));

describe('servicesMembers: the Services of a node answer', () => {
  const cases: Array<[string, string, string[] | undefined]> = [
    ['two services', '{"Node":{"Node":"n1","Meta":{"Services":"x"}},"Services":{"a":{"ID":"a"},"b":{"ID":"b"}}}', ['"a":{"ID":"a"}', '"b":{"ID":"b"}']],
    ['Services null', '{"Node":{"Node":"n1"},"Services":null}', []],
    ['Services empty', '{"Node":{"Node":"n1"},"Services":{}}', []],
    ['spaces around the colon', '{"Services" : {"a":1}}', ['"a":1']],
    ['no Services', '{"Node":{"Node":"n1"}}', undefined],
    ['Services not an object', '{"Services":[1]}', undefined],
    ['a node gone', 'null', undefined],
  ];
  for (const [name, text, want] of cases)
    test(name, () => {
      const b = Buffer.from(text);
      const m = servicesMembers(b);
      assert.deepEqual(m && m.reduce<string[]>((out, v, k) => (k % 2 ? out : [...out, b.toString('utf8', v, m[k + 1])]), []), want);
    });
});

describe('NodeAnswers, against nodeServices of the whole answer parsed, under random change', () => {
  const seed = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const nasty = ['a', 'web', '}', '"', '\\', '","', ':', '[', 'ü', ' '];
  const str = () => Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(nasty)).join('');
  const service = (id: string, modify: number) => ({ ID: id, Service: pick(['Web', 'api', str()]), Tags: [str()], Port: Math.floor(rnd() * 65536), ModifyIndex: modify });
  const encode = (node: Record<string, unknown>, services: Map<string, unknown> | null) =>
    Buffer.from(JSON.stringify({ Node: node, Services: services && Object.fromEntries([...services].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) }));

  test(`the same instances as a full parse, answer after answer, on several nodes (seed ${seed}, SEED=${seed} to replay)`, () => {
    const answers = new NodeAnswers();
    const nodes = ['n1', 'n2', 'n3'];
    type NodeState = { node: Record<string, unknown>; services: Map<string, unknown> | null };
    const state = new Map<string, NodeState>(nodes.map((n) => [n, { node: { Node: n, Address: '10.0.0.1', ModifyIndex: 1 }, services: new Map() }]));
    for (let round = 0; round < 600; round++) {
      const n = pick(nodes);
      const s = state.get(n)!;
      const r = rnd();
      if (r < 0.03) s.services = null; // Consul's answer for a node without services
      else {
        s.services ??= new Map();
        const ids = [...s.services.keys()];
        if (r < 0.1) s.node = { ...s.node, Address: pick(['10.0.0.1', '10.0.0.2']), ModifyIndex: round }; // the node itself
        else if (r < 0.45 || ids.length < 3) s.services.set(`${str()}-${round}`, service(`id-${round}`, round));
        else if (r < 0.65) s.services.delete(pick(ids));
        else if (r < 0.9) s.services.set(pick(ids), service(`id-${round}`, round));
        // else: the same answer again
      }
      const text = encode(s.node, s.services);
      assert.deepEqual(sorted(answers.services(n, text)), reference(n, text), `round ${round}, node ${n}`);
    }
  });

  test('an answer that is not JSON throws; one that is JSON but not an object is what a full parse makes of it', () => {
    const answers = new NodeAnswers();
    answers.services('n1', Buffer.from('{"Services":{"a":{"ID":"a","Service":"web","ModifyIndex":3}}}'));
    assert.throws(() => answers.services('n1', Buffer.from('<html>502</html>')), SyntaxError);
    assert.deepEqual(answers.services('n1', Buffer.from('null')), []);
    assert.deepEqual(answers.services('n1', Buffer.from('{"Services":{"a":{"ID":"a","Service":"web","ModifyIndex":4}}}')), [{ node: 'n1', id: 'a', service: 'web', modify: 4 }]);
  });

  test('keepOnly forgets a node: its next answer is parsed whole', () => {
    const answers = new NodeAnswers();
    const a = Buffer.from('{"Services":{"a":{"ID":"a","Service":"web","ModifyIndex":3}}}');
    const first = answers.services('n1', a);
    assert.equal(answers.services('n1', Buffer.from(a)), first, 'the same answer: the same list, not parsed again');
    answers.keepOnly(new Set(['n2']));
    const again = answers.services('n1', Buffer.from(a));
    assert.notEqual(again, first);
    assert.deepEqual(again, first);
  });
});
