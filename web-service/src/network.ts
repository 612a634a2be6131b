import os from 'node:os';

export interface AddressInfo {
  interface: string;
  address: string;
  family: 'IPv4' | 'IPv6';
}

type Interfaces = ReturnType<typeof os.networkInterfaces>;

/** Every non-loopback address of this host, IPv4 first, in interface order. */
export function externalAddresses(interfaces: Interfaces = os.networkInterfaces()): AddressInfo[] {
  const out: AddressInfo[] = [];
  for (const [name, addrs] of Object.entries(interfaces)) {
    for (const a of addrs ?? []) {
      if (a.internal) continue;
      out.push({ interface: name, address: a.address, family: a.family });
    }
  }
  return out.sort((a, b) => (a.family === b.family ? 0 : a.family === 'IPv4' ? -1 : 1));
}

/**
 * The address other hosts reach this process on: SERVICE_ADDRESS when set
 * (what registrator and Consul would advertise), else the first non-internal
 * IPv4 (a container has exactly one on its compose network), else loopback.
 */
export function primaryAddress(
  override: string | undefined,
  interfaces: Interfaces = os.networkInterfaces(),
): string {
  if (override) return override;
  return externalAddresses(interfaces).find((a) => a.family === 'IPv4')?.address ?? '127.0.0.1';
}
