/**
 * True when a raw (still percent-encoded) path has a `.` or `..` segment,
 * plain or encoded, or a backslash (which some servers read as a slash):
 * the ways a path can climb out of where it was sent.
 */
export function hasPathTraversal(rawPath: string): boolean {
  return TRAVERSAL.test(rawPath);
}

/** A backslash, or a segment (between slashes, plain or encoded) of one or two dots, plain or encoded: one test, no split (hot path). */
const TRAVERSAL = /\\|%5c|(?:^|\/|%2f)(?:\.|%2e){1,2}(?=$|\/|%2f)/i;
