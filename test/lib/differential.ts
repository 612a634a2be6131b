import { ResponseParseError, ResponseParser } from '../../gateway/src/upstream/response-parser.js';
import type { HostileUpstream, Script } from './hostile-upstream.js';
import { ClientConn, oracle, type ClientMessage, type OracleResult } from './llhttp.js';
import { sleep } from './ports.js';

/** One hostile answer, run through the gateway and through node:http. */
export interface HostileCase {
  name: string;
  /** What it exercises: framing, lengths, te, head, 1xx, no-body, after, mid-body, pipelined, chunked, connection, slow. */
  cls: string;
  method?: 'GET' | 'HEAD';
  script: Script;
  /** The gateway refuses this on purpose where llhttp reads it (docs/upstream-client.md says why). */
  stricter?: string;
  /** A head refused while the instance keeps the connection open: the 502 must not wait for the deadline. */
  fast?: boolean;
  /** Headers the client must not get (hop-by-hop ones the instance named in Connection). */
  dropped?: string[];
}

export interface DiffEnv {
  gatewayPort: number;
  upstream: HostileUpstream;
  /** The service name the upstream is registered under. */
  service: string;
  /** Another service, answering /ok/<token> plainly: the second request on a client connection goes there. */
  benign: string;
  upstreamTimeoutMs: number;
  bodyTimeoutMs: number;
  /** How long node:http may wait for an answer that never ends. */
  oracleWaitMs: number;
}

export type Mode = 'keepalive' | 'pipelined';

export interface CaseResult {
  oracle: OracleResult;
  /** What the client got for the hostile request. */
  gateway: 'forwarded' | 'refused' | 'cut' | 'hang' | 'other';
  violations: string[];
  /** The gateway's X-Request-Id for the hostile request, when an answer came. */
  requestId: string | null;
}

/**
 * Where the gateway's parser is stricter than llhttp on purpose: the reason
 * it gives, and why (docs/upstream-client.md). A 502 where llhttp read a
 * response is a failure unless the parser's own reason for it is here.
 */
const STRICTER: Array<[RegExp, string]> = [
  [/Transfer-Encoding other than chunked/, 'a Transfer-Encoding other than exactly one "chunked" (llhttp reads such a body to the close, or decodes "gzip, chunked" and ",chunked" as chunked)'],
  [/empty Transfer-Encoding with Content-Length/, 'an empty Transfer-Encoding next to a Content-Length (llhttp ignores the empty field)'],
  [/HTTP version other than 1\.0 or 1\.1/, 'a status line of HTTP/0.9 or HTTP/2.0 on an HTTP/1.1 connection'],
  [/empty line before the status line/, 'an empty line before a status line (llhttp skips it)'],
  [/bare CR after the status line/, 'a bare CR ending the status line ("\\r\\r": llhttp reads it as a line end)'],
  [/status code under 100/, 'a status code under 100'],
  [/control character in the reason phrase/, 'a control character in the reason phrase'],
  [/chunk size too large|Content-Length too large/, 'a length of 2^53 or more'],
  [/empty chunk extension|quote inside a chunk extension token/, 'an empty chunk extension (";;"), an empty extension value ("a="), or a token then a quoted string (a=x"y")'],
  [/Transfer-Encoding in the trailer section/, 'Transfer-Encoding as a trailer field'],
  [/101/, 'a 101 Switching Protocols the gateway never asked for'],
];

/** What the gateway's own parser makes of the bytes, read in one piece and then closed. */
function localParse(raw: string, method: string): { error: string | null; trailing: boolean; headRead: boolean } {
  const p = new ResponseParser(method, { onHead: () => true, onBody: () => true });
  try {
    p.execute(Buffer.from(raw, 'latin1'));
    p.finish();
  } catch (err) {
    if (!(err instanceof ResponseParseError)) throw err;
    return { error: err.message, trailing: false, headRead: p.headRead };
  }
  return { error: null, trailing: p.trailing, headRead: true };
}

/** The gateway parser's reason for refusing these bytes, when it is one of STRICTER's; null otherwise. */
function stricterReason(raw: string, method: string): string | null {
  const { error } = localParse(raw, method);
  if (error === null) return null;
  for (const [re, why] of STRICTER) if (re.test(error)) return `${why} [${error}]`;
  return null;
}

function classify(m: ClientMessage | 'hang' | null, method: string): CaseResult['gateway'] {
  if (m === 'hang') return 'hang';
  if (m === null) return 'cut';
  if (m.headers['x-upstream-instance']) return 'forwarded';
  // A HEAD answer has no body to read the error from: the gateway's error headers say it.
  if (method === 'HEAD' && (m.status === 502 || m.status === 504) && m.headers['content-type']?.startsWith('application/json')) return 'refused';
  if (m.status === 502 || m.status === 504) {
    try {
      const body = JSON.parse(m.body.toString()) as { error?: string };
      if (body.error === 'upstream_unreachable' || body.error === 'upstream_timeout') return 'refused';
    } catch {
      /* not the gateway's JSON */
    }
  }
  return 'other';
}

