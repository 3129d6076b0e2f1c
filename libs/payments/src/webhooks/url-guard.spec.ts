import { createServer } from 'node:http';
import { request } from 'node:http';
import { UnsafeUrlError, checkWebhookUrl, guardedLookup, isPrivateAddress, resolveWebhookHost } from './url-guard.js';

describe('isPrivateAddress', () => {
  it.each([
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '64:ff9b::10.0.0.1',
    '2002:c0a8:0101::1',
    'not-an-ip',
  ])('refuses %s', (ip) => expect(isPrivateAddress(ip)).toBe(true));

  it.each(['8.8.8.8', '172.32.0.1', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('accepts %s', (ip) =>
    expect(isPrivateAddress(ip)).toBe(false),
  );
});

describe('checkWebhookUrl', () => {
  it('accepts a public https URL', () => {
    expect(checkWebhookUrl('https://shop.example.com/hooks?x=1', false).hostname).toBe('shop.example.com');
  });

  it.each([
    ['http://shop.example.com/hooks', /https/],
    ['ftp://shop.example.com/', /https/],
    ['https://user:pw@shop.example.com/', /credentials/],
    ['https://127.0.0.1/hooks', /private/],
    ['https://[::1]/hooks', /private/],
    ['https://169.254.169.254/latest', /private/],
    ['https://localhost/hooks', /local host/],
    ['https://intranet/hooks', /local host/],
    ['not a url', /absolute/],
  ])('refuses %s outside development', (url, why) => {
    expect(() => checkWebhookUrl(url, false)).toThrow(why);
  });

  it('allows http and loopback addresses when private addresses are allowed', () => {
    expect(checkWebhookUrl('http://127.0.0.1:3000/sandbox/webhooks/receive', true).port).toBe('3000');
    expect(() => checkWebhookUrl('ftp://127.0.0.1/', true)).toThrow(UnsafeUrlError);
  });
});

describe('resolveWebhookHost and guardedLookup', () => {
  it('refuses a name that resolves to loopback unless allowed', async () => {
    await expect(resolveWebhookHost('localhost', false)).rejects.toThrow(/private/);
    await expect(resolveWebhookHost('localhost', true)).resolves.toMatchObject({ address: expect.any(String) });
  });

  it('a request through the guarded lookup never connects to a refused address', async () => {
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const attempt = (allow: boolean): Promise<number | string> =>
      new Promise((resolve) => {
        const req = request({ host: 'localhost', port, path: '/', family: 4, lookup: guardedLookup(allow) }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', (err) => resolve(err.message));
        req.end();
      });
    try {
      expect(await attempt(false)).toMatch(/private/);
      expect(hits).toBe(0);
      expect(await attempt(true)).toBe(200);
      expect(hits).toBe(1);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
