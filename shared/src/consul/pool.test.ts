import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeConsul } from '../../../test/lib/fake-consul.js';
import { parseConsulAddrs } from './addresses.js';
import { ConsulPool, consulStatus } from './pool.js';

const fakes: FakeConsul[] = [];
const pools: ConsulPool[] = [];
after(async () => {
  for (const p of pools) p.close();
  await Promise.all(fakes.map((f) => f.close()));
});

async function agents(n: number): Promise<{ fs: FakeConsul[]; pool: ConsulPool }> {
  const fs = await Promise.all(Array.from({ length: n }, () => new FakeConsul().start()));
  fakes.push(...fs);
  const pool = new ConsulPool(parseConsulAddrs(fs.map((f) => f.addr).join(',')));
  pools.push(pool);
  return { fs, pool };
}

test('consulStatus reads /v1/status/leader and /v1/status/peers from the preferred agent', async () => {
  const { fs, pool } = await agents(2);
  const status = consulStatus(pool, 1500);
  assert.equal(await status.leader(), '127.0.0.1:8300');
  assert.deepEqual(await status.peers(), ['127.0.0.1:8300']);
  assert.deepEqual(fs[0]!.requests.map((r) => r.path), ['/v1/status/leader', '/v1/status/peers']);
  pool.reportFailure(0); // discovery moved on: so do the status reads
  await status.leader();
  assert.deepEqual(fs[1]!.requests.map((r) => r.path), ['/v1/status/leader']);
});

test('consulStatus bounds each read by its timeout', async () => {
  const { fs, pool } = await agents(1);
  fs[0]!.slow('/v1/status/', 5_000);
  const started = Date.now();
  await assert.rejects(consulStatus(pool, 300).leader());
  const took = Date.now() - started;
  assert.ok(took < 3_000, `rejected after ${took} ms, not at the 300 ms timeout`);
});
