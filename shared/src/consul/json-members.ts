/**
 * The members of a JSON object's text, and which of them differ between two
 * versions of it, without parsing either: for an answer of thousands of
 * members of which one changed (the agent's registrations, agent-hint.ts),
 * parsing all of them costs more than Consul's answer did, and the garbage
 * costs the collector as much again.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/**
 * Where each top-level member of the JSON object in `text` starts and ends:
 * `[start0, end0, start1, end1, ...]`, each member being `"key":value` from
 * its opening quote to the byte after its value. Undefined when `text` is not
 * a JSON object with balanced brackets and strings (a truncated answer, an
 * array, a proxy's HTML page): the caller must not guess then. Values are not
 * validated: JSON.parse of a member's text does that.
 */
export function objectMembers(text: Uint8Array): number[] | undefined {
  let i = 0;
  const n = text.length;
  while (i < n && isSpace(text[i]!)) i++;
  if (text[i] !== OPEN_BRACE) return undefined;
  i++;
  const out: number[] = [];
  let depth = 1;
  let start = -1; // the current member's first byte, -1 between members
  let end = -1; // the byte after its last non-space byte
  for (; i < n; i++) {
    const b = text[i]!;
    if (b === QUOTE) {
      if (depth === 1 && start < 0) start = i;
      for (i++; i < n; i++) {
        const c = text[i]!;
        if (c === BACKSLASH) i++;
        else if (c === QUOTE) break;
      }
      if (i >= n) return undefined;
      end = i + 1;
      continue;
    }
    if (isSpace(b)) continue;
    if (b === OPEN_BRACE || b === OPEN_BRACKET) depth++;
    else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
      depth--;
      if (depth === 0) {
        if (b !== CLOSE_BRACE) return undefined;
        if (start >= 0) out.push(start, end);
        for (i++; i < n; i++) if (!isSpace(text[i]!)) return undefined;
        return out;
      }
    } else if (b === COMMA && depth === 1) {
      if (start < 0) return undefined;
      out.push(start, end);
      start = -1;
      continue;
    } else if (b !== COLON && depth === 1 && start < 0) return undefined; // a member must start with its key
    end = i + 1;
  }
  return undefined;
}

/** Bytes two buffers have in common from the start, and then from the end (never overlapping). */
export function commonEnds(a: Uint8Array, b: Uint8Array): { prefix: number; suffix: number } {
  const max = Math.min(a.length, b.length);
  const prefix = commonRun(a, b, max, (k) => k, (k) => k);
  const suffix = commonRun(a, b, max - prefix, (k) => a.length - 1 - k, (k) => b.length - 1 - k);
  return { prefix, suffix };
}

// Compared a block at a time through Buffer.compare's memcmp, then byte by byte within the block that differs.
const BLOCK = 4096;

function commonRun(a: Uint8Array, b: Uint8Array, max: number, at: (k: number) => number, bt: (k: number) => number): number {
  const forward = at(1) > at(0);
  let k = 0;
  while (k + BLOCK <= max) {
    const [as, bs] = forward ? [at(k), bt(k)] : [at(k + BLOCK - 1), bt(k + BLOCK - 1)];
    if (Buffer.compare(a.subarray(as, as + BLOCK), b.subarray(bs, bs + BLOCK)) !== 0) break;
    k += BLOCK;
  }
  while (k < max && a[at(k)] === b[bt(k)]) k++;
  return k;
}

/**
 * The members of `before` and of `after` (as objectMembers gave them) that
 * may differ: every member outside the span between the two texts' common
 * start and common end is byte for byte the same on both sides, so only the
 * members that touch that span are returned, as `{...}` texts to parse (empty
 * on one side when the span holds no member there: a pure insertion or
 * removal). A member beside the span may come along; comparing the parsed
 * members tells.
 */
export function changedMembers(
  before: Uint8Array,
  beforeMembers: readonly number[],
  after: Uint8Array,
  afterMembers: readonly number[],
): { before: string; after: string } | undefined {
  if (before.length === after.length && Buffer.compare(before, after) === 0) return undefined;
  const { prefix, suffix } = commonEnds(before, after);
  return {
    before: touching(before, beforeMembers, prefix, before.length - suffix),
    after: touching(after, afterMembers, prefix, after.length - suffix),
  };
}

/** The members overlapping [from, to), widened by a byte each side so that a member ending or starting at the span counts. */
function touching(text: Uint8Array, members: readonly number[], from: number, to: number): string {
  let first = -1;
  let last = -1;
  for (let k = 0; k < members.length; k += 2) {
    if (members[k + 1]! < from - 1) continue;
    if (members[k]! > to) break;
    if (first < 0) first = k;
    last = k;
  }
  if (first < 0) return '{}';
  return `{${Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8', members[first], members[last + 1])}}`;
}
