import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sleep, waitFor } from './ports.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

export type ServiceKind = 'gateway' | 'web-service';

/** A real service process started from its build output (dist/). */
export class ServiceProcess {
  proc!: ChildProcess;
  port = 0;
  logs: Array<Record<string, unknown>> = [];
  raw = '';
  exit: Promise<number | null> = Promise.resolve(null);

  constructor(
    readonly kind: ServiceKind,
    readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const entry = `${root}${this.kind}/dist/index.js`;
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run "npm run build" first`);
    this.proc = spawn(process.execPath, [entry], {
      env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'info', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exit = new Promise((r) => this.proc.once('exit', (code) => r(code)));
    let buf = '';
    this.proc.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.raw = (this.raw + line + '\n').slice(-50_000);
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          if (rec.msg !== 'request') this.logs.push(rec);
        } catch {
          /* not JSON: kept in raw */
        }
      }
    });
    this.proc.stderr!.on('data', (b: Buffer) => {
      this.raw = (this.raw + b.toString()).slice(-50_000);
    });
    const listening = await waitFor(
      `${this.kind} to listen`,
      () => {
        if (this.proc.exitCode !== null) throw new Error(`${this.kind} exited: ${this.raw}`);
        return this.logs.find((l) => l.msg === 'listening');
      },
      15_000,
      20,
    );
    this.port = Number(listening.port);
    return this;
  }

  /** SIGTERM and wait for exit; returns the exit code. */
  async stop(timeoutMs = 15_000): Promise<number | null> {
    if (this.proc.exitCode !== null) return this.proc.exitCode;
    this.proc.kill('SIGTERM');
    const code = await Promise.race([this.exit, sleep(timeoutMs).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      this.proc.kill('SIGKILL');
      throw new Error(`${this.kind} did not exit within ${timeoutMs} ms of SIGTERM`);
    }
    return code;
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

export async function startGateway(consulAddr: string, env: Record<string, string> = {}) {
  return new ServiceProcess('gateway', { CONSUL_HTTP_ADDR: consulAddr, ...env }).start();
}

export async function startWeb(env: Record<string, string> = {}) {
  return new ServiceProcess('web-service', { SERVICE_ADDRESS: '127.0.0.1', ...env }).start();
}
