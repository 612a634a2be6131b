import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, sleep, waitFor } from './ports.js';

/** The consul binary from CONSUL_BIN or PATH; fails loudly with how to get one. */
function consulBin(): string {
  const bin = process.env.CONSUL_BIN || 'consul';
  const r = spawnSync(bin, ['version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      `Consul not found (tried "${bin}"). The integration tests need a real Consul agent.\n` +
        'On Debian bookworm: echo "deb http://deb.debian.org/debian bullseye main" > /etc/apt/sources.list.d/bullseye.list && ' +
        'printf "Package: *\\nPin: release n=bullseye\\nPin-Priority: 100\\n" > /etc/apt/preferences.d/bullseye-low && ' +
        'apt-get update && apt-get install -t bullseye consul\n' +
        '(or run bash .ci/apt-sources.sh first), or point CONSUL_BIN at a consul binary.',
    );
  }
  return bin;
}

export interface ConsulOptions {
  /** -dev (in-memory) or a real server with a data dir that survives restarts. */
  mode: 'dev' | 'server' | 'client';
  bind?: string;
  bootstrapExpect?: number;
  join?: string[];
  nodeName?: string;
  /** Extra agent configuration (JSON), e.g. an `acl` block. */
  config?: Record<string, unknown>;
}

/** A real Consul agent on free loopback ports, owned by a test. */
export class ConsulAgent {
  proc: ChildProcess | undefined;
  output = '';
  readonly dataDir: string;
  ports!: { http: number; serfLan: number; serfWan: number; server: number };
  /** Sent as X-Consul-Token by api() and the helpers built on it (a management token once ACLs are on). */
  token: string | undefined;

  constructor(readonly opts: ConsulOptions) {
    this.dataDir = mkdtempSync(join(tmpdir(), 'consul-test-'));
  }

  get bind(): string {
    return this.opts.bind ?? '127.0.0.1';
  }
  get httpAddr(): string {
    return `${this.bind}:${this.ports.http}`;
  }
  get url(): string {
    return `http://${this.httpAddr}`;
  }
  get serfLanAddr(): string {
    return `${this.bind}:${this.ports.serfLan}`;
  }

  async start(): Promise<this> {
    if (!this.ports) {
      const b = this.bind;
      // Four different ports: the OS may hand a just-released port out again.
      const picked: number[] = [];
      while (picked.length < 4) {
        const p = await freePort(b);
        if (!picked.includes(p)) picked.push(p);
      }
      const [http, serfLan, serfWan, server] = picked as [number, number, number, number];
      this.ports = { http, serfLan, serfWan, server };
    }
    const o = this.opts;
    const args = ['agent', '-bind', this.bind, '-client', this.bind, '-http-port', String(this.ports.http),
      '-dns-port', '-1', '-grpc-port', '-1', '-serf-lan-port', String(this.ports.serfLan),
      '-serf-wan-port', String(this.ports.serfWan), '-server-port', String(this.ports.server),
      '-node', o.nodeName ?? `test-${o.mode}-${this.ports.http}`, '-log-level', 'warn'];
    if (o.mode === 'dev') args.push('-dev');
    else {
      args.push('-data-dir', this.dataDir);
      if (o.mode === 'server') args.push('-server', '-bootstrap-expect', String(o.bootstrapExpect ?? 1));
    }
    for (const j of o.join ?? []) args.push('-retry-join', j);
    if (o.config) {
      const file = join(this.dataDir, 'extra-config.json');
      writeFileSync(file, JSON.stringify(o.config));
      args.push('-config-file', file);
    }
    this.proc = spawn(consulBin(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const take = (b: Buffer) => {
      this.output = (this.output + b.toString()).slice(-20_000);
    };
    this.proc.stdout!.on('data', take);
    this.proc.stderr!.on('data', take);
    await waitFor(`consul ${o.mode} at ${this.httpAddr} to be up`, () => this.alive(), 30_000, 100);
    return this;
  }

  /** Up and (for servers and clients in a cluster) seeing a leader. */
  async alive(): Promise<boolean> {
    if (this.proc?.exitCode !== null && this.proc?.exitCode !== undefined)
      throw new Error(`consul exited with ${this.proc.exitCode}: ${this.output}`);
    const res = await fetch(`${this.url}/v1/status/leader`).catch(() => undefined);
    if (!res?.ok) return false;
    return (await res.text()).includes(':');
  }

  /** Stops the agent (SIGKILL: Consul does not get to leave the cluster). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await Promise.race([exited, sleep(10_000)]);
  }

  async stop(): Promise<void> {
    await this.kill('SIGKILL');
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  async api(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: this.token ? { 'X-Consul-Token': this.token } : {},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`consul ${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /** Registers an instance the way registrator does: ID registrator:<container>:<port>, HTTP check on /health. */
  /** `checkUrl`: the HTTP check's URL when it is not the instance's own /health (a black hole whose check passes). */
  async register(r: { container: string; name: string; address: string; port: number; checkPath?: string; checkUrl?: string; interval?: string; tags?: string[] }): Promise<string> {
    const id = `registrator:${r.container}:${r.port}`;
    await this.api('PUT', '/v1/agent/service/register', {
      ID: id,
      Name: r.name,
      Tags: r.tags ?? [],
      Address: r.address,
      Port: r.port,
      Check: {
        HTTP: r.checkUrl ?? `http://${r.address}:${r.port}${r.checkPath ?? '/health'}`,
        Interval: r.interval ?? '1s',
        Timeout: '1s',
      },
    });
    return id;
  }

  async deregister(id: string): Promise<void> {
    await this.api('PUT', `/v1/agent/service/deregister/${encodeURIComponent(id)}`);
  }

  async maintenance(id: string, enable: boolean): Promise<void> {
    await this.api('PUT', `/v1/agent/service/maintenance/${encodeURIComponent(id)}?enable=${enable}&reason=test`);
  }

  /** IDs of the passing instances of `name`, straight from Consul. */
  async passing(name: string): Promise<string[]> {
    const list = (await this.api('GET', `/v1/health/service/${name}?passing`)) as Array<{ Service: { ID: string } }>;
    return list.map((e) => e.Service.ID).sort();
  }
}
