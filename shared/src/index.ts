export { createLogger, type Logger } from './logger.js';
export { ConfigError, parseEnv, intVar, listVar, boolVar, logLevelVar } from './env.js';
export { backoffDelay } from './backoff.js';
export { externalAddresses, primaryAddress, type AddressInfo } from './network.js';
export { parseConsulAddrs, type ConsulAddress } from './consul/addresses.js';
export {
  agentLostInstances,
  isValidServiceName,
  routableInstances,
  routableServiceNames,
  sameInstances,
  type Instance,
  type HealthEntry,
} from './consul/instances.js';
export { ConsulPool } from './consul/pool.js';
export { BlockingQuery, type QueryMeta } from './consul/blocking.js';
export { Discovery, type DiscoveryOptions, type ConsulState } from './consul/discovery.js';
export { emptyTable, setService, retainServices, tableToJSON, type RouteTable } from './table.js';
export { RoundRobin } from './picker.js';
export { consulAddrsVar, discoveryEnv, discoveryOptions } from './consul/config.js';
export { answerClientErrorsAsJson } from './http.js';
export { requestIdFrom } from './request-id.js';
export { hasPathTraversal } from './paths.js';
