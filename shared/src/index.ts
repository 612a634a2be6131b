export { createLogger, type Logger } from './logger.js';
export { ConfigError, parseEnv, intVar, listVar, boolVar, logLevelVar } from './env.js';
export { backoffDelay } from './backoff.js';
export {
  byIdThenNode,
  decideServiceAnswer,
  distrust,
  identityKey,
  instanceKey,
  isValidServiceName,
  judgeEntries,
  routableInstances,
  type EntryProblem,
  type EntryVerdict,
  type HealthCheck,
  type HealthEntry,
  type Instance,
  type ServiceAnswer,
  type ServiceDecision,
} from './consul/instances.js';
export type { TrackedServiceView } from './consul/service.js';
export { ConsulAgents, consulStatus, describeConsulError, ReadError, type ConsulAddress, type ConsulStatusReads, type QueryMeta } from './consul/agents.js';
export { readService } from './consul/reads.js';
export { AgentHint } from './consul/agent-hint.js';
export { Discovery, type DiscoveryOptions, type ConsulState, type DiscoveryState, type ReconcileView } from './consul/discovery.js';
export { emptyTable, setService, tableToJSON, type RouteTable } from './table.js';
export { RoundRobin } from './round-robin.js';
export { describeTokenVars, discoveryEnv, discoveryOptions, resolveConsulToken } from './consul/config.js';
export { answerAndClose, answerClientErrorsAsJson } from './http.js';
export { requestIdFrom } from './request-id.js';
export { hasPathTraversal } from './paths.js';
export {
  parseVia,
  appendVia,
  formatViaEntry,
  viaNames,
  viaVisited,
  viaCount,
  VIA_MAX_LENGTH,
  VIA_MAX_ENTRIES,
  type ViaEntry,
  type ParsedVia,
  type ViaHeader,
} from './via.js';
export {
  classifyFailure,
  errorCode,
  isRetryable,
  isTimeout,
  isTimeoutCode,
  IDEMPOTENT,
  type FailureKind,
  type AttemptFailure,
} from './upstream-failure.js';
export {
  ERROR_STATUS,
  errorBody,
  rawJsonResponse,
  sendJsonError,
  sendKoaJsonError,
  type ErrorBody,
  type ErrorCode,
  type JsonErrorContext,
} from './error-body.js';
export { createShutdown, type ShutdownOptions } from './shutdown.js';
export { escapeHtml } from './html.js';
