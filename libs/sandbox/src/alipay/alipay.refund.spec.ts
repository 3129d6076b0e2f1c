import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AlipaySdk } from 'alipay-sdk';
import { PayError } from '#common';
import {
  AlipayProvider,
  type AttemptInput,
  type PaymentChannel,
  type RefundInput,
  type VerifiedNotify,
} from '#channels';
import { createAlipaySandbox, type AlipaySandbox } from './alipay.simulator.js';

/**
 * Refunds end to end between the real AlipayChannel and the simulator, over real HTTP: full and partial
 * refunds, idempotency on out_request_no, over-refund, delayed refunds, a forced refusal, and the refund
 * notifies (verified by the channel and, independently, by the official alipay-sdk).
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
  readonly params: Record<string, string>;
}
const received: Received[] = [];

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function onNotify(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req);
  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
  const params = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
  const sdkAccepts = sdk.checkNotifySignV2({ ...params });
  try {
    const verified = await channel.verifyNotify({ headers, body, method: req.method ?? '', path: req.url ?? '' });
    received.push({ verified, sdkAccepts, params });
    res.writeHead(200).end('success');
  } catch (e) {
    received.push({ error: e instanceof Error ? e.message : String(e), sdkAccepts, params });
    res.writeHead(200).end('fail');
  }
}

beforeAll(async () => {
  gateway = createServer((req, res) => {
    const url = req.url ?? '/';
    req.url = url.startsWith(PREFIX) ? url.slice(PREFIX.length) || '/' : url;
    sandbox.simulator.listener(req, res);
  });
  receiver = createServer((req, res) => void onNotify(req, res));
  await Promise.all([
    new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r)),
    new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r)),
  ]);
  sandbox = createAlipaySandbox({
    baseUrl: `http://127.0.0.1:${(gateway.address() as AddressInfo).port}${PREFIX}`,
    notifyRetryDelaysMs: [40, 40],
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
  sandbox.simulator.setRefundDelayMs(0);
  sandbox.simulator.setNotifyOnFullRefund(true);
  sandbox.simulator.setDropNotifies(false);
});

let seq = 0;
/** A trade paid at the simulator (its payment notify is let through and discarded). */
async function paidTrade(minor = 1000): Promise<AttemptInput> {
  seq += 1;
  const id = `RF${Date.now().toString(36)}${seq}`;
  const input: AttemptInput = {
    orderId: id,
    attemptId: `a${seq}`,
    outTradeNo: id,
    subject: 'Refund test',
    amount: { minor, currency: 'CNY' },
    payType: 'PRE_PAY',
    expireTime: new Date(Date.now() + 30 * 60_000),
    notifyUrl,
  };
  await channel.createPayment(input);
  await sandbox.simulator.pay(id);
  await sandbox.simulator.idle();
  received.length = 0;
  return input;
}

