import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { Agent as HttpsAgent } from 'node:https';
import { PayError } from '#common';
import { channelPost, channelPostTls } from './http.js';
import { payErrorOf as payError, readAll } from '../../../test/utils/spec-helpers.js';

/**
 * channelPost / channelPostTls against local servers: the wire (content-length, raw bytes, UTF-8 decoded
 * once), the keep-alive pool, timeouts and broken connections, and the one retry of a stale pooled socket.
 * Every test has its own server (port): the pools are per host:port, so tests do not share sockets.
 */

const servers: { close(): void }[] = [];

afterAll(() => {
  for (const s of servers) s.close();
});

/** An http server; `connections` counts the TCP connections it accepted. */
async function serve(listener: RequestListener): Promise<{ url: string; connections: () => number; server: Server }> {
  const server = createServer(listener);
  let connections = 0;
  server.on('connection', () => (connections += 1));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push({
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections, server };
}

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('channelPost: the wire', () => {
  it('sends the body with content-length (not chunked) and returns status, raw body and headers', async () => {
    let seen: { method?: string; length?: string; chunked?: string; type?: string; body?: string } = {};
    const { url } = await serve((req, res) => {
      void readAll(req).then((b) => {
        seen = {
          method: req.method,
          length: req.headers['content-length'],
          chunked: req.headers['transfer-encoding'],
          type: req.headers['content-type'],
          body: b.toString('utf8'),
        };
        res.setHeader('Signature', 'algorithm=RSA256,signature=abc');
        res.setHeader('x-many', ['one', 'two']);
        res.writeHead(201, { 'content-type': 'application/json' }).end('{"ok":"是"}');
      });
    });
    const body = 'a=1&subject=支付测试';
    const answer = await channelPost(`${url}/gateway.do?x=1`, body, { 'content-type': 'text/plain; charset=utf-8' });
    expect(seen).toEqual({
      method: 'POST',
      length: String(Buffer.byteLength(body)),
      chunked: undefined,
      type: 'text/plain; charset=utf-8',
      body,
    });
    expect(answer.status).toBe(201);
    expect(answer.body).toBe('{"ok":"是"}');
    expect(answer.headers.get('signature')).toBe('algorithm=RSA256,signature=abc');
    expect(answer.headers.get('SIGNATURE')).toBe('algorithm=RSA256,signature=abc');
    expect(answer.headers.get('x-many')).toBe('one, two');
    expect(answer.headers.get('client-id')).toBeNull();
  });

  it('an error status is an answer, not an error', async () => {
    const { url } = await serve((_req, res) => res.writeHead(503).end('Service Unavailable'));
    expect(await channelPost(url, 'x', {})).toMatchObject({ status: 503, body: 'Service Unavailable' });
  });

  it('two calls in a row share one keep-alive connection', async () => {
    const { url, connections } = await serve((req, res) => void readAll(req).then(() => res.end('ok')));
    expect((await channelPost(url, 'one', {})).body).toBe('ok');
    expect((await channelPost(url, 'two', {})).body).toBe('ok');
    expect(connections()).toBe(1);
  });

  it('large bodies both ways arrive byte for byte', async () => {
    const big = '支付宝 WeChat Pay Alipay+ '.repeat(200_000); // ~5.6 MB of mixed 1- and 3-byte characters
    let received = '';
    const { url } = await serve((req, res) => {
      void readAll(req).then((b) => {
        received = b.toString('utf8');
        res.end(Buffer.from(big, 'utf8'));
      });
    });
    const answer = await channelPost(url, big, {});
    expect(received === big).toBe(true);
    expect(answer.body.length).toBe(big.length);
    expect(answer.body === big).toBe(true);
  });

  it('a character split across chunks is decoded whole', async () => {
    const bytes = Buffer.from('订单支付成功', 'utf8');
    const { url } = await serve((req, res) => {
      void readAll(req).then(async () => {
        res.writeHead(200);
        res.write(bytes.subarray(0, 1)); // each piece ends in the middle of a 3-byte character
        await tick(30);
        res.write(bytes.subarray(1, 8));
        await tick(30);
        res.end(bytes.subarray(8));
      });
    });
    const answer = await channelPost(url, 'x', {});
    expect(answer.body).toBe('订单支付成功');
    expect(answer.body).not.toContain('\uFFFD');
  });

  it('a leading UTF-8 BOM is dropped, as fetch text() did', async () => {
    const { url } = await serve(
      (req, res) =>
        void readAll(req).then(() => res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('<xml/>')]))),
    );
    expect((await channelPost(url, 'x', {})).body).toBe('<xml/>');
  });
});

