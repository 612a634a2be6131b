import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { readdirSync } from 'node:fs';
import { ConsulAgent } from '../lib/consul.js';
import { startGateway, startWeb, type ServiceProcess } from '../lib/procs.js';
import { sleep, waitFor } from '../lib/ports.js';
import { startFixture, type Fixture } from '../lib/fixture.js';
import { recordFigure } from '../lib/figures.js';

const figure = (name: string, value: unknown) => recordFigure('edge', name, value);

// The gateway as an edge, as a hostile client would try it: real gateway and
// web-service processes, a real Consul, raw sockets where an HTTP client
// can't express the request, and a canary no request may ever reach.

const HEAD_TIMEOUT_MS = 2_000;

/** Writes raw bytes; resolves with what came back once the server closes (or after ms). */
function raw(port: number, data: string | Buffer, ms = 5_000): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => sock.destroy(), ms);
    sock.on('data', (b) => (got += b.toString('latin1')));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    sock.on('error', () => undefined);
    sock.write(data);
  });
}

const status = (text: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

async function json(url: string, init?: RequestInit) {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, body: (await res.json()) };
}

describe('the gateway as an edge (real gateway, web service and Consul)', () => {
  let consul: ConsulAgent;
  let gw: ServiceProcess;
  let web: ServiceProcess;
  let canary: Fixture;

  before(async () => {
    consul = await new ConsulAgent({ mode: 'dev' }).start();
    canary = await startFixture('canary');
    web = await startWeb({ CONSUL_HTTP_ADDR: consul.httpAddr, SERVICE_NAME: 'service-web' });
    await consul.register({ container: 'web-1', name: 'service-web', address: '127.0.0.1', port: web.port });
    gw = await startGateway(consul.httpAddr, {
      HEADERS_TIMEOUT_MS: String(HEAD_TIMEOUT_MS),
      REQUEST_BODY_IDLE_MS: '1000',
      UPSTREAM_TIMEOUT_MS: '1000',
      EJECT_AFTER_FAILURES: '1',
      EJECT_MAX_PERCENT: '100',
      MAX_BODY_BYTES: '100000',
      MAX_URL_BYTES: '2048',
      MAX_CONNECTIONS: '40',
    });
    await waitFor('the gateway to route service-web', async () => {
      const s = await json(`${gw.url}/_gateway/services`);
      return s.body.services['service-web']?.length === 1;
    });
  });

  after(async () => {
    await gw?.stop().catch(() => gw.kill());
    await web?.stop().catch(() => web.kill());
    await canary?.close();
    await consul?.stop();
  });

  const notEjected = async () => {
    const s = await json(`${gw.url}/_gateway/services`);
    const inst = s.body.services['service-web'][0];
    assert.equal(inst.ejectedUntil, undefined, `instance ejected: ${JSON.stringify(inst)}`);
  };

  test('no sequence of client requests gets the healthy instance ejected', async () => {
    // Withheld bodies: the client's problem (408), not the instance's.
    for (let i = 0; i < 4; i++) {
      const r = await raw(gw.port, 'POST /service-web/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789');
      assert.equal(status(r), 408, r);
    }
    // Bodies slower than UPSTREAM_TIMEOUT_MS but steady: fine.
    const slow = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${gw.url}/service-web/echo`, { method: 'POST', headers: { 'content-length': 4 } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      let n = 0;
      const t = setInterval(() => {
        req.write('x');
        if (++n === 4) {
          clearInterval(t);
          req.end();
        }
      }, 600);
    });
    assert.equal(slow, 200);
    // Aborted uploads.
    for (let i = 0; i < 4; i++) {
      const sock = net.connect(gw.port, '127.0.0.1');
      sock.write('POST /service-web/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n' + 'x'.repeat(1000));
      await sleep(100);
      sock.destroy();
    }
    // Requests the instance answers with its own 5xx: /call to a service with no instance.
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${gw.url}/service-web/call/nosuchsvc/`);
      assert.ok(r.status >= 400, `got ${r.status}`);
      await r.arrayBuffer();
    }
    await notEjected();
    const ok = await fetch(`${gw.url}/service-web/`);
    assert.equal(ok.status, 200);
    assert.match(String(ok.headers.get('x-upstream-instance')), /^registrator:web-1:/);
  });

  test('slowloris: sockets that never finish their headers are closed within the head timeout; fds return to baseline', async () => {
    const baseline = fds(gw.proc.pid!);
    const n = 30;
    const t0 = performance.now();
    const closedAt: number[] = [];
    const socks = Array.from({ length: n }, () => {
      const s = net.connect(gw.port, '127.0.0.1');
      s.on('error', () => undefined);
      s.resume(); // read the 408, so the server's close is seen when it happens
      s.on('connect', () => s.write('GET /service-web/ HTTP/1.1\r\nHost: x\r\nX-a: '));
      s.on('close', () => closedAt.push(performance.now() - t0));
      return s;
    });
    // Half drip a byte a second, as slowloris does to defeat idle timeouts;
    // half go silent after half a head (Node's own headersTimeout misses those).
    const drip = setInterval(() => socks.forEach((s, i) => i % 2 === 0 && s.writable && s.write('a')), 1_000);
    try {
      await waitFor('every slowloris socket closed', () => closedAt.length === n, HEAD_TIMEOUT_MS + 5_000);
    } finally {
      clearInterval(drip);
    }
    const slowest = Math.max(...closedAt);
    figure('slowloris sockets closed after (s), head timeout ' + HEAD_TIMEOUT_MS / 1000 + ' s', +(slowest / 1000).toFixed(1));
    assert.ok(slowest < HEAD_TIMEOUT_MS + 1_500, `closed after ${slowest} ms`);
    await waitFor('fds back to baseline', () => fds(gw.proc.pid!) <= baseline + 2, 3_000);
    figure('gateway fds before/after 30 slowloris sockets', `${baseline}/${fds(gw.proc.pid!)}`);
  });

  test('the connection limit: the connection over it gets a JSON 503 and is closed; the rest keep working', async () => {
    const held = await Promise.all(
      Array.from({ length: 40 }, () => new Promise<net.Socket>((r) => {
        const s = net.connect(gw.port, '127.0.0.1', () => r(s));
        s.on('error', () => undefined);
      })),
    );
    await sleep(100);
    const over = await raw(gw.port, 'GET /service-web/ HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(status(over), 503, over);
    assert.match(over, /"error":"too_many_connections"/);
    held.forEach((s) => s.destroy());
    await waitFor('a connection to be accepted again', async () => (await fetch(`${gw.url}/service-web/`)).status === 200);
  });

  test('limits on what a client sends: 413 (Content-Length and chunked), 414, 431', async () => {
    const cl = await raw(gw.port, 'POST /service-web/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\nabc');
    assert.equal(status(cl), 413, cl);
    const big = Buffer.alloc(60_000, 97).toString();
    const chunked = await raw(gw.port, `POST /service-web/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${(60_000).toString(16)}\r\n${big}\r\n${(60_000).toString(16)}\r\n${big}\r\n0\r\n\r\n`);
    assert.equal(status(chunked), 413, chunked.slice(0, 300));
    const expect = await raw(gw.port, 'POST /service-web/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\nExpect: 100-continue\r\n\r\n', 2_000);
    assert.equal(status(expect), 413, expect);
    assert.doesNotMatch(expect, /100 Continue/);
    const longUrl = await raw(gw.port, `GET /service-web/${'a'.repeat(3000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.equal(status(longUrl), 414, longUrl);
    const hugeHeaders = await raw(gw.port, `GET /service-web/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
    assert.equal(status(hugeHeaders), 431, hugeHeaders);
    await notEjected();
  });

  test('TRACE and CONNECT: 405 with Allow, never forwarded (no cross-site tracing through /echo)', async () => {
    const trace = await raw(gw.port, 'TRACE /service-web/echo HTTP/1.1\r\nHost: x\r\nCookie: session=secret\r\nConnection: close\r\n\r\n');
    assert.equal(status(trace), 405, trace);
    assert.match(trace, /allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS/i);
    assert.doesNotMatch(trace, /secret/);
    const connect = await raw(gw.port, `CONNECT 127.0.0.1:${canary.port} HTTP/1.1\r\nHost: 127.0.0.1:${canary.port}\r\n\r\n`);
    assert.equal(status(connect), 405, connect);
    assert.equal(canary.requests.length, 0);
  });

  test('forwarded headers are rebuilt, not trusted', async () => {
    const echo = async (headers: string, version = '1.1') => {
      const r = await raw(gw.port, `GET /service-web/echo HTTP/${version}\r\n${headers}Connection: close\r\n\r\n`);
      assert.equal(status(r) || Number(/^HTTP\/1\.\d (\d{3})/.exec(r)?.[1]), 200, r);
      return JSON.parse(r.slice(r.indexOf('\r\n\r\n') + 4)).headers as Record<string, string>;
    };
    const h = await echo('Host: gw.example\r\nX-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\n');
    assert.equal(h['x-forwarded-for'], '6.6.6.6, 127.0.0.1', 'client chain kept, the real peer last');
    assert.equal(h['x-real-ip'], '127.0.0.1');
    assert.equal(h['forwarded'], undefined);
    assert.equal(h['x-forwarded-host'], 'gw.example');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['via'], '1.1 gateway');
    // HTTP/1.0 without Host: X-Forwarded-Host is still the gateway's, never the client's.
    const h10 = await echo('X-Forwarded-Host: evil.example\r\n', '1.0');
    assert.equal(h10['x-forwarded-host'], `127.0.0.1:${gw.port}`);
    // An X-Forwarded-For the client names in Connection is dropped, not prepended.
    const hc = await echo('Host: x\r\nConnection: x-forwarded-for\r\nX-Forwarded-For: 6.6.6.6\r\n');
    assert.equal(hc['x-forwarded-for'], '127.0.0.1');
  });

  test('a request that already passed through the gateway: 508, JSON', async () => {
    const r = await json(`${gw.url}/service-web/`, { headers: { via: '1.1 gateway' } });
    assert.equal(r.status, 508);
    assert.equal(r.body.error, 'loop_detected');
  });
});
