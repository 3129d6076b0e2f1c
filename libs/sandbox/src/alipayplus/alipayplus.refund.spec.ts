import { createPublicKey, verify } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AlipayPlusProvider,
  type AttemptInput,
  type PaymentChannel,
  type RawNotify,
  type RefundInput,
  type VerifiedNotify,
} from '#channels';
import { PayError } from '#common';
import { type AlipayPlusSimulator, createAlipayPlusSandbox } from './alipayplus.simulator.js';
import { readAll } from '../../../../test/utils/spec-helpers.js';

/**
 * Refunds between the real AlipayPlusChannel and the wallet simulator over real HTTP, and the signed
 * notifyRefund, checked by the channel and independently here with node:crypto and the wallet's key.
 */

interface Received {
  readonly raw: RawNotify;
  readonly verified?: VerifiedNotify;
  readonly independentlyValid: boolean;
}

let wallet: Server;
let merchant: Server;
let simulator: AlipayPlusSimulator;
let channel: PaymentChannel;
let baseUrl: string;
let notifyUrl: string;
let refundNotifyUrl: string;
let walletKey: ReturnType<typeof createPublicKey>;
let clientId: string;
const received: Received[] = [];

/** The Alipay+ webhook check written from the fact sheet (§3.8), apart from the channel's signer. */
function independentlyValid(raw: RawNotify): boolean {
  const header = raw.headers['signature'] ?? '';
  const sig = decodeURIComponent(header.split('signature=')[1]?.split(',')[0] ?? '');
  const content = Buffer.concat([
    Buffer.from(`POST ${raw.path}\n${raw.headers['client-id'] ?? ''}.${raw.headers['request-time'] ?? ''}.`),
    raw.body,
  ]);
  return verify('sha256', content, walletKey, Buffer.from(sig, 'base64'));
}

async function onNotify(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readAll(req);
  const raw: RawNotify = {
    headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
    body,
    method: req.method ?? 'POST',
    path: req.url ?? '/',
  };
  let verified: VerifiedNotify | undefined;
  try {
    verified = await channel.verifyNotify(raw);
  } catch {
    verified = undefined;
  }
  received.push({ raw, independentlyValid: independentlyValid(raw), ...(verified ? { verified } : {}) });
  const reply = channel.notifyReply(verified ? 'accepted' : 'rejected');
  res.writeHead(reply.status, { 'Content-Type': reply.contentType }).end(reply.body);
}

beforeAll(async () => {
  wallet = createServer((req, res) => simulator.listener(req, res));
  merchant = createServer((req, res) => void onNotify(req, res));
  await Promise.all([
    new Promise<void>((r) => wallet.listen(0, '127.0.0.1', r)),
    new Promise<void>((r) => merchant.listen(0, '127.0.0.1', r)),
  ]);
  baseUrl = `http://127.0.0.1:${(wallet.address() as AddressInfo).port}/sandbox/alipayplus`;
  const sandbox = createAlipayPlusSandbox({ baseUrl, notifyRetryDelaysMs: [40, 40] });
  simulator = sandbox.simulator;
  channel = new AlipayPlusProvider().createInstance(sandbox.instance);
  clientId = sandbox.instance.config['clientId'] as string;
  walletKey = createPublicKey({
    key: Buffer.from(sandbox.instance.config['walletPublicKey'] as string, 'base64'),
    format: 'der',
    type: 'spki',
  });
  const merchantBase = `http://127.0.0.1:${(merchant.address() as AddressInfo).port}`;
  notifyUrl = `${merchantBase}/api/v1/notify/alipayplus`;
  refundNotifyUrl = `${merchantBase}/api/v1/notify/alipayplus/refund`;
});

