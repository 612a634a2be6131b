import type { Logger } from 'pino';
import { type ConsulError, type ConsulAgents, describeConsulError, endpoints, guard, type QueryMeta, ReadError, readOnce } from './agents.js';

/**
 * Consul's own health, for /_gateway/health: tracked from every answer and
 * failure discovery sees, and probed every few seconds for a lost leader.
 */

/** How Consul is doing, for /_gateway/health. */
export interface ConsulState {
  reachable: boolean;
  agent: string | null;
  lastContact: string | null;
  lastError: string | null;
  knownLeader: boolean;
  lastContactMs: number;
  degraded: boolean;
  reasons: string[];
}

/**
 * Tracks Consul's health from every answer and failure discovery sees:
 * reachable or not, leader or not, how stale, and what it refuses (a 403 is
 * a misconfiguration, reported as such, not "Consul is down"). Logs once per
 * state change.
 */
export class ConsulStatus {
  #reachable = true;
  #lastMeta: QueryMeta | undefined;
  #lastError: string | null = null;
  #noLeaderError = false;
  /** Feed-level reads Consul refuses (catalog, health state), by what. */
  #refused = new Map<string, string>();

  constructor(
    private readonly log: Logger,
    private readonly staleAfterMs: number,
  ) {}

  answered(meta: QueryMeta, what?: string): void {
    const prev = this.#lastMeta;
    // A fresh read's headers say nothing about staleness: keep the last stale read's figures.
    this.#lastMeta = meta.fresh && prev ? { ...prev, at: meta.at, agent: meta.agent } : meta;
    this.#noLeaderError = false;
    if (what) this.#refused.delete(what);
    if (!this.#reachable) {
      this.#reachable = true;
      this.log.info({ agent: meta.agent }, 'consul reachable again');
    }
    if (prev && prev.knownLeader !== meta.knownLeader && !meta.fresh) {
      if (meta.knownLeader) this.log.info({ agent: meta.agent }, 'consul has a leader again');
      else this.log.warn({ agent: meta.agent, lastContactMs: meta.lastContactMs }, 'consul reports no known leader; serving stale reads');
    }
  }

  /** `what` failed; `track` keeps a misconfiguration among the reasons until `what` answers again. */
  failed(e: ConsulError, agent: string, what: string, attempt: number, track = false): void {
    this.#lastError = `${agent}: ${describeConsulError(e)}`;
    if (e.kind === 'no-leader') {
      this.#noLeaderError = true;
    } else if (e.kind === 'unreachable') {
      if (this.#reachable) {
        this.#reachable = false;
        this.log.warn({ agent, err: e.message, query: what }, 'consul unreachable; keeping the last good table');
      } else {
        this.log.debug({ agent, err: e.message, query: what, attempt }, 'consul still unreachable');
      }
    } else if (track) {
      this.#refused.set(what, `consul refuses the ${what} read: ${describeConsulError(e)}`);
    }
  }

  /** The state, with `extra` reasons (holds, failing services) from the rest of discovery. */
  state(extra: readonly string[] = []): ConsulState {
    const meta = this.#lastMeta;
    const reasons: string[] = [];
    if (!this.#reachable) reasons.push('consul unreachable');
    if ((meta && !meta.knownLeader) || this.#noLeaderError) reasons.push('consul has no known leader');
    if (meta && meta.lastContactMs > this.staleAfterMs) reasons.push(`answers are ${meta.lastContactMs} ms stale`);
    reasons.push(...this.#refused.values(), ...extra);
    return {
      reachable: this.#reachable,
      agent: meta?.agent ?? null,
      lastContact: meta ? new Date(meta.at).toISOString() : null,
      lastError: this.#lastError,
      knownLeader: (meta?.knownLeader ?? false) && !this.#noLeaderError,
      lastContactMs: meta?.lastContactMs ?? 0,
      degraded: reasons.length > 0,
      reasons,
    };
  }
}

// ---------------------------------------------------------------- the leader probe

export interface LeaderProbeSink {
  answered(meta: QueryMeta): void;
  failed(error: ConsulError, agent: string, attempt: number): void;
}

/**
 * Asks the preferred agent for Consul's state every few seconds: a small
 * stale read (the Consul servers' own service) whose X-Consul-KnownLeader and
 * X-Consul-LastContact headers say whether there is a leader and how fresh
 * the answering server is. Blocking queries only answer when something
 * changes (or after their wait), so on their own they would notice a lost
 * quorum up to a minute late; this notices it within one interval.
 */
export class LeaderProbe {
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #stopped = false;

  constructor(
    private readonly agents: ConsulAgents,
    private readonly intervalMs: number,
    private readonly sink: LeaderProbeSink,
    private readonly log: Logger,
  ) {}

  start(): this {
    if (this.intervalMs > 0) this.#schedule(0);
    return this;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => void this.#once(), ms);
    this.#timer.unref();
  }

  async #once(): Promise<void> {
    try {
      const { meta } = await readOnce(this.agents, endpoints.serviceNodes('consul'));
      this.#failures = 0;
      if (!this.#stopped) guard(this.log, 'handling a leader probe answer', {}, () => this.sink.answered(meta), undefined);
    } catch (err) {
      this.#failures += 1;
      if (!this.#stopped && err instanceof ReadError) guard(this.log, 'handling a leader probe answer', {}, () => this.sink.failed(err.consul, err.agent, this.#failures), undefined);
    }
    if (!this.#stopped) this.#schedule(this.intervalMs);
  }
}
