import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http, { type ServerResponse } from 'node:http';
import { startHarness, startUpstream, type Harness } from './testing/harness.js';

// Server-Sent Events from an instance reach the client event by event: the
// instance sends the next event only once the client has the previous one,
// so any buffering in the gateway would stall the stream and fail the test.
describe('streaming responses (SSE) pass through unbuffered', () => {
  let gw: Harness;
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let stream: ServerResponse | null = null;

  before(async () => {
    up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: 0\n\n');
      stream = res;
    });
    gw = await startHarness();
    gw.setService('events', [{ ...up.instance('e1', 'events'), tags: ['gateway.route=/feed strip=/feed'] }]);
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  for (const path of ['/events/stream', '/feed/stream'])
    test(`each event reaches the client before the next is sent (${path})`, async () => {
      const got: string[] = [];
      let headers: http.IncomingHttpHeaders = {};
      const t0 = Date.now();
      await new Promise<void>((resolve, reject) => {
        const req = http.get(`${gw.url}${path}`, (res) => {
          headers = res.headers;
          res.setEncoding('utf8');
          let buf = '';
          res.on('data', (chunk: string) => {
            buf += chunk;
            let i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              got.push(buf.slice(0, i));
              buf = buf.slice(i + 2);
              const n = got.length;
              if (n < 5) stream!.write(`data: ${n}\n\n`);
              else stream!.end();
            }
          });
          res.on('end', () => resolve());
          res.on('error', reject);
        });
        req.on('error', reject);
      });
      assert.deepEqual(got, ['data: 0', 'data: 1', 'data: 2', 'data: 3', 'data: 4']);
      assert.equal(headers['content-type'], 'text/event-stream');
      // Five round trips on loopback; a buffering proxy would wait for the end or a timeout instead.
      assert.ok(Date.now() - t0 < 2_000, `took ${Date.now() - t0} ms`);
    });
});
