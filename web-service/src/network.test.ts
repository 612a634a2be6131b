import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type os from 'node:os';
import { externalAddresses, primaryAddress } from './network.js';

type Interfaces = ReturnType<typeof os.networkInterfaces>;
type Info = os.NetworkInterfaceInfo;

const v4 = (address: string, internal = false): Info => ({
  address,
  netmask: '255.255.255.0',
  family: 'IPv4',
  mac: '02:42:ac:11:00:02',
  internal,
  cidr: `${address}/24`,
});
const v6 = (address: string, internal = false): Info => ({
  address,
  netmask: 'ffff:ffff:ffff:ffff::',
  family: 'IPv6',
  mac: '02:42:ac:11:00:02',
  internal,
  cidr: `${address}/64`,
  scopeid: 0,
});

const loopbackOnly: Interfaces = { lo: [v4('127.0.0.1', true), v6('::1', true)] };
const container: Interfaces = {
  lo: [v4('127.0.0.1', true), v6('::1', true)],
  eth0: [v6('fe80::42:acff:fe11:2'), v4('172.17.0.2')],
};
const multi: Interfaces = {
  lo: [v4('127.0.0.1', true)],
  eth0: [v6('2001:db8::1')],
  eth1: [v4('10.0.0.5'), v6('2001:db8::2')],
  eth2: [v4('192.168.1.5')],
  empty: undefined,
};
const v6Only: Interfaces = { lo: [v4('127.0.0.1', true)], eth0: [v6('2001:db8::9')] };

describe('externalAddresses', () => {
  const cases: Array<[string, Interfaces, Array<[string, string, string]>]> = [
    ['no interfaces', {}, []],
    ['internal addresses are skipped', loopbackOnly, []],
    ['IPv4 first, then IPv6', container, [['eth0', '172.17.0.2', 'IPv4'], ['eth0', 'fe80::42:acff:fe11:2', 'IPv6']]],
    [
      'interface order kept within a family; undefined entries tolerated',
      multi,
      [
        ['eth1', '10.0.0.5', 'IPv4'],
        ['eth2', '192.168.1.5', 'IPv4'],
        ['eth0', '2001:db8::1', 'IPv6'],
        ['eth1', '2001:db8::2', 'IPv6'],
      ],
    ],
  ];
  for (const [name, ifaces, expected] of cases) {
    test(name, () => {
      assert.deepEqual(
        externalAddresses(ifaces),
        expected.map(([iface, address, family]) => ({ interface: iface, address, family })),
      );
    });
  }

  test('defaults to the real interfaces without throwing', () => {
    for (const a of externalAddresses()) assert.ok(a.family === 'IPv4' || a.family === 'IPv6');
  });
});

describe('primaryAddress', () => {
  const cases: Array<[string, string | undefined, Interfaces, string]> = [
    ['override wins', '10.9.9.9', container, '10.9.9.9'],
    ['override wins even with no interfaces', 'web-1.internal', {}, 'web-1.internal'],
    ['empty override is ignored', '', container, '172.17.0.2'],
    ['first non-internal IPv4', undefined, container, '172.17.0.2'],
    ['first IPv4 in interface order, never an IPv6', undefined, multi, '10.0.0.5'],
    ['only IPv6 → loopback', undefined, v6Only, '127.0.0.1'],
    ['only internal → loopback', undefined, loopbackOnly, '127.0.0.1'],
    ['nothing → loopback', undefined, {}, '127.0.0.1'],
  ];
  for (const [name, override, ifaces, expected] of cases) {
    test(name, () => {
      assert.equal(primaryAddress(override, ifaces), expected);
    });
  }
});
