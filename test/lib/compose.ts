import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from './ports.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface Exec {
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with its output when it fails or overruns. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<Exec> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd ?? repoRoot, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}\n${stdout}`.slice(0, 8000)));
        else resolve({ stdout, stderr });
      },
    );
  });
}

export const docker = (args: string[], timeoutMs?: number) => run('docker', args, { timeoutMs });

export interface Container {
  id: string;
  name: string;
  service: string;
  ip: string;
  running: boolean;
  paused: boolean;
  /** Epoch ms of Docker's last start of the container. */
  startedAt: number;
}

/**
 * One compose project built from the repository's own compose files. Tests
 * and the chaos run talk to it only through ports published on 127.0.0.1 and
 * through docker / docker compose.
 */
export class ComposeStack {
  gatewayPort = 3000;
  consulPort = 8500;
  /** The management token consul-acl-init made (ACLs are on, default deny); read after `up`. */
  consulToken: string | undefined;

  constructor(
    readonly project: string,
    readonly files: string[] = ['docker-compose.yml'],
    readonly env: Record<string, string> = {},
  ) {}

  /** A project on free ports, so it never collides with a stack a developer runs. */
  static async forTests(project: string, env: Record<string, string> = {}): Promise<ComposeStack> {
    const s = new ComposeStack(project, ['docker-compose.yml'], env);
    s.gatewayPort = await freePort();
    s.consulPort = await freePort();
    return s;
  }

  get gatewayUrl(): string {
    return `http://127.0.0.1:${this.gatewayPort}`;
  }
  get consulUrl(): string {
    return `http://127.0.0.1:${this.consulPort}`;
  }

  compose(args: string[], opts: { files?: string[]; timeoutMs?: number } = {}): Promise<Exec> {
    const files = (opts.files ?? this.files).flatMap((f) => ['-f', f]);
    return run('docker', ['compose', '-p', this.project, ...files, ...args], {
      timeoutMs: opts.timeoutMs ?? 300_000,
      env: { ...process.env, GATEWAY_PORT: String(this.gatewayPort), CONSUL_UI_PORT: String(this.consulPort), ...this.env },
    });
  }

  withScale(): string[] {
    return [...this.files, 'docker-compose.scale.yml'];
  }

  async up(opts: { files?: string[]; extra?: string[] } = {}): Promise<void> {
    await this.compose(['up', '-d', '--wait', ...(opts.extra ?? [])], { files: opts.files, timeoutMs: 600_000 });
    this.consulToken ??= await this.managementToken();
  }

  /** The management token, the way README.md tells people to get it (for the UI). */
  async managementToken(): Promise<string> {
    const { stdout } = await this.compose(['run', '--rm', '--no-deps', '-T', 'consul-acl-init', 'node', 'consul-acl/dist/main.js', 'management-token'], { timeoutMs: 60_000 });
    const token = stdout.trim().split('\n').pop()!.trim();
    if (!/^[0-9a-f-]{36}$/.test(token)) throw new Error(`no management token from consul-acl-init: ${stdout}`);
    return token;
  }

  async down(): Promise<void> {
    await this.compose(['down', '-v', '--remove-orphans', '-t', '5'], { files: this.withScale(), timeoutMs: 180_000 });
    this.consulToken = undefined;
  }

  async containers(service: string, all = false): Promise<Container[]> {
    const { stdout } = await this.compose(['ps', '-q', ...(all ? ['-a'] : []), service], { files: this.withScale() });
    const ids = stdout.split('\n').map((s) => s.trim()).filter(Boolean);
    if (ids.length === 0) return [];
    const { stdout: js } = await docker(['inspect', ...ids]);
    return (JSON.parse(js) as Array<Record<string, any>>).map((c) => ({
      id: c.Id as string,
      name: (c.Name as string).replace(/^\//, ''),
      service: c.Config.Labels['com.docker.compose.service'] as string,
      ip: Object.values(c.NetworkSettings.Networks as Record<string, { IPAddress: string }>)[0]?.IPAddress ?? '',
      running: c.State.Running as boolean,
      paused: c.State.Paused as boolean,
      startedAt: Date.parse(c.State.StartedAt as string),
    }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** GET as JSON; calls to the Consul agent carry the management token. */
  async json<T>(url: string): Promise<T> {
    const headers: Record<string, string> = this.consulToken && url.startsWith(this.consulUrl) ? { 'X-Consul-Token': this.consulToken } : {};
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }

  /** Instances the gateway routes for `service`, as registrator ids. */
  async routed(service = 'service-web'): Promise<Array<{ id: string; address: string }>> {
    const s = await this.json<{ services: Record<string, Array<{ id: string; address: string }>> }>(`${this.gatewayUrl}/_gateway/services`);
    return s.services[service] ?? [];
  }

  /** Registrator's id for a container's port 3000. */
  static serviceId(c: Container): string {
    return `registrator:${c.name}:3000`;
  }

  async leader(): Promise<string> {
    const l = await this.json<string>(`${this.consulUrl}/v1/status/leader`);
    return l;
  }

  /** The Consul server container that is the leader now. */
  async leaderContainer(): Promise<Container> {
    const addr = (await this.leader()).split(':')[0];
    const servers = (await Promise.all([1, 2, 3].map((i) => this.containers(`consul-server-${i}`)))).flat();
    const c = servers.find((s) => s.ip === addr);
    if (!c) throw new Error(`leader ${addr} is none of ${servers.map((s) => s.ip)}`);
    return c;
  }

  async waitRouted(count: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(`${count} web instances routed`, async () => (await this.routed()).length === count, timeoutMs, 100);
  }
}

