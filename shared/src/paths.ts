/**
 * True when a raw (still percent-encoded) path has a `.` or `..` segment,
 * plain or encoded, or a backslash (which some servers read as a slash):
 * the ways a path can climb out of where it was sent.
 */
export function hasPathTraversal(rawPath: string): boolean {
  if (/\\|%5c/i.test(rawPath)) return true;
  return rawPath.split(/\/|%2f/i).some((seg) => /^(?:\.|%2e){1,2}$/i.test(seg));
}
