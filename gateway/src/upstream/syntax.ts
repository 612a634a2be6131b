/**
 * Byte classes of RFC 9110/9112 the upstream parser checks every byte
 * against, as 256-entry tables (one array read per byte).
 */

const table = (pred: (c: number) => boolean) => {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = pred(c) ? 1 : 0;
  return t;
};

const TCHARS = "!#$%&'*+-.^_`|~";
/** tchar (RFC 9110 §5.6.2): header names, chunk extension names and token values. */
export const TOKEN = table(
  (c) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || TCHARS.includes(String.fromCharCode(c)),
);

/** field-vchar / SP / HTAB (RFC 9110 §5.5): VCHAR, obs-text, SP, HTAB; never NUL, CR, LF, other controls or DEL. */
export const FIELD_VALUE = table((c) => c === 0x09 || c === 0x20 || (c >= 0x21 && c <= 0x7e) || c >= 0x80);

/** qdtext (RFC 9110 §5.6.4): a quoted-string's bytes other than DQUOTE and backslash. */
export const QDTEXT = table((c) => c === 0x09 || c === 0x20 || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80);

/** What may follow a backslash in a quoted-pair: HTAB, SP, VCHAR, obs-text. */
export const QUOTED_PAIR = FIELD_VALUE;

/** A hex digit's value, -1 for any other byte. */
export const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) HEX[0x41 + c] = HEX[0x61 + c] = 10 + c;

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HTAB = 0x09;

/** The instance's answer can't be read as HTTP/1.1: the connection is unusable. */
export class ResponseParseError extends Error {
  override readonly name = 'ResponseParseError';
  readonly code = 'UPSTREAM_BAD_RESPONSE';
}
