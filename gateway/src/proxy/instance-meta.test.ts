import { test } from 'node:test';
import assert from 'node:assert/strict';
import { instanceKey, type Instance } from '@stack/shared';
import { instanceMeta } from './instance-meta.js';

const inst = (address: string, port: number, id = 'web-1'): Instance => ({ id, service: 'web', address, port, node: 'n1', tags: [], key: instanceKey('n1', id) });

test('IPv4: upstream, host and authority as the upstream request needs them', () => {
  assert.deepEqual(instanceMeta(inst('10.0.0.5', 3000)), { upstream: '10.0.0.5:3000', host: '10.0.0.5', authority: '10.0.0.5:3000', headerId: 'web-1' });
});

test('IPv6: the host in brackets; upstream (for logs) stays address:port', () => {
  const m = instanceMeta(inst('fd00::5', 3000));
  assert.equal(m.host, '[fd00::5]');
  assert.equal(m.authority, '[fd00::5]:3000');
  assert.equal(m.upstream, 'fd00::5:3000');
});

test('an id that is no valid header value (Consul takes any UTF-8) is made safe once', () => {
  const m = instanceMeta(inst('10.0.0.5', 3000, 'wéb 1\n'));
  assert.match(m.headerId, /^[\x21-\x7e]+$/);
});

test('worked out once per instance object: the same meta', () => {
  const i = inst('10.0.0.6', 3001);
  assert.equal(instanceMeta(i), instanceMeta(i));
  // another object for the same address (the next table's) gets its own, equal, entry
  assert.notEqual(instanceMeta(inst('10.0.0.6', 3001)), instanceMeta(i));
  assert.equal(instanceMeta(inst('10.0.0.6', 3001)).upstream, '10.0.0.6:3001');
});
