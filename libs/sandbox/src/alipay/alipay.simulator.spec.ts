import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AlipaySdk } from 'alipay-sdk';

import {
  AlipayProvider,
  type AttemptInput,
  type AttemptRef,
  type PaymentChannel,
  type VerifiedNotify,
} from '#channels';
import { AlipaySimulator, createAlipaySandbox, type AlipaySandbox } from './alipay.simulator.js';
import { payErrorOf as payError } from '../../../../test/utils/spec-helpers.js';

/**
 * Drives the simulator with the real AlipayChannel (built by AlipayProvider from the sandbox's own
 * instance config), over real HTTP, mounted under a prefix the way Express `app.use(prefix, …)` does.
 */

const PREFIX = '/sandbox/alipay';
let gateway: Server;
let receiver: Server;
let sandbox: AlipaySandbox;
let channel: PaymentChannel;
let sdk: AlipaySdk;
let notifyUrl: string;

interface Received {
  readonly verified?: VerifiedNotify;
  readonly error?: string;
  readonly sdkAccepts: boolean;
  readonly reply: string;
}
const received: Received[] = [];
/** Replies given to successive notifies (then `success`). */
let scriptedReplies: string[] = [];

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function onNotify(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req);
  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
  const sdkAccepts = sdk.checkNotifySignV2(Object.fromEntries(new URLSearchParams(body.toString('utf8'))));
  let entry: Omit<Received, 'reply'>;
  try {
    const verified = await channel.verifyNotify({ headers, body, method: req.method ?? '', path: req.url ?? '' });
    entry = { verified, sdkAccepts };
  } catch (e) {
    entry = { error: e instanceof Error ? e.message : String(e), sdkAccepts };
  }
  const reply = entry.verified ? (scriptedReplies.shift() ?? 'success') : 'fail';
  received.push({ ...entry, reply });
  res.writeHead(200, { 'content-type': 'text/plain' }).end(reply);
}

