import type { Logger } from '@stack/shared';
import { agentPolicy, isRoleToken, rolePolicies, type AclPolicySpec, type RoleSpec, type StackAclOptions } from './policies.js';
import { ConsulApiError, type AclPolicy, type AclToken, type ConsulAclApi } from './api.js';

/** Where tokens are kept between runs: the management token and one per role. */
export interface TokenStore {
  read(role: string): string | undefined;
  /** Writes (or rewrites) a role's token; roles the store does not keep are ignored. */
  write(role: string, secret: string): void;
}

export interface ProvisionDeps {
  /** The agent the ACL calls go to (no token). */
  api: ConsulAclApi;
  /** Every agent whose own agent token to set (servers and clients). */
  agents: ConsulAclApi[];
  store: TokenStore;
  options: StackAclOptions;
  log: Logger;
  /** Give up (with the last error) after this long: the cluster must have a leader by then. */
  timeoutMs: number;
  /** How long to wait for each agent before skipping it with a warning (its token from an earlier run stays). */
  agentTimeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface ProvisionResult {
  bootstrapped: boolean;
  created: string[];
  updated: string[];
  kept: string[];
  agents: string[];
  /** Agents that did not answer: a stopped server keeps the token it persisted on an earlier run. */
  skipped: string[];
}

export class ProvisionError extends Error {
  override name = 'ProvisionError';
}

const isNotFound = (err: unknown) =>
  err instanceof ConsulApiError && (err.status === 403 || err.status === 404) && /not found|permission denied/i.test(err.body);

/**
 * Makes Consul's ACLs what the stack needs, idempotently: bootstrap once (the management token
 * is kept in the store), then every policy and token exists with the right rules, each role's
 * token is in the store, and every agent uses its own agent token. A second run changes nothing;
 * a run after a lost token file finds the token again by its description instead of minting a new one.
 */
export async function provision(d: ProvisionDeps): Promise<ProvisionResult> {
  const sleep = d.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = Date.now() + d.timeoutMs;
  const result: ProvisionResult = { bootstrapped: false, created: [], updated: [], kept: [], agents: [], skipped: [] };

  /** Retries what fails while the cluster settles (no leader, legacy ACL mode, agent not up yet). */
  async function settle<T>(what: string, fn: () => Promise<T>, until = deadline): Promise<T> {
    let delay = 250;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof ConsulApiError && err.transient) || Date.now() + delay > until) throw err;
        if (attempt === 1 || attempt % 10 === 0) d.log.info({ what, err: err.message }, 'consul not ready yet; retrying');
        await sleep(delay);
        delay = Math.min(delay * 2, 2_000);
      }
    }
  }

  const management = await settle('management token', () => managementToken(d, result));
  const admin = d.api.withToken(management);

  const policies = new Map((await settle('list policies', () => admin.call<AclPolicy[]>('GET', '/v1/acl/policies'))).map((p) => [p.Name, p]));
  let tokens = await settle('list tokens', () => admin.call<AclToken[]>('GET', '/v1/acl/tokens'));

  async function ensurePolicy(spec: AclPolicySpec): Promise<void> {
    const have = policies.get(spec.Name);
    if (!have) {
      policies.set(spec.Name, await settle(`create policy ${spec.Name}`, () => admin.call<AclPolicy>('PUT', '/v1/acl/policy', spec)));
      result.created.push(`policy ${spec.Name}`);
      return;
    }
    const full = await settle(`read policy ${spec.Name}`, () => admin.call<AclPolicy>('GET', `/v1/acl/policy/${have.ID}`));
    if (full.Rules?.trim() !== spec.Rules.trim() || full.Description !== spec.Description) {
      await settle(`update policy ${spec.Name}`, () => admin.call('PUT', `/v1/acl/policy/${have.ID}`, { ID: have.ID, ...spec }));
      result.updated.push(`policy ${spec.Name}`);
    }
  }

  /** The role's secret: the stored one if Consul still knows it, else the token with the role's description, else a new one. */
  async function ensureToken(spec: RoleSpec): Promise<string> {
    const wantPolicies = [{ Name: spec.policy.Name }];
    let token: AclToken | undefined;
    const saved = d.store.read(spec.role);
    if (saved) {
      token = await settle(`check ${spec.role} token`, () => d.api.withToken(saved).call<AclToken>('GET', '/v1/acl/token/self')).catch((err) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      if (token && !isRoleToken(spec.role, token.Description)) token = undefined;
      if (token) token.SecretID = saved;
    }
    if (!token) {
      const listed = tokens.find((t) => isRoleToken(spec.role, t.Description));
      if (listed) token = await settle(`read ${spec.role} token`, () => admin.call<AclToken>('GET', `/v1/acl/token/${listed.AccessorID}`));
    }
    if (!token) {
      token = await settle(`create ${spec.role} token`, () =>
        admin.call<AclToken>('PUT', '/v1/acl/token', { Description: spec.description, Policies: wantPolicies }),
      );
      tokens = [...tokens, token];
      result.created.push(`token ${spec.role}`);
    } else if ((token.Policies ?? []).map((p) => p.Name).join(',') !== spec.policy.Name) {
      await settle(`update ${spec.role} token`, () =>
        admin.call('PUT', `/v1/acl/token/${token!.AccessorID}`, { AccessorID: token!.AccessorID, Description: spec.description, Policies: wantPolicies }),
      );
      result.updated.push(`token ${spec.role}`);
    } else {
      result.kept.push(`token ${spec.role}`);
    }
    if (!token.SecretID) throw new ProvisionError(`Consul gave no SecretID for the ${spec.role} token`);
    // rewritten every run: puts back a file that was lost and its ownership
    d.store.write(spec.role, token.SecretID);
    return token.SecretID;
  }

  for (const spec of rolePolicies(d.options)) {
    await ensurePolicy(spec.policy);
    await ensureToken(spec);
  }

  for (const agent of d.agents) {
    const agentAdmin = agent.withToken(management);
    const until = Math.min(deadline, Date.now() + (d.agentTimeoutMs ?? 15_000));
    let self;
    try {
      self = await settle(`agent ${agent.base}`, () => agentAdmin.call<{ Config: { NodeName: string } }>('GET', '/v1/agent/self'), until);
    } catch (err) {
      // `up` while a server is stopped (a fault drill) must not fail: that agent keeps the
      // token it persisted when it last got one.
      if (!(err instanceof ConsulApiError && err.transient)) throw err;
      d.log.warn({ agent: agent.base, err: err.message }, 'agent not answering; its agent token is left as it was');
      result.skipped.push(agent.base);
      continue;
    }
    const spec = agentPolicy(self.Config.NodeName);
    await ensurePolicy(spec.policy);
    const secret = await ensureToken(spec);
    // The agent keeps it across restarts (acl.enable_token_persistence).
    await settle(`set agent token on ${self.Config.NodeName}`, () => agentAdmin.call('PUT', '/v1/agent/token/agent', { Token: secret }));
    result.agents.push(self.Config.NodeName);
  }
  return result;
}

