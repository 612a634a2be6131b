/**
 * A catalog that had routable services and suddenly has none is more likely
 * a Consul that lost its state (a fresh agent, a restore) than every service
 * vanishing at once; such an answer is held until it persists.
 */
export function isSuspiciousEmpty(knownServices: number, newServices: number): boolean {
  return knownServices > 0 && newServices === 0;
}
