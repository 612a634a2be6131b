import { sameInstances, type Instance } from './consul/instances.js';

/**
 * The route table: an immutable snapshot of the passing instances of every
 * routable service. Updates return a new table (or the same one when nothing
 * changed), so a request holds a consistent view without locks.
 */
export interface RouteTable {
  readonly version: number;
  /** When the set of services or instances last changed (null: never). */
  readonly changedAt: Date | null;
  readonly services: ReadonlyMap<string, readonly Instance[]>;
}

export const emptyTable: RouteTable = { version: 0, changedAt: null, services: new Map() };

export function setService(
  table: RouteTable,
  name: string,
  instances: readonly Instance[],
  now: Date = new Date(),
): RouteTable {
  const current = table.services.get(name);
  if (current && sameInstances(current, instances)) return table;
  const services = new Map(table.services);
  services.set(name, instances);
  return { version: table.version + 1, changedAt: now, services };
}

/** Drops every service not in `keep`. */
export function retainServices(
  table: RouteTable,
  keep: ReadonlySet<string>,
  now: Date = new Date(),
): RouteTable {
  const gone = [...table.services.keys()].filter((n) => !keep.has(n));
  if (gone.length === 0) return table;
  const services = new Map(table.services);
  for (const n of gone) services.delete(n);
  return { version: table.version + 1, changedAt: now, services };
}

export function tableToJSON(table: RouteTable) {
  return {
    version: table.version,
    changedAt: table.changedAt?.toISOString() ?? null,
    services: Object.fromEntries(
      [...table.services].map(([name, list]) => [
        name,
        list.map(({ id, address, port, node }) => ({ id, address, port, node })),
      ]),
    ),
  };
}
