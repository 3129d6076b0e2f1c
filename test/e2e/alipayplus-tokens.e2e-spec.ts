import { mkdtempSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { DataSource } from 'typeorm';
import type { ChannelInstanceConfig } from '#channels';
import { createAlipayPlusSandbox, type AlipayPlusSimulator } from '#sandbox';
import { auth, bootApp, type TestApp, uniqueOrderId } from '../utils/test-app.js';

/**
 * Alipay+ authorizations outlive the process that obtained them (issue 9 item 10): one wallet
 * simulator on its own server, app processes that come and go on the same database. A pay with a
 * customerId and no authCode works on another app instance and after a restart, with one applyToken
 * at the wallet in all; no token appears in an answer.
 */
describe('Alipay+ authorizations survive a restart and serve every instance', () => {
  let server: Server;
  let wallet: AlipayPlusSimulator;
  let instance: ChannelInstanceConfig;
  const applyTokenCalls: string[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'paybridge-tokens-'));
  const apps: TestApp[] = [];

  beforeAll(async () => {
    let listener: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
    server = createServer((req, res) => {
      if (/applyToken/.test(req.url ?? '')) applyTokenCalls.push(req.url ?? '');
      listener(req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const sandbox = createAlipayPlusSandbox({ baseUrl: `http://127.0.0.1:${port}` });
    wallet = sandbox.simulator;
    listener = wallet.listener;
    instance = { ...sandbox.instance, sandbox: false, fullName: 'pays.tokensWallet' };
  });

  afterAll(async () => {
    for (const a of apps.splice(0)) await a.close();
    wallet.close();
    await new Promise((r) => server.close(r));
  });

  const boot = async (): Promise<TestApp> => {
    const t = await bootApp({ sandbox: false, instances: [instance], dataDir });
    apps.push(t);
    return t;
  };
  const stop = async (t: TestApp): Promise<void> => {
    apps.splice(apps.indexOf(t), 1);
    await t.close();
  };

  async function pay(t: TestApp, body: Record<string, unknown>): Promise<request.Response> {
    const http = request(t.app.getHttpServer());
    const orderId = uniqueOrderId('K');
    expect(
      (await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'tokens', amount: '4.20' })).status,
    ).toBe(201);
    return http
      .post(`/api/v1/orders/${orderId}/pay`)
      .set(auth())
      .send({ channel: 'pays.tokensWallet', payType: 'CASHIER', ...body });
  }

  it('a customerId authorized on one app pays on another and after a restart, with one applyToken', async () => {
    const customerId = `2188${randomBytes(6).toString('hex')}`;
    const first = await boot();
    const authorized = await pay(first, { authCode: wallet.issueAuthCode(customerId) });
    expect(authorized.status).toBe(200);
    expect(applyTokenCalls).toHaveLength(1);

    // The tokens are in the database, and in no answer.
    const rows = await first.app
      .get(DataSource)
      .query<{ access_token: string; refresh_token: string | null }[]>(
        `SELECT access_token, refresh_token FROM alipayplus_authorizations WHERE instance = $1 AND customer_id = $2`,
        [instance.fullName, customerId],
      );
    expect(rows).toHaveLength(1);
    const tokens = [rows[0]?.access_token, rows[0]?.refresh_token].filter((v): v is string => !!v);
    expect(tokens.length).toBe(2);

    const answers: string[] = [authorized.text];
    if (process.env['DATABASE_URL']) {
      // A second api process on the same PostgreSQL, while the first still runs.
      const second = await boot();
      const res = await pay(second, { customerId });
      expect(res.status).toBe(200);
      expect(typeof res.body.payUrl).toBe('string');
      answers.push(res.text);
      await stop(second);
    }
    await stop(first);

    // A restart (the embedded database can only be opened by one process at a time).
    const restarted = await boot();
    const res = await pay(restarted, { customerId });
    expect(res.status).toBe(200);
    expect(typeof res.body.payUrl).toBe('string');
    answers.push(res.text);

    expect(applyTokenCalls).toHaveLength(1);
    for (const text of answers) for (const token of tokens) expect(text).not.toContain(token);

    // A customer this server never authorized is still refused.
    const stranger = await pay(restarted, { customerId: `2188${randomBytes(6).toString('hex')}` });
    expect(stranger.status).toBe(400);
    await stop(restarted);
  });
});