async function managementToken(d: ProvisionDeps, result: ProvisionResult): Promise<string> {
  const saved = d.store.read('management');
  if (saved) {
    try {
      await d.api.withToken(saved).call('GET', '/v1/acl/token/self');
      return saved;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      d.log.warn('the stored management token is not known to Consul; bootstrapping');
    }
  }
  try {
    const boot = await d.api.call<AclToken>('PUT', '/v1/acl/bootstrap');
    if (!boot?.SecretID) throw new ProvisionError('Consul answered the ACL bootstrap without a SecretID');
    d.store.write('management', boot.SecretID);
    result.bootstrapped = true;
    return boot.SecretID;
  } catch (err) {
    if (err instanceof ConsulApiError && !err.transient && /bootstrap no longer allowed|permission denied/i.test(err.body))
      throw new ProvisionError(
        "Consul's ACLs were bootstrapped before, but the management token kept for this stack is missing or unknown to Consul. " +
          'Either put the management token back (the consul-acl-management volume, file token), or start Consul over: ' +
          '`docker compose down -v` (deletes all Consul data), or reset the bootstrap as Consul documents ' +
          '(write the reset index from this error into acl-bootstrap-reset in the leader\'s data directory). Consul said: ' +
          err.body.trim(),
      );
    throw err;
  }
}
