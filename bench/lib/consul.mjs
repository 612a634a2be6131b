// A throwaway `consul agent -dev` on free loopback ports, and service registration through its
// HTTP API, so the gateway routes from a real Consul exactly as in production.
import { execFileSync } from 'node:child_process';
import { freePort, start, stop, waitFor } from './proc.mjs';

export function consulVersion(bin) {
  const m = /Consul v(\S+)/.exec(execFileSync(bin, ['version'], { encoding: 'utf8' }));
  return m ? m[1] : 'unknown';
}

export async function startConsul({ bin, dataDir, logFile, cpu }) {
  const [http, serfLan, serfWan, server] = [
    await freePort(),
    await freePort({ udp: true }),
    await freePort({ udp: true }),
    await freePort(),
  ];
  // 1.8.7 accepts -1 to disable DNS and gRPC; the other listeners need a port, so free ones.
  const args = [
    'agent', '-dev', '-node', 'bench', '-bind', '127.0.0.1', '-client', '127.0.0.1',
    '-data-dir', dataDir, '-http-port', String(http), '-dns-port', '-1', '-grpc-port', '-1',
    '-serf-lan-port', String(serfLan), '-serf-wan-port', String(serfWan), '-server-port', String(server),
    '-log-level', 'warn',
  ];
  const child = start('consul', bin, args, { cpu, logFile });
  const url = `http://127.0.0.1:${http}`;
  // Ready once it has elected itself leader (a registration before that can fail).
  await waitFor('consul', async () => (await (await fetch(`${url}/v1/status/leader`)).json()) !== '', { child });
  const api = async (method, path, body) => {
    const res = await fetch(`${url}${path}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`consul ${method} ${path}: ${res.status} ${await res.text()}`);
  };
  return {
    addr: `127.0.0.1:${http}`,
    child,
    /** Registers 127.0.0.1:port as an instance of `service` with a TTL check that starts passing. */
    async register(service, port) {
      const id = `${service}-${port}`;
      await api('PUT', '/v1/agent/service/register', {
        ID: id,
        Name: service,
        Address: '127.0.0.1',
        Port: port,
        Check: { CheckID: `${id}-ttl`, Name: 'bench TTL', TTL: '1h', Status: 'passing' },
      });
      return id;
    },
    /** Keeps the TTL checks passing however long the bench runs (called before each round). */
    async pass(ids) {
      for (const id of ids) await api('PUT', `/v1/agent/check/pass/${id}-ttl`);
    },
    async deregister(ids) {
      for (const id of ids) await api('PUT', `/v1/agent/service/deregister/${id}`).catch(() => {});
    },
    stop: () => stop(child),
  };
}
