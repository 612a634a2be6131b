import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { answerAndClose, rawJsonResponse } from '@stack/shared';

interface Guard {
  timer: NodeJS.Timeout;
  /** Bytes read when the guard last saw the connection idle. */
  mark: number;
  /** The response of the request whose head was last completed. */
  res: ServerResponse | null;
  /** A first request arrived: from then on, idle time is Node's keepAliveTimeout's business. */
  served: boolean;
}

const GUARD = Symbol('headGuard');
type Guarded = Socket & { [GUARD]?: Guard };

/**
 * Closes connections that start a request head and don't finish it in time
 * (slowloris). Node's own headersTimeout only fires when more bytes arrive
 * after the deadline (seen on Node 20: a socket that sends half a head and
 * then nothing stays open for good), so each connection gets one timer here.
 * It costs nothing per request: a request only records itself on the
 * connection; the timer, refreshed every `timeoutMs`, reads `bytesRead` to
 * tell a half-sent head from an idle kept-alive connection (those are Node's
 * keepAliveTimeout's to close). A new connection must send a whole head
 * within `timeoutMs`, as nginx's client_header_timeout asks.
 */
export function guardHead(socket: Socket, timeoutMs: number): void {
  const s = socket as Guarded;
  const guard: Guard = { timer: setTimeout(check, timeoutMs), mark: 0, res: null, served: false };
  guard.timer.unref();
  s[GUARD] = guard;
  socket.once('close', () => clearTimeout(guard.timer));

  function check() {
    if (socket.destroyed) return;
    const res = guard.res;
    if (res && !res.writableFinished) return void guard.timer.refresh(); // a request is being served
    if (res || (guard.served && socket.bytesRead === guard.mark)) {
      // Idle since the last check (or the last response just ended): look again later.
      guard.res = null;
      guard.mark = socket.bytesRead;
      return void guard.timer.refresh();
    }
    answerAndClose(socket, rawJsonResponse('request_timeout', `the request head was not received within ${timeoutMs} ms`));
  }
}

/** Called as each request's head completes. */
export function headReceived(req: IncomingMessage, res: ServerResponse): void {
  const guard = (req.socket as Guarded)[GUARD];
  if (guard) {
    guard.res = res;
    guard.served = true;
  }
}

/** The connection left HTTP (a WebSocket after its 101): idle time is upgrade.ts's business now. */
export function releaseHead(socket: Socket): void {
  const guard = (socket as Guarded)[GUARD];
  if (guard) clearTimeout(guard.timer);
}
