import { z } from 'zod';
import { ConfigError, createLogger, intVar, listVar, logLevelVar, parseEnv } from '@stack/shared';
import { ConsulAclApi } from './api.js';
import { provision, ProvisionError } from './provision.js';
import { FileTokenStore } from './store.js';

/**
 * consul-acl-init: the compose stack's one-shot ACL provisioning (README "Stack security").
 *   node consul-acl/dist/main.js                     provision (idempotent), then exit 0
 *   node consul-acl/dist/main.js management-token    print the management token (for the UI)
 */
const addr = (v: string) => (/^https?:\/\//.test(v) ? v : `http://${v}`).replace(/\/+$/, '');
const schema = z.object({
  // The agent the ACL calls go to.
  CONSUL_HTTP_ADDR: z.string().trim().min(1).optional().transform((v) => addr(v ?? '127.0.0.1:8500')),
  // Every agent (servers and clients) to give its own agent token; default: just CONSUL_HTTP_ADDR.
  CONSUL_ACL_AGENTS: listVar().transform((l) => l.map(addr)),
  CONSUL_ACL_DIR: z.string().trim().min(1).optional().transform((v) => v ?? '/consul-acl'),
  // uid that reads each role's token file (group 0, mode 0440); "-" keeps the writer's.
  CONSUL_ACL_OWNERS: listVar(['management:0', 'gateway:1000', 'web:1000', 'registrator:65534', 'prometheus:65534']),
  REGISTRATOR_SERVICE_PREFIX: z.string().trim().regex(/^[A-Za-z0-9-]*$/, 'expected letters, digits and dashes').optional().transform((v) => v ?? 'service-'),
  REGISTRATOR_SERVICES: listVar(['gateway']),
  CONSUL_ACL_TIMEOUT_MS: intVar(120_000, 1_000, 3_600_000),
  LOG_LEVEL: logLevelVar,
});

function owners(list: string[]): Map<string, number | null> {
  const m = new Map<string, number | null>();
  for (const item of list) {
    const [role, uid] = item.split(':');
    if (!role || uid === undefined || !/^(\d+|-)$/.test(uid))
      throw new ConfigError(`invalid configuration:\n  CONSUL_ACL_OWNERS: expected role:uid items (uid a number or -), got ${JSON.stringify(item)}`);
    m.set(role, uid === '-' ? null : Number(uid));
  }
  if (!m.has('management')) throw new ConfigError('invalid configuration:\n  CONSUL_ACL_OWNERS: the management token needs an entry');
  return m;
}

async function main(): Promise<number> {
  const log = createLogger('consul-acl-init');
  let c;
  let store;
  try {
    c = parseEnv(schema, process.env);
    store = new FileTokenStore(c.CONSUL_ACL_DIR, owners(c.CONSUL_ACL_OWNERS));
  } catch (err) {
    log.fatal((err as Error).message);
    return 1;
  }
  if (process.argv[2] === 'management-token') {
    const t = store.read('management');
    if (!t) {
      console.error(`no management token in ${store.path('management')} yet: start the stack first (docker compose up -d)`);
      return 1;
    }
    console.log(t);
    return 0;
  }
  if (process.argv[2] !== undefined) {
    console.error('usage: main.js [management-token]');
    return 2;
  }
  const runLog = createLogger('consul-acl-init', c.LOG_LEVEL);
  const api = new ConsulAclApi(c.CONSUL_HTTP_ADDR);
  const agents = (c.CONSUL_ACL_AGENTS.length > 0 ? c.CONSUL_ACL_AGENTS : [c.CONSUL_HTTP_ADDR]).map((a) => new ConsulAclApi(a));
  const t0 = Date.now();
  try {
    const r = await provision({
      api,
      agents,
      store,
      options: { servicePrefix: c.REGISTRATOR_SERVICE_PREFIX, serviceNames: c.REGISTRATOR_SERVICES },
      log: runLog,
      timeoutMs: c.CONSUL_ACL_TIMEOUT_MS,
    });
    runLog.info({ ...r, ms: Date.now() - t0 }, r.bootstrapped ? 'ACLs bootstrapped and provisioned' : 'ACLs provisioned');
    return 0;
  } catch (err) {
    runLog.fatal({ ms: Date.now() - t0 }, err instanceof ProvisionError ? err.message : `ACL provisioning failed: ${(err as Error).message}`);
    return 1;
  }
}

process.exitCode = await main();
