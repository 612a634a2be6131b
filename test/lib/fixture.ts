import http from 'node:http';
import net from 'node:net';
import { gzipSync } from 'node:zlib';

export interface Fixture {
  server: http.Server;
  port: number;
  requests: Array<{ method: string; url: string }>;
  close(): Promise<void>;
}

/**
 * A small upstream with the behaviours proxy tests need (redirects, gzip,
 * slow and streamed answers, body echo). A real HTTP server registered in
 * Consul like any instance.
 */
export async function startFixture(name = 'fixture'): Promise<Fixture> {
  const requests: Fixture['requests'] = [];
  const server = http.createServer(async (req, res) => {
    requests.push({ method: req.method!, url: req.url! });
    const url = new URL(req.url!, 'http://x');
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-instance-id': `${name}:${port}` });
      res.end(JSON.stringify(body));
    };
    switch (url.pathname) {
      case '/health':
        return json(200, { status: 'ok' });
      case '/redirect':
        res.writeHead(302, { location: '/elsewhere', 'x-instance-id': `${name}:${port}` });
        return res.end();
      case '/gzip':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip', 'x-instance-id': `${name}:${port}` });
        return res.end(gzipSync('hello, compressed world'));
      case '/slow':
        await new Promise((r) => setTimeout(r, Number(url.searchParams.get('ms') ?? 1000)));
        return json(200, { slept: true });
      case '/stream':
        res.writeHead(200, { 'content-type': 'text/plain', 'x-instance-id': `${name}:${port}` });
        res.write('first\n');
        setTimeout(() => res.end('last\n'), Number(url.searchParams.get('ms') ?? 800));
        return;
      default: {
        let bytes = 0;
        for await (const chunk of req) bytes += (chunk as Buffer).length;
        return json(200, { method: req.method, url: req.url, headers: req.headers, bodyBytes: bytes, instance: `${name}:${port}` });
      }
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Sends a request line exactly as given (no client-side normalisation) and returns the status. */
export function rawRequest(port: number, target: string, extraHeaders = ''): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    sock.setTimeout(10_000, () => sock.destroy(new Error('raw request timed out')));
    sock.on('connect', () => sock.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extraHeaders}Connection: close\r\n\r\n`));
    sock.on('data', (b) => (data += b.toString()));
    sock.on('error', reject);
    sock.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), text: data }));
  });
}
