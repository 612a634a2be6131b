import { appendVia } from '@stack/shared';

/**
 * Header work for the proxy, done in one pass over the raw (flat) header
 * lists Node and the upstream client already have, so no per-request header objects or
 * Sets are built unless a Connection header names extra hop-by-hop headers.
 */

/** RFC 9110 §7.6.1 hop-by-hop headers, plus Expect, HTTP2-Settings and Host, which each hop sets for itself. */
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

/**
 * Headers a client could use to lie to an upstream about who it is: the
 * gateway rebuilds them from what it saw and never passes the client's on.
 * `Forwarded` (RFC 7239) is removed rather than rebuilt: X-Forwarded-* is the
 * one source upstreams get.
 */
const REBUILT = new Set([
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-real-ip',
  'forwarded',
  'via',
  'x-request-id',
]);

/** Connection values that name no header (the common case costs nothing). */
const PLAIN_CONNECTION = /^\s*(keep-alive|close)\s*$/i;

/** Lower-cased names listed in a Connection header; null when it names none. */
export function connectionTokens(value: string | undefined): Set<string> | null {
  if (!value || PLAIN_CONNECTION.test(value)) return null;
  const set = new Set<string>();
  for (const t of value.split(',')) {
    const name = t.trim().toLowerCase();
    if (name) set.add(name);
  }
  return set;
}

/** What the proxy needs to know about a request's headers. */
export interface RequestHead {
  /** Flat [name, value, ...] end-to-end headers to forward. */
  forward: string[];
  /** The client's X-Forwarded-For chain, unless Connection named it. */
  xff: string;
  /** The incoming Via, unless Connection named it. */
  via: string;
  host: string | undefined;
  requestId: string | undefined;
  contentLength: number;
  chunked: boolean;
  expectContinue: boolean;
}

/** One pass over the client's raw headers (Node's `req.rawHeaders`). */
export function scanRequestHeaders(raw: readonly string[]): RequestHead {
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      connection = connection === undefined ? raw[i + 1] : `${connection}, ${raw[i + 1]}`;
    }
  }
  const drop = connectionTokens(connection);
  const head: RequestHead = {
    forward: [],
    xff: '',
    via: '',
    host: undefined,
    requestId: undefined,
    contentLength: 0,
    chunked: false,
    expectContinue: false,
  };
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (HOP_BY_HOP.has(name) || REBUILT.has(name)) {
      if (name === 'host') head.host = value;
      else if (name === 'transfer-encoding') head.chunked = true;
      else if (name === 'expect') head.expectContinue = /100-continue/i.test(value);
      else if (name === 'x-request-id') head.requestId = value;
      else if (drop?.has(name)) continue;
      else if (name === 'x-forwarded-for') head.xff = head.xff ? `${head.xff}, ${value.trim()}` : value.trim();
      else if (name === 'via') head.via = head.via ? `${head.via}, ${value.trim()}` : value.trim();
      continue;
    }
    if (drop?.has(name)) continue;
    if (name === 'content-length') head.contentLength = Number(value);
    head.forward.push(raw[i]!, value);
  }
  return head;
}

export interface ForwardInfo {
  clientIp: string;
  proto: string;
  /** Host as the client asked for it, or the gateway's own address when the client sent none. */
  host: string;
  requestId: string;
  upstreamHost: string;
  /** This hop's Via entry: the protocol received ("1.0", "1.1") and the gateway's name. */
  via: { protocol: string; receivedBy: string };
}

/** The upstream request's headers: end-to-end ones, then the ones the gateway owns. */
export function upstreamRequestHeaders(head: RequestHead, info: ForwardInfo): string[] {
  const out = head.forward.slice();
  out.push(
    'x-forwarded-for', head.xff ? `${head.xff}, ${info.clientIp}` : info.clientIp,
    'x-forwarded-proto', info.proto,
    'x-forwarded-host', info.host,
    'x-real-ip', info.clientIp,
    'x-request-id', info.requestId,
    // A client's Via is re-serialised entry by entry, so a malformed one (an
    // unclosed comment, say) can't swallow this hop's entry.
    'via', head.via ? appendVia(head.via, info.via) : `${info.via.protocol} ${info.via.receivedBy}`,
    'host', info.upstreamHost,
  );
  return out;
}

/** Response headers the gateway sets itself, so an upstream's copy is dropped. */
const OWN_RESPONSE = new Set(['x-request-id', 'x-upstream-instance']);

/**
 * The client's response headers from the instance's list as the upstream
 * client gives it (framing fields already replaced by the one Content-Length
 * the parser checked): its end-to-end ones, as a flat list `res.writeHead`
 * takes, plus ours.
 */
export function clientResponseHeaders(raw: readonly string[], own: readonly string[]): string[] {
  const out: string[] = [];
  // Every Connection header counts, as a request's do (RFC 9110 §7.6.1: one list, however split).
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      connection = connection === undefined ? raw[i + 1] : `${connection}, ${raw[i + 1]}`;
    }
  }
  const drop = connectionTokens(connection);
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || OWN_RESPONSE.has(lower) || drop?.has(lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  for (const h of own) out.push(h);
  return out;
}


const HEADER_SAFE = /^[\x21-\x7e]*$/;

/**
 * A header value built from Consul data (an instance id may be any UTF-8):
 * printable ASCII as is, anything else percent-encoded, so writing it can
 * never throw.
 */
export function safeHeaderValue(value: string): string {
  if (HEADER_SAFE.test(value)) return value;
  return encodeURIComponent(value).replace(/[^\x21-\x7e]/g, '');
}
