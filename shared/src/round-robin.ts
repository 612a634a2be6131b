/**
 * Round robin per key (service). The counter survives table updates, so a
 * changed instance list does not send a burst to its first entry.
 */
export class RoundRobin {
  #next = new Map<string, number>();

  /** The next item not rejected by `skip`; undefined when all are skipped. */
  pick<T>(key: string, items: readonly T[], skip?: (item: T) => boolean): T | undefined {
    const n = items.length;
    if (n === 0) return undefined;
    const start = this.#next.get(key) ?? 0;
    for (let i = 0; i < n; i++) {
      const idx = (start + i) % n;
      const item = items[idx]!;
      if (skip?.(item)) continue;
      this.#next.set(key, (idx + 1) % Number.MAX_SAFE_INTEGER);
      return item;
    }
    return undefined;
  }

  forget(key: string): void {
    this.#next.delete(key);
  }

  /** Forgets every key not in `keys`, so positions can't outlive their services. */
  retain(keys: Iterable<string>): void {
    const keep = new Set(keys);
    for (const k of this.#next.keys()) if (!keep.has(k)) this.#next.delete(k);
  }
}
