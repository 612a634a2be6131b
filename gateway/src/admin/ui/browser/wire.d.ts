// The JSON the page reads from the gateway: only the fields it uses. A script
// compiled for the browser can't import the gateway's own types (page.ts,
// live-stats.ts, routes/explain.ts, events.ts); instead ../script.test.ts checks,
// when npm run typecheck compiles it, that they still fit these. A declaration
// file, so that the Node program can see them too.
declare namespace Dashboard {
  export interface ConsulJSON {
    reachable: boolean;
    agent: string | null;
    lastContact: string | null;
    lastContactMs: number;
    lastError: string | null;
    knownLeader: boolean;
    degraded: boolean;
    reasons: readonly string[];
  }

  export interface ServersJSON {
    leader: string | null;
    peers: readonly string[];
    checkedAt: string | null;
    error: string | null;
  }

  export interface InstanceJSON {
    /** The instance's identity: node/id (two nodes may use one service id). */
    key: string;
    id: string;
    address: string;
    port: number;
    node: string;
    ejectedUntil?: string;
    joinedAt: string | null;
  }

  /** GET /_gateway/dashboard */
  export interface SnapshotJSON {
    synced: boolean;
    version: number;
    changedAt: string | null;
    services: Record<string, readonly InstanceJSON[]>;
    consul: ConsulJSON;
    servers: ServersJSON | null;
  }

  export interface BalancerJSON {
    inflight: number;
    latencyMs: number | null;
    score: number | null;
    failures: number;
  }

  export interface WindowJSON {
    rps: number;
    errorRate: number;
    p50Ms: number | null;
    p99Ms: number | null;
  }

  export interface InstanceStatsJSON extends WindowJSON {
    balancer?: BalancerJSON;
  }

  export interface ServiceStatsJSON extends WindowJSON {
    /** By instance key (node/id). */
    instances: Record<string, InstanceStatsJSON>;
  }

  /** GET /_gateway/stats */
  export interface StatsJSON {
    windowSeconds: number;
    services: Record<string, ServiceStatsJSON>;
  }

  export interface RouteTargetJSON {
    service: string;
    weight: number | null;
    strip: string | null;
    live: boolean;
    percent: number;
  }

  export interface RouteLoserJSON {
    service: string;
    reason: string;
  }

  export interface RouteJSON {
    route: string;
    targets: readonly RouteTargetJSON[];
    losers: readonly RouteLoserJSON[];
  }

  export interface RejectedTagJSON {
    service: string;
    tag: string;
    reason: string;
  }

  /** GET /_gateway/routes */
  export interface RoutesJSON {
    routes: readonly RouteJSON[];
    defaultRouteOff: readonly string[];
    rejectedTags: readonly RejectedTagJSON[];
  }

  /** One event of GET /_gateway/events (the SSE data). */
  export interface EventJSON {
    at: string;
    type: string;
    service?: string;
    instance?: string;
    detail: string;
  }
}
