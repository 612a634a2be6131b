import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { clientGone, isClientAbort } from './client-abort.js';

describe('isClientAbort', () => {
  const withCode = (code: unknown) => Object.assign(new Error('x'), { code });
  const gone = { destroyed: true };
  const open = { destroyed: false };
  const cases: Array<[string, unknown, { destroyed: boolean } | null | undefined, boolean]> = [
    ['ECONNRESET, socket gone', withCode('ECONNRESET'), gone, true],
    ['ECONNABORTED, socket gone', withCode('ECONNABORTED'), gone, true],
    ['EPIPE, socket gone', withCode('EPIPE'), gone, true],
    ['premature close, socket gone', withCode('ERR_STREAM_PREMATURE_CLOSE'), gone, true],
    ['axios cancel, socket gone', withCode('ERR_CANCELED'), gone, true],
    ['left mid-body', withCode('HPE_INVALID_EOF_STATE'), gone, true],
    ['no socket known', withCode('ECONNRESET'), undefined, true],
    ['null socket', withCode('ECONNRESET'), null, true],
    ['socket still open: a real error', withCode('ECONNRESET'), open, false],
    ['other code', withCode('ECONNREFUSED'), gone, false],
    ['no code', new Error('x'), gone, false],
    ['non-string code', withCode(104), gone, false],
    ['undefined', undefined, gone, false],
    ['null', null, gone, false],
  ];
  for (const [name, err, socket, want] of cases) test(`${name} → ${want}`, () => assert.equal(isClientAbort(err, socket), want));
});

describe('clientGone', () => {
  let handler: (res: http.ServerResponse) => void = () => {};
  const server = http.createServer((_req, res) => handler(res));
  after(() => (server.closeAllConnections(), server.close()));
  const listening = new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));

  /** Sends a request; resolves with the server's response for it and a way to hang up. */
  const request = async (onResponse: (res: http.ServerResponse) => void = () => {}) => {
    const port = await listening;
    const got = new Promise<http.ServerResponse>((resolve) => {
      handler = (res) => (onResponse(res), resolve(res));
    });
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false });
    req.on('error', () => {});
    return { res: await got, hangUp: () => req.destroy() };
  };

  test('aborts when the client hangs up before the answer', async () => {
    const { res, hangUp } = await request();
    const signal = clientGone(res);
    assert.equal(signal.aborted, false);
    const aborted = new Promise((r) => signal.addEventListener('abort', r, { once: true }));
    hangUp();
    await aborted;
    assert.equal(signal.aborted, true);
  });

  test('does not abort when the answer is finished', async () => {
    const port = await listening;
    let signal: AbortSignal | undefined;
    handler = (res) => {
      signal = clientGone(res);
      res.end('ok');
    };
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'ok');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(signal?.aborted, false);
  });

  test('already aborted when the response closed before the call', async () => {
    const { res, hangUp } = await request();
    const closed = new Promise((r) => res.once('close', r));
    hangUp();
    await closed;
    assert.equal(clientGone(res).aborted, true);
  });
});
