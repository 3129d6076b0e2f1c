import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { WebhookInbox, verifyWebhookSignature } from './webhook-inbox.js';

const SECRET = 'sandbox-inbox-secret-0123456789';
const sign = (t: number, body: string, secret = SECRET): string =>
  `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;

describe('verifyWebhookSignature', () => {
  const body = '{"id":"evt_1","type":"order.closed","data":{}}';
  const now = 1_700_000_000;

  it('accepts any v1 made with a known secret, within 300 s', () => {
    expect(
      verifyWebhookSignature(
        `${sign(now, body, 'other-secret-0123456789')},${sign(now, body).split(',')[1]}`,
        body,
        [SECRET],
        now + 300,
      ),
    ).toBe('valid');
  });

  it('tells a bad signature, a stale one and a missing one apart', () => {
    expect(verifyWebhookSignature(sign(now, body), body.replace('evt_1', 'evt_2'), [SECRET], now)).toBe(
      'bad signature',
    );
    expect(verifyWebhookSignature(sign(now, body), body, [SECRET], now + 301)).toBe('too old');
    expect(verifyWebhookSignature(undefined, body, [SECRET], now)).toBe('unsigned');
    expect(verifyWebhookSignature('t=abc,v1=zz', body, [SECRET], now)).toBe('bad signature');
  });
});

describe('WebhookInbox', () => {
  let server: Server;
  let base: string;
  const sut = new WebhookInbox({ secrets: [SECRET] });

  beforeAll(async () => {
    server = createServer(sut.listener);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it('answers 200 to a signed event, 400 to a forged one, and lists both with their verdict (escaped)', async () => {
    const body = JSON.stringify({ id: 'evt_a', type: 'order.succeeded', data: { order: { orderId: '<b>O1</b>' } } });
    const t = Math.floor(Date.now() / 1000);
    const good = await fetch(`${base}/receive`, {
      method: 'POST',
      body,
      headers: { 'PayBridge-Signature': sign(t, body) },
    });
    expect(good.status).toBe(200);
    const forged = await fetch(`${base}/receive`, {
      method: 'POST',
      body: body.replace('evt_a', 'evt_b'),
      headers: { 'PayBridge-Signature': sign(t, body) },
    });
    expect(forged.status).toBe(400);
    expect(sut.events.map((e) => [e.eventId, e.verdict])).toEqual([
      ['evt_b', 'bad signature'],
      ['evt_a', 'valid'],
    ]);
    const page = await (await fetch(`${base}/`)).text();
    expect(page).toContain('evt_a');
    expect(page).toContain('&#60;b&#62;O1&#60;/b&#62;');
    expect(page).not.toContain('<b>O1</b>');
  });
});
