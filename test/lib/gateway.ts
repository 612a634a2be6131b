import type { ServiceProcess } from './procs.js';

/** Ids of the instances a gateway process routes for `service`, sorted. */
export async function routedIds(gw: ServiceProcess, service = 'service-web'): Promise<string[]> {
  const body = (await (await fetch(`${gw.url}/_gateway/services`)).json()) as { services: Record<string, Array<{ id: string }>> };
  return (body.services[service] ?? []).map((i) => i.id).sort();
}

/** Instance id → instance key (node/id) of a service's routed instances: what /_gateway/stats is keyed by. */
export async function routedKeys(gw: ServiceProcess, service = 'service-web'): Promise<Map<string, string>> {
  const body = (await (await fetch(`${gw.url}/_gateway/services`)).json()) as { services: Record<string, Array<{ id: string; key: string }>> };
  return new Map((body.services[service] ?? []).map((i) => [i.id, i.key]));
}
