namespace Dashboard {
  export const POLL_MS = 1000;
  /** A hidden tab still refreshes, less often. */
  export const HIDDEN_POLL_MS = 5000;
  /** A gateway without /_gateway/stats is asked again this often, not every poll. */
  export const STATS_RETRY_MS = 5000;
  export const EXPLAIN_MS = 2000;
  export const MAX_EVENTS = 200;

  /** Everything the page knows; each render draws from it. */
  export interface PageState {
    dash: SnapshotJSON | null;
    dashError: string | null;
    stats: StatsJSON | null;
    statsNote: string;
    statsNextAt: number;
    routes: RoutesJSON | null;
    pollTimer: number | undefined;
    polling: boolean;
    /** A poll was asked for while one ran: run another right after it. */
    again: boolean;
    /** The service the "why" panel explains. */
    why: string | null;
    explain: unknown;
    explainNote: string;
    explainTimer: number | undefined;
    /** Event ids shown, so a replayed event is not shown twice. */
    seen: Record<string, 1>;
    seenCount: number;
    /** The gateway process the last event came from (the part of its id before the dot). */
    boot: string | null;
    lastId: string | null;
    /** Whether the server-rendered timeline was replaced by the stream's. */
    cleared: boolean;
  }

  export const st: PageState = {
    dash: null,
    dashError: null,
    stats: null,
    statsNote: 'stats: waiting',
    statsNextAt: 0,
    routes: null,
    pollTimer: undefined,
    polling: false,
    again: false,
    why: null,
    explain: null,
    explainNote: '',
    explainTimer: undefined,
    seen: {},
    seenCount: 0,
    boot: null,
    lastId: null,
    cleared: false,
  };

  function own<T>(map: Record<string, T> | undefined, key: string): T | null {
    return map && Object.prototype.hasOwnProperty.call(map, key) ? map[key]! : null;
  }

  /** A service's live figures, when the stats know it. */
  export function statsFor(name: string): ServiceStatsJSON | null {
    return own(st.stats ? st.stats.services : undefined, name);
  }

  export function instStats(svc: ServiceStatsJSON | null, key: string): InstanceStatsJSON | null {
    return own(svc ? svc.instances : undefined, key);
  }
}