afterAll(async () => {
  simulator.close();
  for (const s of [wallet, merchant]) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

beforeEach(() => {
  received.length = 0;
  simulator.setRefundDelayMs(0);
});

let seq = 0;
async function paid(minor = 1000): Promise<AttemptInput & { channelTradeNo: string }> {
  seq += 1;
  const attemptId = `att_rf_${Date.now()}_${seq}`;
  const input: AttemptInput = {
    orderId: `ORF${Date.now()}${seq}`,
    attemptId,
    outTradeNo: attemptId,
    subject: 'Refund test',
    amount: { minor, currency: 'USD' },
    payType: 'CASHIER',
    expireTime: new Date(Date.now() + 15 * 60_000),
    notifyUrl,
    authCode: simulator.issueAuthCode(),
  };
  const info = await channel.createPayment(input);
  await simulator.pay(attemptId);
  received.length = 0;
  return { ...input, channelTradeNo: info.channelTradeNo as string };
}

function refundOf(p: AttemptInput & { channelTradeNo: string }, refundId: string, minor: number): RefundInput {
  return {
    refundId,
    orderId: p.orderId,
    payment: { ...p, createdAt: new Date() },
    amount: { minor, currency: 'USD' },
    reason: 'returned',
    notifyUrl: refundNotifyUrl,
  };
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const refundNews = (): Received[] => received.filter((r) => r.raw.path.endsWith('/refund'));

describe('Alipay+ refunds against the wallet simulator', () => {
  it('a full refund is S = success, and a signed notifyRefund arrives as refund news', async () => {
    const p = await paid(1000);
    const snap = await channel.refund(refundOf(p, `${p.attemptId}_R1`, 1000));
    expect(snap).toMatchObject({ status: 'success', amount: { minor: 1000, currency: 'USD' } });
    expect(snap.channelRefundNo).toBe(simulator.refundsOf(p.attemptId)[0]?.refundId);
    expect(snap.finishedAt).toBeInstanceOf(Date);
    await until(() => refundNews().length === 1);
    const n = refundNews()[0] as Received;
    expect(n.independentlyValid).toBe(true);
    expect(n.raw.headers['client-id']).toBe(clientId);
    expect(n.verified).toMatchObject({
      kind: 'refund',
      outTradeNo: p.attemptId,
      refund: { refundId: `${p.attemptId}_R1`, status: 'success', amount: { minor: 1000, currency: 'USD' } },
    });
    await until(() =>
      simulator.refundNotifyLog.some((e) => e.refundRequestId === `${p.attemptId}_R1` && e.outcome === 'acknowledged'),
    );
  });

  it('two partial refunds; the same refundId twice is one refund; another amount is REPEAT_REQ_INCONSISTENT', async () => {
    const p = await paid(1000);
    expect((await channel.refund(refundOf(p, `${p.attemptId}_A`, 300))).status).toBe('success');
    expect((await channel.refund(refundOf(p, `${p.attemptId}_B`, 200))).status).toBe('success');
    const again = await channel.refund(refundOf(p, `${p.attemptId}_A`, 300));
    expect(again.status).toBe('success');
    expect(simulator.refundsOf(p.attemptId).map((r) => r.amount.value)).toEqual(['300', '200']);
    expect(await channel.refund(refundOf(p, `${p.attemptId}_A`, 301))).toMatchObject({
      status: 'failed',
      failureCode: 'REPEAT_REQ_INCONSISTENT',
    });
  });

  it('an over-refund is failed with REFUND_AMOUNT_EXCEED and refunds nothing', async () => {
    const p = await paid(1000);
    await channel.refund(refundOf(p, `${p.attemptId}_A`, 900));
    expect(await channel.refund(refundOf(p, `${p.attemptId}_B`, 101))).toMatchObject({
      status: 'failed',
      failureCode: 'REFUND_AMOUNT_EXCEED',
    });
    expect(simulator.refundsOf(p.attemptId)).toHaveLength(1);
  });

  it('a delayed refund is pending (U), then success through inquiryRefund and the notify', async () => {
    const p = await paid(1000);
    simulator.setRefundDelayMs(200);
    const input = refundOf(p, `${p.attemptId}_D`, 400);
    expect(await channel.refund(input)).toMatchObject({ status: 'pending', raw: 'U/REFUND_IN_PROCESS' });
    expect((await channel.queryRefund(input)).status).toBe('pending');
    let last = await channel.queryRefund(input);
    const end = Date.now() + 5000;
    while (last.status === 'pending' && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
      last = await channel.queryRefund(input);
    }
    expect(last).toMatchObject({ status: 'success', amount: { minor: 400, currency: 'USD' } });
    await until(() => refundNews().length === 1);
    expect(refundNews()[0]?.verified?.refund).toMatchObject({ refundId: `${p.attemptId}_D`, status: 'success' });
  });

  it('a forced failure is failed with its code; U without landing is pending, not_found, then refunded once', async () => {
    const p = await paid(1000);
    simulator.failNextRefund('REFUND_WINDOW_EXCEED');
    expect(await channel.refund(refundOf(p, `${p.attemptId}_F`, 100))).toMatchObject({
      status: 'failed',
      failureCode: 'REFUND_WINDOW_EXCEED',
    });
    simulator.unknownNextRefund();
    const input = refundOf(p, `${p.attemptId}_U`, 100);
    expect(await channel.refund(input)).toMatchObject({ status: 'pending', raw: 'U/UNKNOWN_EXCEPTION' });
    expect((await channel.queryRefund(input)).status).toBe('not_found');
    expect((await channel.refund(input)).status).toBe('success');
    expect(simulator.refundsOf(p.attemptId).map((r) => r.refundRequestId)).toEqual([`${p.attemptId}_U`]);
  });

  it('a refund of an unpaid payment is failed ORDER_STATUS_INVALID; a wallet outage throws', async () => {
    seq += 1;
    const attemptId = `att_rf_unpaid_${seq}`;
    const input: AttemptInput = {
      orderId: `ORFU${seq}`,
      attemptId,
      outTradeNo: attemptId,
      subject: 'x',
      amount: { minor: 500, currency: 'USD' },
      payType: 'CASHIER',
      expireTime: new Date(Date.now() + 15 * 60_000),
      notifyUrl,
      authCode: simulator.issueAuthCode(),
    };
    await channel.createPayment(input);
    const r = refundOf({ ...input, channelTradeNo: '' }, `${attemptId}_R`, 500);
    expect(await channel.refund(r)).toMatchObject({ status: 'failed', failureCode: 'ORDER_STATUS_INVALID' });
    simulator.setDown(true);
    try {
      const err = await channel
        .refund(refundOf({ ...input, channelTradeNo: '' }, `${attemptId}_R2`, 1))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PayError);
      expect((err as PayError).code).toBe('CHANNEL_ERROR');
    } finally {
      simulator.setDown(false);
    }
  });

  it('a tampered notifyRefund is refused; the cashier page lists refunds', async () => {
    const p = await paid(1000);
    await channel.refund(refundOf(p, `${p.attemptId}_T`, 100));
    await until(() => refundNews().length === 1);
    const n = refundNews()[0] as Received;
    const tampered = Buffer.from(n.raw.body.toString('utf8').replace('"100"', '"999"'));
    await expect(channel.verifyNotify({ ...n.raw, body: tampered })).rejects.toThrow('signature');
    const html = await (await fetch(`${baseUrl}/cashier/${p.channelTradeNo}`)).text();
    expect(html).toContain(`${p.attemptId}_T`);
    expect(html).toContain('SUCCESS');
  });
});
