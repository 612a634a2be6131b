/** The Consul servers and which one leads, as last read. */
export interface ConsulServersState {
  /** "ip:port" of the raft leader; null when Consul reports none (or never answered). */
  leader: string | null;
  /** Raft peers ("ip:port"), sorted. */
  peers: string[];
  /** When these were last read successfully (ISO). */
  checkedAt: string | null;
  /** The last read's error, cleared by the next good read. */
  error: string | null;
}

/** The two status reads, from whichever agent discovery prefers (shared's consulStatus). */
export interface StatusSource {
  leader(): Promise<unknown>;
  peers(): Promise<unknown>;
}

export interface ConsulServersOptions {
  /** Reads at most this often. */
  intervalMs: number;
  /** Without interest for this long (no snapshot(), no wanted()), stop reading. */
  idleMs: number;
  /** Other interest, e.g. open dashboard streams. */
  wanted?: () => boolean;
  /** The raft leader moved (only after a first read: a baseline is no change). */
  onLeaderChange?: (from: string | null, to: string | null) => void;
  now?: () => number;
}

const asLeader = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);
const asPeers = (v: unknown) => (Array.isArray(v) ? v.filter((p): p is string => typeof p === 'string').sort() : []);

/**
 * Reads Consul's /v1/status/leader and /v1/status/peers (no ACL token needed)
 * for the dashboard's Consul panel: at most every intervalMs, only while
 * someone looks, and never on behalf of a request: a request gets the
 * cached answer. The timer is unref'd.
 */
export class ConsulServers {
  #state: ConsulServersState = { leader: null, peers: [], checkedAt: null, error: null };
  #lastWanted = -Infinity;
  #lastRead = -Infinity;
  #reading = false;
  #timer: NodeJS.Timeout | undefined;
  #readOnce = false;
  readonly #now: () => number;

  constructor(
    private readonly source: () => StatusSource,
    private readonly opts: ConsulServersOptions,
  ) {
    this.#now = opts.now ?? Date.now;
  }

  /** The cached answer; also marks interest, and reads if the cache is older than intervalMs. */
  snapshot(): ConsulServersState {
    this.#lastWanted = this.#now();
    void this.refresh();
    return this.#state;
  }

  /** Reads now unless a read is running or the last one is younger than intervalMs. */
  async refresh(): Promise<void> {
    const now = this.#now();
    // 0.8: a timer tick a little early must not skip a whole interval.
    if (this.#reading || now - this.#lastRead < this.opts.intervalMs * 0.8) return;
    this.#reading = true;
    this.#lastRead = now;
    try {
      const src = this.source();
      const [leader, peers] = await Promise.all([src.leader(), src.peers()]);
      const next = asLeader(leader);
      const prev = this.#state.leader;
      this.#state = { leader: next, peers: asPeers(peers), checkedAt: new Date(this.#now()).toISOString(), error: null };
      if (this.#readOnce && prev !== next) this.opts.onLeaderChange?.(prev, next);
      this.#readOnce = true;
    } catch (err) {
      this.#state = { ...this.#state, error: (err as Error).message || String(err) };
    } finally {
      this.#reading = false;
    }
  }

  start(): this {
    this.#timer ??= setInterval(() => {
      const interested = this.#now() - this.#lastWanted < this.opts.idleMs || (this.opts.wanted?.() ?? false);
      if (interested) void this.refresh();
    }, this.opts.intervalMs);
    this.#timer.unref();
    return this;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
