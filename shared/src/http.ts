import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { rawJsonResponse, type ErrorCode } from './error-body.js';

/**
 * Writes a raw answer and closes the socket for good. Node's HTTP sockets
 * allow half-open connections, so a bare end() would leave the socket open
 * for as long as the client keeps its side open (a slowloris client would).
 */
export function answerAndClose(socket: Duplex, response: string): void {
  if (!socket.writable) return void socket.destroy();
  // Destroyed once the answer is handed to the kernel; waiting for 'finish'
  // after end() can take as long as the client keeps sending.
  socket.write(response, () => socket.destroy());
  // A client that doesn't read could keep even this small answer unflushed.
  setTimeout(() => socket.destroy(), 1_000).unref();
}

/** What Node's parser and its timers report, as the status a client should see. */
function clientErrorAnswer(code: string | undefined): [ErrorCode, string] {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return ['headers_too_large', 'the request headers are too large'];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return ['request_timeout', 'the request was not received in time'];
    default:
      return ['bad_request', 'malformed HTTP request'];
  }
}

/**
 * Requests Node's parser rejects (bad request line, oversized headers...) and
 * requests that outlive the server's head/request timeouts never reach the
 * app; answer them with JSON like every other error, instead of Node's bare
 * ones. Nothing is written once a response has started on the socket.
 */
export function answerClientErrorsAsJson(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const current = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || current?.headersSent) return void socket.destroy();
    const [code, message] = clientErrorAnswer(err.code);
    answerAndClose(socket, rawJsonResponse(code, message));
  });
}
