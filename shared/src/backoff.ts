/**
 * Exponential backoff with full jitter: a random delay in [base/2, cap] where
 * cap = min(max, base * 2^attempt). Jitter keeps many watchers from hitting a
 * recovering Consul at the same instant; the floor keeps retries from spinning.
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  const floor = Math.min(baseMs / 2, cap);
  return Math.round(floor + random() * (cap - floor));
}
