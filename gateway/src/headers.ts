import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1 hop-by-hop headers, plus ones undici refuses to forward. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'host',
  'http2-settings',
]);

/** Names listed in a Connection header are hop-by-hop for this message too. */
function connectionTokens(value: string | string[] | undefined): Set<string> {
  const raw = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(raw.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
}

function copyEndToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const drop = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || drop.has(name)) continue;
    out[name] = value;
  }
  return out;
}

export interface ForwardInfo {
  clientIp: string;
  proto: string;
  host: string | undefined;
  requestId: string;
  upstreamHost: string;
}

/** Headers for the upstream request: end-to-end ones plus X-Forwarded-* and X-Request-Id. */
export function upstreamRequestHeaders(
  headers: IncomingHttpHeaders,
  info: ForwardInfo,
): Record<string, string | string[]> {
  const out = copyEndToEnd(headers);
  const prior = headers['x-forwarded-for'];
  const chain = (Array.isArray(prior) ? prior.join(', ') : prior)?.trim();
  out['x-forwarded-for'] = chain ? `${chain}, ${info.clientIp}` : info.clientIp;
  out['x-forwarded-proto'] = info.proto;
  if (info.host) out['x-forwarded-host'] = info.host;
  out['x-request-id'] = info.requestId;
  out['host'] = info.upstreamHost;
  return out;
}

/** Headers for the client: the upstream's end-to-end ones, untouched otherwise. */
export function clientResponseHeaders(headers: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  return copyEndToEnd(headers as IncomingHttpHeaders);
}
