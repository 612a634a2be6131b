import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeConsul } from '../../../test/lib/fake-consul.js';
import { memoryLog, until } from '../../../test/lib/memory-log.js';
import { parseConsulAddrs } from './addresses.js';
import { BlockingQuery } from './blocking.js';
import type { ConsulError } from './errors.js';
import type { QueryMeta } from './meta.js';
import { ConsulPool, endpoints } from './pool.js';


const list = endpoints.catalogServices();
const opts = { name: 'catalog', waitMs: 1000, backoffBaseMs: 10, backoffMaxMs: 50 };

describe('BlockingQuery', () => {
  const fakes: FakeConsul[] = [];
  const pools: ConsulPool[] = [];
  const queries: BlockingQuery<unknown>[] = [];
  after(async () => {
    for (const q of queries) q.stop();
    for (const p of pools) p.close();
    for (const f of fakes) await f.close();
  });
  async function setup(agents = 1) {
    const fs = await Promise.all(Array.from({ length: agents }, () => new FakeConsul().start()));
    fakes.push(...fs);
    const pool = new ConsulPool(parseConsulAddrs(fs.map((f) => f.addr).join(',')));
    pools.push(pool);
    return { fs, pool };
  }
  function query(pool: ConsulPool, log = memoryLog().log) {
    const q = new BlockingQuery<Record<string, string[]>>(pool, list, { ...opts, log });
    queries.push(q);
    return q;
  }

  test('a listener that throws is logged as a bug: no error event, no failover, the query goes on', async () => {
    const { fs, pool } = await setup(2);
    const mem = memoryLog();
    const q = query(pool, mem.log);
    const errors: ConsulError[] = [];
    const seen: Array<Record<string, string[]>> = [];
    q.on('error', (e: ConsulError) => errors.push(e));
    q.on('data', (body: Record<string, string[]>) => {
      seen.push(body);
      if (seen.length === 1) throw new Error('listener bug');
    });
    q.start();
    await until('first answer', () => seen.length === 1);
    fs[0]!.register({ id: 'web-1', service: 'web' });
    await until('the next change, after the throw', () => seen.length === 2);
    assert.deepEqual(errors, []);
    assert.equal(pool.current().index, 0, 'still on the first agent');
    assert.equal(fs[1]!.requests.length, 0);
    assert.ok(mem.lines.some((l) => /bug: a listener of the catalog query threw/.test(l.msg) && l.level === 50));
    assert.ok(!mem.has(/unreachable/));
  });

  test("an 'error' with nobody listening is logged, not thrown", async () => {
    const { fs, pool } = await setup();
    fs[0]!.fail('/v1/catalog/services', 'reset', 2);
    const mem = memoryLog();
    const q = query(pool, mem.log);
    let data = 0;
    q.on('data', () => (data += 1));
    q.start();
    await until('an answer after two resets', () => data > 0);
    assert.ok(mem.has(/consul query failed/));
  });

  test('403 is a misconfiguration: reported as denied, no failover, retried at the slowest pace', async () => {
    const { fs, pool } = await setup(2);
    fs[0]!.fail('/v1/catalog/services', { status: 403, text: 'Permission denied' }, 2);
    const q = query(pool);
    const errors: ConsulError[] = [];
    q.on('error', (e: ConsulError) => errors.push(e));
    let data = 0;
    q.on('data', () => (data += 1));
    const t0 = Date.now();
    q.start();
    await until('the read allowed again', () => data > 0);
    assert.deepEqual(errors.map((e) => [e.kind, e.status, e.failover]), [['denied', 403, false], ['denied', 403, false]]);
    assert.match(errors[0]!.message, /Permission denied/);
    assert.equal(fs[1]!.requests.length, 0, 'the other agent was never asked');
    assert.ok(Date.now() - t0 >= 2 * opts.backoffMaxMs, 'waited backoffMaxMs between refusals');
  });

  test('an agent that cannot be reached: the pool moves to the next agent', async () => {
    const { fs, pool } = await setup(2);
    fs[0]!.fail('/', 'reset');
    const q = query(pool);
    const errors: ConsulError[] = [];
    q.on('error', (e: ConsulError) => errors.push(e));
    const metas: QueryMeta[] = [];
    q.on('data', (_b: unknown, m: QueryMeta) => metas.push(m));
    q.start();
    await until('an answer from the second agent', () => metas.length > 0);
    assert.equal(errors[0]?.kind, 'unreachable');
    assert.equal(metas[0]!.agent, `http://${fs[1]!.addr}`);
    assert.equal(pool.current().index, 1);
  });

  test('an index that goes back: the answer is delivered and the query starts over from 0', async () => {
    const { fs, pool } = await setup();
    fs[0]!.register({ id: 'web-1', service: 'web' });
    const before = fs[0]!.snapshot();
    fs[0]!.register({ id: 'api-1', service: 'api' });
    const q = query(pool);
    const metas: QueryMeta[] = [];
    const bodies: Array<Record<string, string[]>> = [];
    q.on('data', (b: Record<string, string[]>, m: QueryMeta) => (bodies.push(b), metas.push(m)));
    q.start();
    await until('first answer', () => metas.length === 1);
    fs[0]!.restore(before); // a snapshot restore: the catalog and its index go back
    await until('the older answer', () => metas.length >= 2);
    assert.ok(metas[1]!.index < metas[0]!.index);
    assert.deepEqual(Object.keys(bodies[1]!).sort(), ['consul', 'web']);
    await until('the query to start over', () => fs[0]!.requests.filter((r) => r.query.get('index') === '0').length >= 2);
    // and then it blocks on the older index, not spinning
    const n = fs[0]!.requests.length;
    await new Promise((r) => setTimeout(r, 150));
    assert.ok(fs[0]!.requests.length <= n + 1, `${fs[0]!.requests.length - n} requests while nothing changed`);
  });
});
