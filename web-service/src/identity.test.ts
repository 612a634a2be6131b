import { test } from 'node:test';
import assert from 'node:assert/strict';
import type os from 'node:os';
import { createIdentity, identitySummary, uptimeSeconds } from './identity.js';

type Interfaces = ReturnType<typeof os.networkInterfaces>;

const v4 = (address: string, internal = false) =>
  ({ address, netmask: '255.255.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal, cidr: `${address}/16` }) as const;
const v6 = (address: string, internal = false) =>
  ({ address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal, cidr: `${address}/64`, scopeid: 0 }) as const;

const interfaces: Interfaces = {
  lo: [v4('127.0.0.1', true), v6('::1', true)],
  eth0: [v6('fd00::5'), v4('172.18.0.5')],
  eth1: [v4('10.0.0.7')],
};

const base = { service: 'service-web', port: 3000, interfaces, hostname: 'abc123', pid: 42 };

test('ip is the first external IPv4 and addresses list every external one, IPv4 first', () => {
  const id = createIdentity({ ...base, serviceAddress: undefined });
  assert.equal(id.ip, '172.18.0.5');
  assert.deepEqual(id.addresses, [
    { interface: 'eth0', address: '172.18.0.5', family: 'IPv4' },
    { interface: 'eth1', address: '10.0.0.7', family: 'IPv4' },
    { interface: 'eth0', address: 'fd00::5', family: 'IPv6' },
  ]);
});

test('SERVICE_ADDRESS overrides the reported ip but not the address list', () => {
  const id = createIdentity({ ...base, serviceAddress: '203.0.113.9' });
  assert.equal(id.ip, '203.0.113.9');
  assert.equal(id.addresses.length, 3);
});

test('only loopback: ip falls back to 127.0.0.1 and addresses is empty', () => {
  const id = createIdentity({ ...base, serviceAddress: undefined, interfaces: { lo: [v4('127.0.0.1', true)] } });
  assert.equal(id.ip, '127.0.0.1');
  assert.deepEqual(id.addresses, []);
});

test('instance id is the hostname plus a per-process suffix', () => {
  const a = createIdentity({ ...base, serviceAddress: undefined });
  const b = createIdentity({ ...base, serviceAddress: undefined });
  assert.match(a.instance, /^abc123-[0-9a-f]{8}$/);
  assert.notEqual(a.instance, b.instance);
  assert.equal(createIdentity({ ...base, serviceAddress: undefined, suffix: 'x1' }).instance, 'abc123-x1');
});

test('summary and uptime', () => {
  const id = createIdentity({ ...base, serviceAddress: undefined, suffix: 's', now: new Date(1_000) });
  assert.deepEqual(identitySummary(id), { service: 'service-web', instance: 'abc123-s', hostname: 'abc123', ip: '172.18.0.5', port: 3000 });
  assert.equal(uptimeSeconds(id, 3_500), 2.5);
  assert.equal(uptimeSeconds(id, 0), 0);
  assert.equal(id.pid, 42);
});
