import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsulServers, type ConsulServersOptions, type StatusSource } from './consul-servers.js';

/** A status source the test answers by hand, counting reads. */
function fake() {
  const s = { leader: '10.0.0.1:8300' as unknown, peers: ['10.0.0.2:8300', '10.0.0.1:8300'] as unknown, fail: null as Error | null, reads: 0 };
  const source: StatusSource = {
    leader: async () => {
      s.reads++;
      if (s.fail) throw s.fail;
      return s.leader;
    },
    peers: async () => {
      if (s.fail) throw s.fail;
      return s.peers;
    },
  };
  return { s, source };
}

function rig(opts: Partial<ConsulServersOptions> = {}) {
  const clock = { now: 1_000_000 };
  const { s, source } = fake();
  const changes: Array<[string | null, string | null]> = [];
  const servers = new ConsulServers(() => source, {
    intervalMs: 3_000,
    idleMs: 30_000,
    onLeaderChange: (from, to) => changes.push([from, to]),
    now: () => clock.now,
    ...opts,
  });
  return { clock, s, servers, changes };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('ConsulServers', () => {
  test('nothing read before anyone asks', () => {
    const { servers, s } = rig();
    assert.equal(s.reads, 0);
    assert.deepEqual(servers.snapshot(), { leader: null, peers: [], checkedAt: null, error: null });
  });

  test('a snapshot answers from cache and reads in the background, at most every intervalMs', async () => {
    const { servers, s, clock } = rig();
    servers.snapshot();
    await settle();
    assert.equal(s.reads, 1);
    assert.deepEqual(servers.snapshot(), { leader: '10.0.0.1:8300', peers: ['10.0.0.1:8300', '10.0.0.2:8300'], checkedAt: new Date(clock.now).toISOString(), error: null });
    for (let i = 0; i < 20; i++) servers.snapshot();
    await settle();
    assert.equal(s.reads, 1, 'many dashboard requests, one read');
    clock.now += 3_000;
    servers.snapshot();
    await settle();
    assert.equal(s.reads, 2);
  });

  test('the leader moving is reported, but not the first read', async () => {
    const { servers, s, clock, changes } = rig();
    await servers.refresh();
    s.leader = '10.0.0.2:8300';
    clock.now += 3_000;
    await servers.refresh();
    s.leader = '';
    clock.now += 3_000;
    await servers.refresh();
    assert.deepEqual(changes, [['10.0.0.1:8300', '10.0.0.2:8300'], ['10.0.0.2:8300', null]]);
    assert.equal(servers.snapshot().leader, null, 'Consul answers "" when there is no leader');
  });

  test('a failed read keeps the last answer and says why; the next good read clears it', async () => {
    const { servers, s, clock } = rig();
    await servers.refresh();
    s.fail = new Error('connect ECONNREFUSED');
    clock.now += 3_000;
    await servers.refresh();
    assert.equal(servers.snapshot().leader, '10.0.0.1:8300');
    assert.equal(servers.snapshot().error, 'connect ECONNREFUSED');
    s.fail = null;
    clock.now += 3_000;
    await servers.refresh();
    assert.equal(servers.snapshot().error, null);
  });

  test('odd answers are read defensively', async () => {
    const { servers, s } = rig();
    s.leader = 42;
    s.peers = ['a', 7, null, 'b'];
    await servers.refresh();
    assert.deepEqual(servers.snapshot(), { ...servers.snapshot(), leader: null, peers: ['a', 'b'] });
  });

  test('the timer reads only while someone looks (a recent snapshot or wanted())', async () => {
    const look = { wanted: false };
    const { servers, s } = rig({ intervalMs: 20, idleMs: 60_000, now: Date.now, wanted: () => look.wanted });
    servers.start();
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(s.reads, 0, 'nobody looked: no read');
    look.wanted = true;
    await new Promise((r) => setTimeout(r, 80));
    servers.stop();
    assert.ok(s.reads >= 2, `reads while wanted: ${s.reads}`);
    const n = s.reads;
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(s.reads, n, 'no read after stop()');
  });
});