function refundOf(paid: AttemptInput, refundId: string, minor: number): RefundInput {
  return {
    refundId,
    orderId: paid.orderId,
    payment: { ...paid, createdAt: new Date() },
    amount: { minor, currency: 'CNY' },
    reason: 'returned',
    notifyUrl: 'http://ignored.invalid/alipay-has-no-refund-notify-url',
  };
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const refundNotifies = (): Received[] => received.filter((r) => r.verified?.kind === 'refund');

describe('Alipay refunds against the simulator', () => {
  it('a full refund succeeds at once, closes the trade and notifies TRADE_CLOSED with gmt_close', async () => {
    const paid = await paidTrade(1000);
    const snap = await channel.refund(refundOf(paid, `${paid.orderId}R1`, 1000));
    expect(snap).toMatchObject({ status: 'success', amount: { minor: 1000, currency: 'CNY' } });
    expect(snap.refundedTotal).toEqual({ minor: 1000, currency: 'CNY' });
    expect(snap.finishedAt).toBeInstanceOf(Date);
    expect(sandbox.simulator.trade(paid.outTradeNo)?.status).toBe('TRADE_CLOSED');

    await until(() => refundNotifies().length === 1);
    const n = refundNotifies()[0] as Received;
    expect(n.sdkAccepts).toBe(true); // the official SDK verifies the simulator's signature too
    expect(n.params['trade_status']).toBe('TRADE_CLOSED');
    expect(n.params['gmt_close']).toBeDefined();
    expect(n.params['gmt_refund']).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/);
    expect(n.verified).toMatchObject({
      kind: 'refund',
      outTradeNo: paid.outTradeNo,
      status: 'closed',
      refund: { refundId: `${paid.orderId}R1`, status: 'success', refundedTotal: { minor: 1000, currency: 'CNY' } },
    });
    const q = await channel.queryRefund(refundOf(paid, `${paid.orderId}R1`, 1000));
    expect(q).toMatchObject({ status: 'success', amount: { minor: 1000, currency: 'CNY' }, raw: 'REFUND_SUCCESS' });
  });

  it('two partial refunds: TRADE_SUCCESS notifies with a running refund_fee, never a payment', async () => {
    const paid = await paidTrade(1000);
    const a = await channel.refund(refundOf(paid, `${paid.orderId}A`, 300));
    const b = await channel.refund(refundOf(paid, `${paid.orderId}B`, 200));
    expect([a.status, b.status]).toEqual(['success', 'success']);
    expect(b.refundedTotal).toEqual({ minor: 500, currency: 'CNY' });
    expect(sandbox.simulator.trade(paid.outTradeNo)?.status).toBe('TRADE_SUCCESS');
    await until(() => refundNotifies().length === 2);
    const byId = new Map(refundNotifies().map((r) => [r.verified?.refund?.refundId, r]));
    expect(byId.get(`${paid.orderId}A`)?.params['trade_status']).toBe('TRADE_SUCCESS');
    expect(byId.get(`${paid.orderId}A`)?.verified?.refund?.refundedTotal?.minor).toBe(300);
    expect(byId.get(`${paid.orderId}B`)?.verified?.refund?.refundedTotal?.minor).toBe(500);
    expect(received.every((r) => r.verified?.kind === 'refund' && r.sdkAccepts)).toBe(true);
  });

  it('the same refundId twice refunds once (fund_change=N the second time, still success)', async () => {
    const paid = await paidTrade(1000);
    const first = await channel.refund(refundOf(paid, `${paid.orderId}X`, 400));
    const again = await channel.refund(refundOf(paid, `${paid.orderId}X`, 400));
    expect(first.status).toBe('success');
    expect(again.status).toBe('success');
    const trade = sandbox.simulator.trade(paid.outTradeNo);
    expect(trade?.refunds).toHaveLength(1);
    expect(trade?.refunds[0]?.amountFen).toBe(400n);
    // Another amount under the same refundId is a definite refusal.
    const other = await channel.refund(refundOf(paid, `${paid.orderId}X`, 500));
    expect(other).toMatchObject({ status: 'failed', failureCode: 'ACQ.DISCORDANT_REPEAT_REQUEST' });
  });

  it('a refund over what is left is failed with ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', async () => {
    const paid = await paidTrade(1000);
    await channel.refund(refundOf(paid, `${paid.orderId}A`, 700));
    const over = await channel.refund(refundOf(paid, `${paid.orderId}B`, 301));
    expect(over).toMatchObject({ status: 'failed', failureCode: 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL' });
    expect(sandbox.simulator.trade(paid.outTradeNo)?.refunds).toHaveLength(1);
  });

  it('a delayed refund is pending, then success through queryRefund; an unknown one is not_found', async () => {
    const paid = await paidTrade(1000);
    sandbox.simulator.setRefundDelayMs(300);
    const input = refundOf(paid, `${paid.orderId}D`, 250);
    const first = await channel.refund(input);
    expect(first.status).toBe('pending');
    expect((await channel.queryRefund(input)).status).toBe('pending');
    let last = first;
    const end = Date.now() + 5000;
    while (last.status !== 'success' && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
      last = await channel.queryRefund(input);
    }
    expect(last).toMatchObject({ status: 'success', amount: { minor: 250, currency: 'CNY' } });
    expect((await channel.queryRefund(refundOf(paid, `${paid.orderId}NEVER`, 1))).status).toBe('not_found');
  });

  it('a forced refusal is failed with its sub_code; ACQ.SYSTEM_ERROR throws and a retry refunds once', async () => {
    const paid = await paidTrade(1000);
    sandbox.simulator.failNextRefund();
    const refused = await channel.refund(refundOf(paid, `${paid.orderId}F`, 100));
    expect(refused).toMatchObject({ status: 'failed', failureCode: 'ACQ.SELLER_BALANCE_NOT_ENOUGH' });

    sandbox.simulator.failNext('alipay.trade.refund', '40004', 'ACQ.SYSTEM_ERROR');
    const input = refundOf(paid, `${paid.orderId}S`, 100);
    const err = await channel.refund(input).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayError);
    expect((err as PayError).code).toBe('CHANNEL_ERROR');
    expect((await channel.queryRefund(input)).status).toBe('not_found');
    expect((await channel.refund(input)).status).toBe('success');
    expect((await channel.refund(input)).status).toBe('success');
    expect(sandbox.simulator.trade(paid.outTradeNo)?.refunds.map((r) => r.outRequestNo)).toEqual([`${paid.orderId}S`]);
  });

  it('no notify for a full refund when switched off; the cashier page lists refunds', async () => {
    sandbox.simulator.setNotifyOnFullRefund(false);
    const paid = await paidTrade(500);
    expect((await channel.refund(refundOf(paid, `${paid.orderId}Z`, 500))).status).toBe('success');
    await sandbox.simulator.idle(); // a notify would have been started before the refund answer
    expect(refundNotifies()).toHaveLength(0);
    expect(
      sandbox.simulator.notifyLog.filter((e) => e.outTradeNo === paid.outTradeNo && e.tradeStatus.includes('refund')),
    ).toHaveLength(0);
    const page = await fetch(
      `${sandbox.instance.config['gatewayUrl'] as string}`.replace('/gateway.do', `/cashier/${paid.outTradeNo}`),
    );
    const html = await page.text();
    expect(html).toContain(`${paid.orderId}Z`);
    expect(html).toContain('REFUND_SUCCESS');
  });

  it('a refund notify with a tampered refund_fee is refused', async () => {
    const paid = await paidTrade(1000);
    await channel.refund(refundOf(paid, `${paid.orderId}T`, 100));
    await until(() => refundNotifies().length === 1);
    const params = { ...(refundNotifies()[0] as Received).params, refund_fee: '9.99' };
    await expect(
      channel.verifyNotify({
        headers: {},
        body: Buffer.from(new URLSearchParams(params).toString()),
        method: 'POST',
        path: '/api/v1/notify/alipay',
      }),
    ).rejects.toThrow('bad signature');
  });
});
