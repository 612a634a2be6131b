import { hasPathTraversal, isValidServiceName } from '@stack/shared';

export type Route =
  | { ok: true; service: string; path: string }
  | { ok: false; reason: 'invalid_service_name' | 'invalid_path' | 'no_route'; service: string | null };

/**
 * Splits a raw (still percent-encoded) request path into the service name and
 * the upstream path. The name must be a DNS-safe Consul name, checked before
 * any decoding, so nothing like `%2F`, `.`, `:` or `@` can get into it; the
 * name is only ever a key into the route table. The rest of the path is sent
 * to the picked instance as a path and never changes the host; dot segments
 * (plain or encoded) are refused so a path cannot climb out of its service.
 */
export function parseRoute(rawPath: string): Route {
  const m = /^\/([^/]*)(\/.*)?$/.exec(rawPath);
  if (!m) return { ok: false, reason: 'invalid_path', service: null };
  const name = m[1]!;
  if (!isValidServiceName(name)) return { ok: false, reason: 'invalid_service_name', service: null };
  const service = name.toLowerCase();
  const path = m[2] ?? '/';
  if (hasPathTraversal(path) || /\s/.test(path)) return { ok: false, reason: 'invalid_path', service };
  return { ok: true, service, path };
}
