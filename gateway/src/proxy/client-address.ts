import type { IncomingMessage } from 'node:http';

const plainIp = (ip: string) => (ip.startsWith('::ffff:') ? ip.slice(7) : ip);

export function clientIp(req: IncomingMessage): string {
  return plainIp(req.socket.remoteAddress ?? '');
}

/** host:port the client reached the gateway on: X-Forwarded-Host for a request without Host. */
export function ownAddress(req: IncomingMessage): string {
  const ip = plainIp(req.socket.localAddress ?? '');
  return `${ip.includes(':') ? `[${ip}]` : ip}:${req.socket.localPort ?? ''}`;
}
