import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConsulAgent } from '../lib/consul.js';
import { startGateway, type ServiceProcess } from '../lib/procs.js';
import { waitFor } from '../lib/ports.js';
import { routedIds } from '../lib/gateway.js';

// consul-acl-init (consul-acl/) against a real Consul agent with ACLs on and default deny,
// as the compose stack runs it: bootstrap, policies, one token per role, the agent's own token;
// then what each token may and may not do, and that a second run changes nothing.
const root = fileURLToPath(new URL('../../', import.meta.url));
const ACL = { acl: { enabled: true, default_policy: 'deny', down_policy: 'extend-cache' } };
// (no enable_token_persistence: a -dev agent would write acl-tokens.json into the working directory)

function runInit(env: Record<string, string>, args: string[] = []): Promise<{ code: number | null; out: string }> {
  const entry = join(root, 'consul-acl/dist/main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run "npm run build" first`);
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [entry, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('consul-acl-init against a real Consul with default-deny ACLs', { timeout: 180_000 }, () => {
  let consul: ConsulAgent;
  let dir: string;
  let env: Record<string, string>;
  let gw: ServiceProcess | undefined;
  const token = (role: string) => readFileSync(join(dir, role, 'token'), 'utf8').trim();

  /** Status of a call to the agent with the given token (none: anonymous). */
  async function status(method: string, path: string, tok?: string, body?: unknown): Promise<number> {
    const res = await fetch(`${consul.url}${path}`, {
      method,
      headers: tok ? { 'X-Consul-Token': tok } : {},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    await res.arrayBuffer();
    return res.status;
  }
  const reg = (name: string, id = `t-${name}`) => ({ ID: id, Name: name, Address: '127.0.0.1', Port: 1, Check: { TTL: '1h', Status: 'passing' } });

  before(async () => {
    consul = await new ConsulAgent({ mode: 'dev', config: ACL }).start();
    dir = mkdtempSync(join(tmpdir(), 'consul-acl-'));
    // "-": files keep the test's own uid, so this runs without root too
    env = { CONSUL_HTTP_ADDR: consul.httpAddr, CONSUL_ACL_DIR: dir, CONSUL_ACL_OWNERS: 'management:-,gateway:-,web:-,registrator:-', LOG_LEVEL: 'info' };
  });

  after(async () => {
    await gw?.stop().catch(() => gw?.kill());
    await consul?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('1. first run bootstraps and writes one token per role, readable by its owner only (0440)', async () => {
    const r = await runInit(env);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /ACLs bootstrapped and provisioned/);
    for (const role of ['management', 'gateway', 'web', 'registrator']) {
      assert.match(token(role), /^[0-9a-f-]{36}$/, role);
      assert.equal(statSync(join(dir, role, 'token')).mode & 0o777, 0o440, role);
    }
    consul.token = token('management');
  });

  test('2. anonymous callers get nothing: no register, no KV, no catalog', async () => {
    assert.equal(await status('PUT', '/v1/agent/service/register', undefined, reg('service-web')), 403);
    assert.equal(await status('PUT', '/v1/kv/x', undefined, 'v'), 403);
    assert.equal(await status('GET', '/v1/kv/x'), 403);
    const services = (await (await fetch(`${consul.url}/v1/catalog/services`)).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(services), [], 'the catalog is filtered to nothing');
  });

  test('3. registrator registers service-* and gateway, nothing else; gateway and web tokens only read', async () => {
    const r = token('registrator');
    assert.equal(await status('PUT', '/v1/agent/service/register', r, reg('service-acl')), 200);
    assert.equal(await status('PUT', '/v1/agent/service/register', r, reg('gateway')), 200);
    assert.equal(await status('PUT', '/v1/agent/service/register', r, reg('consul-evil')), 403);
    assert.equal(await status('PUT', '/v1/kv/x', r, 'v'), 403);
    for (const role of ['gateway', 'web']) {
      const t = token(role);
      assert.equal(await status('PUT', '/v1/agent/service/register', t, reg('service-web', `${role}-probe`)), 403, role);
      assert.equal(await status('PUT', '/v1/agent/service/deregister/t-service-acl', t), 403, role);
      assert.equal(await status('GET', '/v1/kv/x', t), 403, role);
      assert.equal(await status('PUT', '/v1/kv/x', t, 'v'), 403, role);
      const res = await fetch(`${consul.url}/v1/health/service/service-acl`, { headers: { 'X-Consul-Token': t } });
      assert.equal(res.status, 200, role);
      assert.equal(((await res.json()) as unknown[]).length, 1, `${role} sees service-acl's instance`);
    }
    assert.equal(await status('PUT', '/v1/agent/service/deregister/t-gateway', r), 200);
  });

  test('4. the agent runs with its own agent token (node write for itself only)', async () => {
    const self = (await consul.api('GET', '/v1/agent/self')) as { Config: { NodeName: string } };
    const tokens = (await consul.api('GET', '/v1/acl/tokens')) as Array<{ Description: string; Policies: Array<{ Name: string }> }>;
    const agentToken = tokens.find((t) => t.Description.startsWith(`consul-stack agent-${self.Config.NodeName}:`));
    assert.ok(agentToken, JSON.stringify(tokens.map((t) => t.Description)));
    assert.deepEqual(agentToken.Policies.map((p) => p.Name), [`consul-stack-agent-${self.Config.NodeName}`]);
  });

  test('5. a second run changes nothing; a lost token file comes back with the same token', async () => {
    const before = Object.fromEntries(['management', 'gateway', 'web', 'registrator'].map((r) => [r, token(r)]));
    const count = ((await consul.api('GET', '/v1/acl/tokens')) as unknown[]).length;
    const again = await runInit(env);
    assert.equal(again.code, 0, again.out);
    assert.match(again.out, /"created":\[\]/);
    rmSync(join(dir, 'gateway', 'token'));
    const third = await runInit(env);
    assert.equal(third.code, 0, third.out);
    for (const r of Object.keys(before)) assert.equal(token(r), before[r], r);
    assert.equal(((await consul.api('GET', '/v1/acl/tokens')) as unknown[]).length, count, 'no new token minted');
  });

  test('6. management-token prints the management token', async () => {
    const r = await runInit(env, ['management-token']);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out.trim(), token('management'));
  });

  test('7. the gateway routes with its token file; with a bad token it says why', async () => {
    gw = await startGateway(consul.httpAddr, { CONSUL_HTTP_TOKEN_FILE: join(dir, 'gateway', 'token') });
    await waitFor('service-acl routed', async () => (await routedIds(gw!, 'service-acl')).length === 1, 15_000);
    await gw.stop();
    gw = await startGateway(consul.httpAddr, { CONSUL_HTTP_TOKEN: '00000000-0000-0000-0000-000000000000' });
    const health = await waitFor(
      'the gateway to report the refused token',
      async () => {
        const h = (await (await fetch(`${gw!.url}/_gateway/health`)).json()) as { consul: { reasons?: string[] } };
        return JSON.stringify(h).match(/ACL|denied|token/i) ? h : undefined;
      },
      15_000,
    );
    // The health-state feed may be refused (and reported) before the catalog read logs its hint.
    await waitFor('the hint in the log', async () => gw!.logs.some((l) => /check the ACL token/.test(String(l.msg))), 5_000).catch(() => undefined);
    assert.ok(gw.logs.some((l) => /check the ACL token/.test(String(l.msg))), gw.raw.slice(-2000));
    assert.ok(health);
  });
});
