import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';

const BAD_REQUEST = JSON.stringify({ error: 'bad_request', message: 'malformed HTTP request' });

/**
 * Requests Node's parser rejects (bad request line, oversized headers...)
 * never reach Koa; answer them with a JSON 400 like every other error,
 * instead of Node's bare one.
 */
export function answerClientErrorsAsJson(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(
      `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(BAD_REQUEST)}\r\nConnection: close\r\n\r\n${BAD_REQUEST}`,
    );
  });
}