beforeAll(async () => {
  gateway = createServer((req, res) => {
    // What Express's app.use(PREFIX, listener) does: strip the mount path from req.url.
    const url = req.url ?? '/';
    if (!url.startsWith(PREFIX)) {
      res.writeHead(404).end();
      return;
    }
    req.url = url.slice(PREFIX.length) || '/';
    sandbox.simulator.listener(req, res);
  });
  receiver = createServer((req, res) => void onNotify(req, res));
  await Promise.all([
    new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r)),
    new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r)),
  ]);
  sandbox = createAlipaySandbox({
    baseUrl: `http://127.0.0.1:${(gateway.address() as AddressInfo).port}${PREFIX}`,
    notifyRetryDelaysMs: [40, 40, 40],
  });
  notifyUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/api/v1/notify/alipay`;
  channel = new AlipayProvider().createInstance(sandbox.instance);
  sdk = new AlipaySdk({
    appId: sandbox.instance.config['appId'] as string,
    privateKey: sandbox.instance.config['privateKey'] as string,
    alipayPublicKey: sandbox.instance.config['publicKey'] as string,
  });
});

afterAll(async () => {
  sandbox.simulator.close();
  for (const s of [gateway, receiver]) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

beforeEach(() => {
  received.length = 0;
  scriptedReplies = [];
  sandbox.simulator.setDown(false);
  sandbox.simulator.setLatencyMs(0);
  sandbox.simulator.setDropNotifies(false);
});

let seq = 0;
function attempt(over: Partial<AttemptInput> = {}): AttemptInput {
  seq += 1;
  const id = `D20240301120000${String(100000 + seq)}`;
  return {
    orderId: id,
    attemptId: `a${seq}`,
    outTradeNo: id,
    subject: 'Sandbox <b>coffee</b> & "cake"',
    amount: { minor: 1234, currency: 'CNY' },
    payType: 'PRE_PAY',
    expireTime: new Date(Date.now() + 30 * 60_000),
    notifyUrl,
    ...over,
  };
}

function refOf(input: AttemptInput): AttemptRef {
  return { ...input, createdAt: new Date() };
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function formOf(html: string): { action: string; fields: Record<string, string> } {
  const unescape = (s: string) =>
    s
      .replace(/&quot;/g, '"')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&#39;/g, "'")
      .replace(/&amp;/g, '&');
  const action = unescape(/<form action="([^"]*)"/.exec(html)?.[1] ?? '');
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)" \/>/g)) {
    fields[unescape(m[1] as string)] = unescape(m[2] as string);
  }
  return { action, fields };
}

describe('Alipay simulator driven by the real AlipayChannel', () => {
  it('precreate → not_found → scan → pending → pay → notify refused once, retried, then accepted', async () => {
    const input = attempt();
    const info = await channel.createPayment(input);
    expect(info.qrContent).toBe(`${sandbox.simulator.baseUrl}/cashier/${input.outTradeNo}`);
    expect(info.payUrl).toBe(info.qrContent);

    expect((await channel.queryPayment(refOf(input))).status).toBe('not_found');
    sandbox.simulator.scan(input.outTradeNo);
    const pending = await channel.queryPayment(refOf(input));
    expect(pending.status).toBe('pending');
    expect(pending.amount).toEqual({ minor: 1234, currency: 'CNY' });

    scriptedReplies = ['fail'];
    await sandbox.simulator.pay(input.outTradeNo);
    await until(() => received.length >= 2);
    await sandbox.simulator.idle();

    const log = sandbox.simulator.notifyLog.filter((a) => a.outTradeNo === input.outTradeNo);
    expect(log.map((a) => [a.attempt, a.reply, a.acknowledged])).toEqual([
      [1, 'fail', false],
      [2, 'success', true],
    ]);
    expect(new Set(log.map((a) => a.notifyId)).size).toBe(1);
    for (const r of received) {
      expect(r.error).toBeUndefined();
      expect(r.sdkAccepts).toBe(true);
    }
    const trade = sandbox.simulator.trade(input.outTradeNo);
    const notified = received[0]?.verified as VerifiedNotify;
    expect(notified).toMatchObject({
      outTradeNo: input.outTradeNo,
      channelTradeNo: trade?.tradeNo,
      status: 'paid',
      amount: { minor: 1234, currency: 'CNY' },
      raw: 'TRADE_SUCCESS',
    });
    expect(received[1]?.verified?.dedupeKey).toBe(notified.dedupeKey);
    expect(Math.abs((notified.paidAt as Date).getTime() - (trade?.gmtPayment as Date).getTime())).toBeLessThan(1000);

    const paid = await channel.queryPayment(refOf(input));
    expect(paid).toMatchObject({
      status: 'paid',
      channelTradeNo: trade?.tradeNo,
      amount: { minor: 1234, currency: 'CNY' },
    });
    expect(paid.paidAt).toBeInstanceOf(Date);
    // No more deliveries once acknowledged.
    await new Promise((r) => setTimeout(r, 120));
    expect(sandbox.simulator.notifyLog.filter((a) => a.outTradeNo === input.outTradeNo)).toHaveLength(2);
  });

  it('close: an unscanned precreate is not_found, a waiting trade closes, a paid one is already_paid', async () => {
    const unscanned = attempt();
    await channel.createPayment(unscanned);
    expect(await channel.closePayment(refOf(unscanned))).toBe('not_found');

    const waiting = attempt();
    await channel.createPayment(waiting);
    sandbox.simulator.scan(waiting.outTradeNo);
    expect(await channel.closePayment(refOf(waiting))).toBe('closed');
    expect((await channel.queryPayment(refOf(waiting))).status).toBe('closed');
    expect(await channel.closePayment(refOf(waiting))).toBe('closed');
    await expect(sandbox.simulator.pay(waiting.outTradeNo)).rejects.toThrow('not payable');

    const paid = attempt();
    await channel.createPayment(paid);
    await sandbox.simulator.pay(paid.outTradeNo);
    expect(await channel.closePayment(refOf(paid))).toBe('already_paid');
    expect(sandbox.simulator.trade(paid.outTradeNo)?.status).toBe('TRADE_SUCCESS');
  });

  it('close after a system error: query, then cancel the still-waiting trade', async () => {
    const input = attempt();
    await channel.createPayment(input);
    sandbox.simulator.scan(input.outTradeNo);
    sandbox.simulator.failNext('alipay.trade.close', '40004', 'ACQ.SYSTEM_ERROR');
    expect(await channel.closePayment(refOf(input))).toBe('closed');
    expect(sandbox.simulator.trade(input.outTradeNo)?.status).toBe('TRADE_CLOSED');

    const paid = attempt();
    await channel.createPayment(paid);
    await sandbox.simulator.pay(paid.outTradeNo);
    sandbox.simulator.failNext('alipay.trade.close', '20000', 'isp.unknow-error');
    expect(await channel.closePayment(refOf(paid))).toBe('already_paid');
    expect(sandbox.simulator.trade(paid.outTradeNo)?.status).toBe('TRADE_SUCCESS'); // never cancelled (refunded)
  });

  it('answers 40002 isv.invalid-signature to a request signed with another key', async () => {
    const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const wrong = new AlipayProvider().createInstance({
      ...sandbox.instance,
      config: { ...sandbox.instance.config, privateKey: stranger.export({ type: 'pkcs8', format: 'pem' }) },
    });
    const input = attempt();
    const err = await payError(wrong.createPayment(input));
    expect(err.code).toBe('CHANNEL_ERROR');
    expect(err.detail).toMatchObject({ code: '40002', sub_code: 'isv.invalid-signature' });
    expect(String(err.detail?.['sub_msg'])).toContain('&amp;biz_content=');
    expect(sandbox.simulator.trade(input.outTradeNo)).toBeUndefined();
  });

  it('refuses the same out_trade_no with another amount, and repeats the QR for the same one', async () => {
    const input = attempt();
    const first = await channel.createPayment(input);
    expect((await channel.createPayment(input)).qrContent).toBe(first.qrContent);
    const err = await payError(channel.createPayment({ ...input, amount: { minor: 1235, currency: 'CNY' } }));
    expect(err.detail).toMatchObject({ code: '40004', sub_code: 'ACQ.CONTEXT_INCONSISTENT' });
  });

  it('down: every gateway call gets 503; latency delays answers', async () => {
    sandbox.simulator.setDown(true);
    const err = await payError(channel.createPayment(attempt()));
    expect([err.code, err.detail?.['httpStatus']]).toEqual(['CHANNEL_ERROR', 503]);
    sandbox.simulator.setDown(false);
    sandbox.simulator.setLatencyMs(150);
    const started = Date.now();
    await channel.createPayment(attempt());
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('a dropped notify: the payment is only seen by query', async () => {
    sandbox.simulator.setDropNotifies(true);
    const input = attempt();
    await channel.createPayment(input);
    const before = sandbox.simulator.notifyLog.length;
    await sandbox.simulator.pay(input.outTradeNo);
    await new Promise((r) => setTimeout(r, 100));
    expect(sandbox.simulator.notifyLog.length).toBe(before);
    expect(received).toHaveLength(0);
    expect((await channel.queryPayment(refOf(input))).status).toBe('paid');
  });

  it('cashier page: escaped subject, amount, QR of its own URL, Pay and Abandon forms; Pay pays', async () => {
    const input = attempt({ subject: '<script>alert("x")</script> & co' });
    const info = await channel.createPayment(input);
    const res = await fetch(info.payUrl as string);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co');
    expect(html).toContain('¥12.34');
    expect(html).toMatch(/<img id="qr" alt="[^"]+" src="data:image\/png;base64,[A-Za-z0-9+/=]+"/);
    expect(html).toContain(`action="${info.payUrl}/pay"`);
    expect(html).toContain(`action="${info.payUrl}/abandon"`);
    // Opening the cashier is scanning: the trade now exists at "Alipay".
    expect((await channel.queryPayment(refOf(input))).status).toBe('pending');

    const abandon = await fetch(`${info.payUrl}/abandon`, { method: 'POST', redirect: 'manual' });
    expect(abandon.status).toBe(200);
    expect((await channel.queryPayment(refOf(input))).status).toBe('pending');

    const pay = await fetch(`${info.payUrl}/pay`, { method: 'POST', redirect: 'manual' });
    expect(pay.status).toBe(200);
    await until(() => received.length >= 1);
    expect(received[0]?.verified?.outTradeNo).toBe(input.outTradeNo);
    expect((await channel.queryPayment(refOf(input))).status).toBe('paid');
    const again = await fetch(`${info.payUrl}/pay`, { method: 'POST' });
    expect(again.status).toBe(409);
  });

  it('wap.pay form submission and page.pay GET URL open the cashier; a tampered form is refused', async () => {
    const wap = attempt({ payType: 'WAP_PAY', returnUrl: 'https://shop.example.com/done' });
    const info = await channel.createPayment(wap);
    const { action, fields } = formOf(info.form as string);
    const submit = (f: Record<string, string>) =>
      fetch(action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(f).toString(),
      });
    const tampered = await submit({
      ...fields,
      biz_content: (fields['biz_content'] as string).replace('12.34', '0.01'),
    });
    expect(tampered.status).toBe(400);
    expect(await tampered.text()).toContain('isv.invalid-signature');
    const ok = await submit(fields);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('¥12.34');
    expect((await channel.queryPayment(refOf(wap))).status).toBe('pending');
    expect(sandbox.simulator.trade(wap.outTradeNo)).toMatchObject({
      productCode: 'QUICK_WAP_WAY',
      quitUrl: 'https://shop.example.com/done',
    });

    const pay = await fetch(`${sandbox.simulator.baseUrl}/cashier/${wap.outTradeNo}/pay`, {
      method: 'POST',
      redirect: 'manual',
    });
    expect(pay.status).toBe(303);
    const back = new URL(pay.headers.get('location') as string);
    expect(back.origin + back.pathname).toBe('https://shop.example.com/done');
    expect(back.searchParams.get('out_trade_no')).toBe(wap.outTradeNo);

    const page = attempt({ payType: 'PAGE_PAY' });
    const pageInfo = await channel.createPayment(page);
    const opened = await fetch(pageInfo.payUrl as string);
    expect(opened.status).toBe(200);
    expect(sandbox.simulator.trade(page.outTradeNo)?.productCode).toBe('FAST_INSTANT_TRADE_PAY');
    expect((await channel.queryPayment(refOf(page))).status).toBe('pending');
  });

  it('refuses bad biz amounts with ACQ.INVALID_PARAMETER (checked through the SDK as an independent client)', async () => {
    const query = sdk.sdkExecute('alipay.trade.precreate', {
      bizContent: { outTradeNo: 'D20240301120000999999', totalAmount: '12.345', subject: 'x' },
    });
    const res = await fetch(`${sandbox.simulator.baseUrl}/gateway.do?${query}`, { method: 'POST' });
    const body = (await res.json()) as Record<string, Record<string, string>>;
    expect(body['alipay_trade_precreate_response']).toMatchObject({ code: '40004', sub_code: 'ACQ.INVALID_PARAMETER' });
  });

  it('never runs in production', () => {
    const saved = process.env['NODE_ENV'];
    process.env['NODE_ENV'] = 'production';
    try {
      expect(
        () =>
          new AlipaySimulator({
            baseUrl: 'http://x',
            appId: '1',
            appPublicKey: generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey,
            alipayPrivateKey: generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey,
          }),
      ).toThrow('never runs in production');
    } finally {
      if (saved === undefined) delete process.env['NODE_ENV'];
      else process.env['NODE_ENV'] = saved;
    }
  });
});