describe('channelPost: failures', () => {
  const SECRET_BODY = 'sign=SECRET-BODY-MARKER';

  function expectNoBody(err: PayError): void {
    expect(JSON.stringify({ message: err.message, detail: err.detail })).not.toContain('SECRET-BODY-MARKER');
  }

  it('no answer within timeoutMs is CHANNEL_TIMEOUT naming only the host', async () => {
    const { url } = await serve(() => undefined); // never answers
    const err = await payError(channelPost(`${url}/gateway.do`, SECRET_BODY, {}, 150));
    expect(err.code).toBe('CHANNEL_TIMEOUT');
    expect(err.detail).toEqual({ url: new URL(url).host });
    expectNoBody(err);
  });

  it('a head that came but a body that does not finish in time is CHANNEL_TIMEOUT', async () => {
    const { url } = await serve((req, res) => {
      void readAll(req).then(() => {
        res.writeHead(200, { 'content-length': '100' });
        res.write('partial');
      });
    });
    expect((await payError(channelPost(url, 'x', {}, 150))).code).toBe('CHANNEL_TIMEOUT');
  });

  it('a connection broken in the middle of the body is CHANNEL_ERROR', async () => {
    const { url } = await serve((req, res) => {
      void readAll(req).then(async () => {
        res.writeHead(200, { 'content-length': '100' });
        res.write('partial');
        await tick(20);
        res.socket?.destroy();
      });
    });
    const err = await payError(channelPost(url, SECRET_BODY, {}));
    expect(err.code).toBe('CHANNEL_ERROR');
    expectNoBody(err);
  });

  it('a host that cannot be reached is CHANNEL_ERROR naming the host and the cause code only', async () => {
    const { url, server } = await serve(() => undefined);
    await new Promise((r) => server.close(r)); // the port is now closed
    const err = await payError(channelPost(`${url}/gateway.do`, SECRET_BODY, {}));
    expect(err.code).toBe('CHANNEL_ERROR');
    expect(err.detail).toEqual({ url: new URL(url).host, cause: 'ECONNREFUSED' });
    expectNoBody(err);
  });

  it('a failed TLS handshake is CHANNEL_ERROR (https to a plain-http port)', async () => {
    const { url } = await serve((_req, res) => res.end('plain'));
    const err = await payError(channelPost(url.replace('http:', 'https:'), 'x', {}));
    expect(err.code).toBe('CHANNEL_ERROR');
  });

  it('a URL that is not http(s), or no URL at all, is CHANNEL_ERROR', async () => {
    expect((await payError(channelPost('ftp://127.0.0.1/x', 'x', {}))).code).toBe('CHANNEL_ERROR');
    expect(await payError(channelPost('not a url', 'x', {}))).toMatchObject({
      code: 'CHANNEL_ERROR',
      detail: { url: 'invalid-url' },
    });
  });

  it('channelPostTls refuses a plain-http URL: a client certificate never goes over plain HTTP', async () => {
    let hits = 0;
    const { url } = await serve((_req, res) => {
      hits += 1;
      res.end('x');
    });
    const agent = new HttpsAgent();
    expect((await payError(channelPostTls(url, 'x', {}, agent))).code).toBe('CHANNEL_ERROR');
    agent.destroy();
    expect(hits).toBe(0);
  });
});

/**
 * A raw TCP server that reads whole requests (head + content-length body) and lets the test decide,
 * per request and by its rank on its connection, to answer (keep-alive), reset the connection, or send
 * part of a head and then reset. `requests` counts every request that reached it.
 */
async function rawServer(
  decide: (onConnection: number, overall: number) => 'answer' | 'reset' | 'head-then-reset',
): Promise<{ url: string; requests: () => number; connections: () => number }> {
  let requests = 0;
  let connections = 0;
  const open = new Set<Socket>();
  const server = createTcpServer((socket: Socket) => {
    connections += 1;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    let onConnection = 0;
    let buffer = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('data', (data: Buffer) => {
      buffer = Buffer.concat([buffer, data]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(buffer.subarray(0, end).toString('latin1'))?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        buffer = buffer.subarray(end + 4 + length);
        onConnection += 1;
        requests += 1;
        switch (decide(onConnection, requests)) {
          case 'answer':
            socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
            break;
          case 'reset':
            socket.resetAndDestroy();
            return;
          case 'head-then-reset':
            socket.write('HTTP/1.1 200 OK\r\n', () => setTimeout(() => socket.resetAndDestroy(), 20));
            return;
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push({
    close: () => {
      for (const s of open) s.destroy();
      server.close();
    },
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    connections: () => connections,
  };
}

describe('channelPost: a pooled socket the server dropped', () => {
  it('a reused socket reset before any answer byte is retried once, on a new connection', async () => {
    // The second request on a connection meets a reset, as when the server closed the idle connection
    // while the request was on its way.
    const sut = await rawServer((onConnection) => (onConnection === 1 ? 'answer' : 'reset'));
    expect((await channelPost(sut.url, 'first', {})).body).toBe('ok');
    expect((await channelPost(sut.url, 'second', {})).body).toBe('ok');
    expect([sut.requests(), sut.connections()]).toEqual([3, 2]);
  });

  it('a reset on a fresh connection is not retried', async () => {
    const sut = await rawServer(() => 'reset');
    expect(await payError(channelPost(sut.url, 'x', {}))).toMatchObject({
      code: 'CHANNEL_ERROR',
      detail: { cause: 'ECONNRESET' },
    });
    expect(sut.requests()).toBe(1);
  });

  it('a reused socket that sent part of an answer before the reset is not retried (the server had it)', async () => {
    const sut = await rawServer((onConnection) => (onConnection === 1 ? 'answer' : 'head-then-reset'));
    expect((await channelPost(sut.url, 'first', {})).body).toBe('ok');
    expect((await payError(channelPost(sut.url, 'second', {}))).code).toBe('CHANNEL_ERROR');
    expect(sut.requests()).toBe(2);
  });

  it('the retry is one: a second stale pooled socket is CHANNEL_ERROR, not a third try', async () => {
    // Two calls at once leave two pooled connections; both are reset on their next request.
    const sut = await rawServer((onConnection) => (onConnection === 1 ? 'answer' : 'reset'));
    const first = await Promise.all([channelPost(sut.url, 'a', {}), channelPost(sut.url, 'b', {})]);
    expect(first.map((a) => a.body)).toEqual(['ok', 'ok']);
    expect(sut.connections()).toBe(2);
    expect((await payError(channelPost(sut.url, 'third', {}))).code).toBe('CHANNEL_ERROR');
    expect([sut.requests(), sut.connections()]).toEqual([4, 2]);
  });
});
