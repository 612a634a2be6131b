import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { externalAddresses, primaryAddress, type AddressInfo } from './network.js';

export interface Identity {
  service: string;
  /** Unique per process: a restarted container is a new instance. */
  instance: string;
  hostname: string;
  ip: string;
  addresses: AddressInfo[];
  /** Set again once listening, so PORT=0 reports the real port. */
  port: number;
  pid: number;
  startedAt: Date;
}

export interface IdentityInput {
  service: string;
  serviceAddress: string | undefined;
  port: number;
  interfaces?: ReturnType<typeof os.networkInterfaces>;
  hostname?: string;
  pid?: number;
  now?: Date;
  suffix?: string;
}

export function createIdentity(input: IdentityInput): Identity {
  const interfaces = input.interfaces ?? os.networkInterfaces();
  const hostname = input.hostname ?? os.hostname();
  const suffix = input.suffix ?? randomUUID().slice(0, 8);
  return {
    service: input.service,
    instance: `${hostname}-${suffix}`,
    hostname,
    ip: primaryAddress(input.serviceAddress, interfaces),
    addresses: externalAddresses(interfaces),
    port: input.port,
    pid: input.pid ?? process.pid,
    startedAt: input.now ?? new Date(),
  };
}

/** The short form /call puts in `from`. */
export function identitySummary(id: Identity) {
  return { service: id.service, instance: id.instance, hostname: id.hostname, ip: id.ip, port: id.port };
}

export function uptimeSeconds(id: Identity, now = Date.now()): number {
  return Math.max(0, Math.round((now - id.startedAt.getTime()) / 100) / 10);
}
