import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'undici';
import { ConsulAgent } from '../lib/consul.js';
import { startGateway, startWeb, type ServiceProcess } from '../lib/procs.js';
import { sleep, waitFor } from '../lib/ports.js';
import { recordFigure } from '../lib/figures.js';

// A request every ~5 s is the classic keep-alive race: Node's default server
// idle timeout is 5 s, so a client reusing a socket just as the server closes
// it gets a reset. The gateway's timeouts are set so that never happens.
let consul: ConsulAgent;
let gw: ServiceProcess;
const webs: ServiceProcess[] = [];

before(async () => {
  consul = await new ConsulAgent({ mode: 'dev' }).start();
  for (const name of ['web-a', 'web-b']) {
    const w = await startWeb();
    webs.push(w);
    await consul.register({ container: name, name: 'service-web', address: '127.0.0.1', port: w.port });
  }
  gw = await startGateway(consul.httpAddr);
  await waitFor('routed', async () => (await fetch(`${gw.url}/service-web/`)).status === 200);
});

after(async () => {
  await gw?.stop().catch(() => gw.kill());
  for (const w of webs) w.kill();
  await consul?.stop();
});

test('a request every 4.9-5.1 s for a minute over a kept-alive connection: 0 resets', async () => {
  const client = new Client(gw.url, { keepAliveTimeout: 30_000, keepAliveMaxTimeout: 30_000 });
  let connects = 0;
  client.on('connect', () => connects++);
  const errors: string[] = [];
  let ok = 0;
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    try {
      const res = await client.request({ path: '/service-web/', method: 'GET' });
      await res.body.text();
      if (res.statusCode === 200) ok++;
      else errors.push(`HTTP ${res.statusCode}`);
    } catch (err) {
      errors.push((err as { code?: string }).code ?? String(err));
    }
    await sleep(4900 + Math.random() * 200);
  }
  await client.close();
  recordFigure('integration', 'keep-alive every ~5 s for 60 s: ok / errors / client connections', `${ok} / ${errors.length} / ${connects}`);
  assert.deepEqual(errors, []);
  assert.ok(ok >= 11);
  assert.equal(connects, 1, 'the client connection was kept alive the whole minute');
});
