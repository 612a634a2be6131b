/**
 * The Via header (RFC 9110 §7.6.3), the hop record the gateway and /call use
 * to stop request loops. Every header is parsed within fixed bounds, and one
 * too long to read whole counts as a loop: a client can't hide a hop by
 * padding, and no header costs more than VIA_MAX_LENGTH characters of work.
 */

export interface ViaEntry {
  /** received-protocol: "1.1", or "HTTP/2" for a non-default protocol name. */
  protocol: string;
  /** received-by: a host[:port] or a pseudonym, as sent. */
  receivedBy: string;
  /** The comment without its outer parentheses, e.g. "call". */
  comment?: string;
}

export interface ParsedVia {
  /** The well-formed entries, in hop order; junk members are dropped. */
  entries: ViaEntry[];
  /** Over VIA_MAX_LENGTH characters or VIA_MAX_ENTRIES members: treat as a loop. */
  overLimit: boolean;
}

export type ViaHeader = string | readonly string[] | undefined | null;

export const VIA_MAX_LENGTH = 4096;
export const VIA_MAX_ENTRIES = 32;

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const PROTOCOL = new RegExp(`^(?:${TOKEN}/)?${TOKEN}$`);
// host, host:port, [v6]:port or a pseudonym.
const RECEIVED_BY = /^[!#$%&'*+.^_`|~0-9A-Za-z:[\]-]+$/;

export function parseVia(header: ViaHeader): ParsedVia {
  const raw = joinHeader(header);
  const text = raw.slice(0, VIA_MAX_LENGTH);
  const members = splitMembers(text, VIA_MAX_ENTRIES + 1);
  const entries: ViaEntry[] = [];
  for (const m of members.slice(0, VIA_MAX_ENTRIES)) {
    const e = parseEntry(m);
    if (e) entries.push(e);
  }
  return { entries, overLimit: raw.length > VIA_MAX_LENGTH || members.length > VIA_MAX_ENTRIES };
}

/**
 * The header to send on: the entries already there, re-written well-formed
 * (so junk such as an unclosed comment can't swallow the new entry), then
 * `entry`. An over-limit header is kept as it was, so it stays over the limit
 * at the next hop. Always append with this, never by string concatenation.
 */
export function appendVia(header: ViaHeader, entry: ViaEntry): string {
  const own = formatViaEntry(entry);
  const parsed = parseVia(header);
  if (parsed.overLimit) return `${joinHeader(header)}, ${own}`;
  return [...parsed.entries.map(formatViaEntry), own].join(', ');
}

export function formatViaEntry(e: ViaEntry): string {
  if (!PROTOCOL.test(e.protocol)) throw new TypeError(`invalid Via protocol ${JSON.stringify(e.protocol)}`);
  if (!RECEIVED_BY.test(e.receivedBy)) throw new TypeError(`invalid Via received-by ${JSON.stringify(e.receivedBy)}`);
  const comment = e.comment === undefined ? '' : ` (${e.comment.replace(/[\x00-\x1f\x7f]/g, '').replace(/[()\\]/g, '\\$&')})`;
  return `${e.protocol} ${e.receivedBy}${comment}`;
}

/** The received-by names, lowercased and without a port. */
export function viaNames(header: ViaHeader): string[] {
  return parseVia(header).entries.map((e) => hostOf(e.receivedBy));
}

/** Whether `name` already handled this request, or the header is too long to tell. */
export function viaVisited(header: ViaHeader, name: string): boolean {
  const parsed = parseVia(header);
  const want = name.toLowerCase();
  return parsed.overLimit || parsed.entries.some((e) => hostOf(e.receivedBy) === want);
}

/** How many entries carry `comment` (any case); Infinity when over the limit. */
export function viaCount(header: ViaHeader, comment: string): number {
  const parsed = parseVia(header);
  if (parsed.overLimit) return Infinity;
  const want = comment.toLowerCase();
  return parsed.entries.filter((e) => e.comment?.trim().toLowerCase() === want).length;
}

function joinHeader(header: ViaHeader): string {
  if (header == null) return '';
  // Node joins repeated Via lines with ", "; a raw array is joined the same way.
  return typeof header === 'string' ? header : header.join(', ');
}

/** Splits at commas outside comments; stops after `max` members. */
function splitMembers(text: string, max: number): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  const push = (end: number) => {
    const m = text.slice(start, end).trim();
    if (m) out.push(m);
  };
  for (let i = 0; i < text.length && out.length < max; i++) {
    const c = text[i];
    if (depth > 0 && c === '\\') i++;
    else if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (c === ',' && depth === 0) {
      push(i);
      start = i + 1;
    }
  }
  if (out.length < max) push(text.length);
  return out;
}

function parseEntry(member: string): ViaEntry | undefined {
  const m = /^(\S+?)[ \t]+([^\s(]+)[ \t]*(.*)$/s.exec(member);
  if (!m || !PROTOCOL.test(m[1]!) || !RECEIVED_BY.test(m[2]!)) return undefined;
  const entry: ViaEntry = { protocol: m[1]!, receivedBy: m[2]! };
  const rest = m[3]!;
  if (rest.startsWith('(')) entry.comment = readComment(rest);
  return entry;
}

/** The text of the comment `s` starts with, unescaped; an unclosed one runs to the end. */
function readComment(s: string): string {
  let depth = 0;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      out += s[++i] ?? '';
      continue;
    }
    if (c === '(' && depth++ === 0) continue;
    if (c === ')' && --depth === 0) break;
    out += c;
  }
  return out.trim();
}

function hostOf(receivedBy: string): string {
  const host = receivedBy.startsWith('[') ? receivedBy.slice(0, receivedBy.indexOf(']') + 1) || receivedBy : receivedBy.replace(/:\d*$/, '');
  return host.toLowerCase();
}
