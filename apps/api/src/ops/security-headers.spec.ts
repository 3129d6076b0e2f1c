import { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse, createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import helmet from 'helmet';
import { securityHeaders } from './security-headers.js';

/** The headers a plain Node server answers with when `handle` runs on each request. */
async function answerHeaders(
  handle: (req: IncomingMessage, res: ServerResponse, next: () => void) => void,
  path: string,
): Promise<IncomingHttpHeaders> {
  const server = createServer((req, res) => handle(req, res, () => res.end('ok')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise((resolve, reject) =>
      get({ host: '127.0.0.1', port, path }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.headers));
      }).on('error', reject),
    );
  } finally {
    await new Promise((r) => server.close(r));
  }
}

const strip = (h: IncomingHttpHeaders): IncomingHttpHeaders => {
  const { date: _d, connection: _c, 'keep-alive': _k, 'content-length': _l, 'transfer-encoding': _t, ...rest } = h;
  return rest;
};

describe('securityHeaders (helmet, recorded once)', () => {
  const ours = securityHeaders();
  const mine = (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    ours(req, res);
    next();
  };

  it('answers exactly the headers helmet itself sets, on API paths and under /sandbox', async () => {
    const strict = helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } });
    const sandbox = helmet({
      contentSecurityPolicy: {
        directives: { formAction: null, upgradeInsecureRequests: null, scriptSrc: ["'self'", "'unsafe-inline'"] },
      },
    });
    const real = (req: IncomingMessage, res: ServerResponse, next: () => void): void =>
      ((req.url ?? '').startsWith('/sandbox/') ? sandbox : strict)(req, res, next);
    for (const path of ['/api/v1/orders/X1', '/sandbox/alipay/cashier']) {
      const expected = strip(await answerHeaders(real, path));
      expect(Object.keys(expected).length).toBeGreaterThanOrEqual(10);
      expect(strip(await answerHeaders(mine, path))).toEqual(expected);
    }
  });

  it('keeps form-action and inline script apart: strict outside the sandbox, relaxed inside', async () => {
    const api = String((await answerHeaders(mine, '/api/v1/orders/X1'))['content-security-policy']);
    const box = String((await answerHeaders(mine, '/sandbox/alipay/cashier'))['content-security-policy']);
    expect(api).toContain("form-action 'self'");
    expect(api).toContain("script-src 'self';");
    expect(box).not.toContain('form-action');
    expect(box).toContain("script-src 'self' 'unsafe-inline'");
  });
});