const show = (m: ClientMessage | 'hang' | null) =>
  m === null || m === 'hang' ? String(m) : `${m.status} ${JSON.stringify(m.headers)} ${JSON.stringify(m.body.toString('latin1').slice(0, 200))}`;

/**
 * Runs one case: node:http reads the instance's answer directly (the oracle)
 * while a raw client sends the same request through the gateway, then a
 * second request on the same client connection (after the first answer, or
 * pipelined with it). Returns every broken rule, none when the case passes.
 */
export async function runCase(env: DiffEnv, c: HostileCase, id: string, mode: Mode): Promise<CaseResult> {
  const { upstream } = env;
  const method = c.method ?? 'GET';
  upstream.scripts.set(id, c.script);
  const violations: string[] = [];
  const token = `${id}-2`;
  const first = { method, path: `/${env.service}/case/${id}` };
  const second = { method: 'GET', path: `/${env.benign}/ok/${token}` };
  const client = new ClientConn(env.gatewayPort);
  const t0 = Date.now();
  client.send(mode === 'pipelined' ? [first, second] : [first]);
  const [ora, r1] = await Promise.all([
    oracle(upstream.port, method, `/case/${id}?oracle`, env.oracleWaitMs),
    client.message(0, env.upstreamTimeoutMs + env.bodyTimeoutMs + 3_000),
  ]);
  const elapsed = Date.now() - t0;
  const gateway = classify(r1, method);
  const raw = c.script.pieces.join('');

  if (gateway === 'hang') violations.push('the gateway neither answered nor closed the client connection');
  if (gateway === 'other') violations.push(`an answer that is neither the instance's nor a gateway error: ${show(r1)}`);
  if (ora.accepted) {
    const why = stricterReason(raw, method);
    if (c.stricter !== undefined || why) {
      // Refused in the head: a 502; in the body (an extension, a trailer): the head is out, so a cut.
      const want = localParse(raw, method).headRead ? 'cut' : 'refused';
      if (gateway !== want) violations.push(`stricter than llhttp on purpose (${why ?? c.stricter}), so ${want} was expected; got ${gateway}`);
      if (c.stricter !== undefined && !why) violations.push("marked stricter, but the gateway parser's reason is not one of STRICTER's");
    } else if (gateway !== 'forwarded') {
      violations.push(`llhttp read a ${ora.status} response; the gateway did not pass it on (${gateway}: ${show(r1)})`);
    } else {
      const m = r1 as ClientMessage;
      if (m.status !== ora.status) violations.push(`status ${m.status}, llhttp read ${ora.status}`);
      for (const h of c.dropped ?? []) if (m.headers[h] !== undefined) violations.push(`${h} reached the client, though the instance named it in Connection`);
      if (!m.body.equals(ora.body)) violations.push(`body ${JSON.stringify(m.body.toString('latin1'))}, llhttp read ${JSON.stringify(ora.body.toString('latin1'))}`);
    }
  } else {
    if (gateway === 'forwarded') violations.push(`passed on a whole response llhttp refuses (${ora.why}): ${show(r1)}`);
    if (!ora.headSeen && gateway === 'cut') violations.push(`llhttp saw no head (${ora.why}); the gateway must answer a 502 itself, it cut the connection (${client.ended})`);
  }
  if (c.fast && elapsed > env.upstreamTimeoutMs / 2) violations.push(`refused after ${elapsed} ms: a malformed head must fail at once, not at the deadline`);

  // The next request on the same client connection gets its own answer, or (after an answer
  // that said close, or a cut) none: never bytes of the first.
  if (r1 !== null && r1 !== 'hang') {
    if (mode === 'keepalive' && !client.ended) client.send([second]);
    const r2 = await client.message(1, env.upstreamTimeoutMs + 3_000);
    if (r2 === 'hang') violations.push('the second request on the connection got no answer and no close');
    else if (r2 === null) {
      if (r1.keepAlive) violations.push(`a kept-alive client connection closed instead of answering the next request (${client.ended})`);
    } else if (r2.status !== 200 || r2.body.toString('latin1') !== `ok ${token}` || !r2.headers['x-upstream-instance']) {
      violations.push(`the second request on the connection got someone else's bytes: ${show(r2)}`);
    }
  }
  client.close();

  // The instance's connection.
  const conn = upstream.caseConns.get(id);
  if (!conn) violations.push('the gateway never sent the request to the instance');
  // Closed (never reused) once its answer was refused or cut, or had bytes after it.
  else if (gateway !== 'forwarded' || localParse(raw, method).trailing) {
    const deadline = Date.now() + 2_000;
    while (!conn.closed && Date.now() < deadline) await sleep(10);
    if (!conn.closed) violations.push(`the upstream connection was left open after a ${gateway} answer (leaked)`);
    const after = conn.targets.slice(conn.targets.indexOf(`/case/${id}`) + 1);
    if (after.length > 0) violations.push(`the upstream connection was reused after a ${gateway} answer, for ${after.join(', ')}`);
  }
  upstream.scripts.delete(id);
  if (violations.length) violations.push(`upstream connection: ${conn ? conn.events.join(' / ') : 'none'}`);
  return { oracle: ora, gateway, violations, requestId: r1 && r1 !== 'hang' ? (r1.headers['x-request-id'] ?? null) : null };
}
