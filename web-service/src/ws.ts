import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { answerAndClose, rawJsonResponse, type Logger } from '@stack/shared';
import type { Identity } from './identity.js';

/** Largest message echoed (bytes); bigger ones close the socket with 1009, as ws does. */
export const WS_MAX_PAYLOAD = 64 * 1024;

/**
 * GET /ws (WebSocket): says which instance answered in a first JSON message
 * ({type: "hello", service, instance, hostname, ip, requestId}), then echoes
 * every message back as it came (text as text, binary as binary), so a user
 * can watch an upgrade reach an instance through the gateway.
 */
export function attachEcho(server: Server, deps: { identity: Identity; log: Logger }) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: WS_MAX_PAYLOAD });
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    const { identity } = deps;
    ws.send(
      JSON.stringify({
        type: 'hello',
        service: identity.service,
        instance: identity.instance,
        hostname: identity.hostname,
        ip: identity.ip,
        requestId: req.headers['x-request-id'] ?? null,
      }),
    );
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', (err) => deps.log.debug({ err: err.message }, 'websocket error'));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/ws' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket')
      return answerAndClose(socket, rawJsonResponse('not_found', `no WebSocket endpoint at ${path}; try /ws`));
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  return {
    /** Shutdown: every socket gets a 1001 (going away). */
    close() {
      for (const ws of wss.clients) ws.close(1001, 'server shutting down');
    },
    size: () => wss.clients.size,
  };
}
