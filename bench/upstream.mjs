import http from 'node:http';
const body = JSON.stringify({ hello: 'world', padding: 'x'.repeat(200) });
http
  .createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  })
  .listen(Number(process.argv[2]), '127.0.0.1', () => process.send?.('ready'));
