import { createSign, createVerify, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '#common';
import type { AttemptInput, AttemptRef, ChannelInstanceConfig, RawNotify } from '../channel.interface.js';
import { AlipayChannel } from './alipay.channel.js';
import { AlipayProvider } from './alipay.provider.js';
import { AlipaySigner, alipayNotifyContent, alipaySignContent } from './alipay.signer.js';
import { payErrorOf as payError } from '../../../../test/utils/spec-helpers.js';

const der = (k: KeyObject, type: 'pkcs1' | 'pkcs8' | 'spki'): string =>
  k.export({ type, format: 'der' } as never).toString('base64');

const appKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const alipayKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const APP_ID = '2021000000000001';
const NOW = new Date('2024-03-01T04:00:00Z'); // 12:00:00 in GMT+8

/** A fake gateway: records requests, answers with canned nodes signed by the "Alipay" key. */
interface Recorded {
  readonly query: URLSearchParams;
  readonly body: URLSearchParams;
  readonly contentType: string | undefined;
  readonly params: Record<string, string>;
}
type Answer = { node: Record<string, string>; sign?: 'good' | 'bad' | 'none'; status?: number } | 'hang';

let server: Server;
let gatewayUrl: string;
const recorded: Recorded[] = [];
const answers: Record<string, Answer[]> = {};

function answer(method: string, ...list: Answer[]): void {
  (answers[method] ??= []).push(...list);
}

function signB64(text: string, key: KeyObject): string {
  return createSign('RSA-SHA256').update(text, 'utf8').sign(key, 'base64');
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const body = new URLSearchParams(await readBody(req));
  const params = { ...Object.fromEntries(url.searchParams), ...Object.fromEntries(body) };
  recorded.push({ query: url.searchParams, body, contentType: req.headers['content-type'], params });
  const method = params['method'] ?? '';
  const next = answers[method]?.shift();
  if (!next) {
    res.writeHead(500).end('no canned answer');
    return;
  }
  if (next === 'hang') return; // never answers: the client must time out
  const inner = JSON.stringify(next.node).replace(/\//g, '\\/');
  const key = `${method.replace(/\./g, '_')}_response`;
  const sign = next.sign ?? 'good';
  const sig = signB64(sign === 'bad' ? `${inner} ` : inner, alipayKeys.privateKey);
  const text = sign === 'none' ? `{"${key}":${inner}}` : `{"${key}":${inner},"sign":"${sig}"}`;
  res.writeHead(next.status ?? 200, { 'content-type': 'application/json;charset=utf-8' }).end(text);
}

beforeAll(async () => {
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  gatewayUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/gateway.do`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  recorded.length = 0;
  for (const k of Object.keys(answers)) delete answers[k];
});

function instance(config: Record<string, unknown> = {}): ChannelInstanceConfig {
  return {
    fullName: 'pays.aliPayment',
    type: 'pays.AliPayType',
    title: 'Alipay',
    isDefault: true,
    config: {
      appId: APP_ID,
      privateKey: der(appKeys.privateKey, 'pkcs1'),
      publicKey: der(alipayKeys.publicKey, 'spki'),
      gatewayUrl,
      ...config,
    },
  };
}

/** The channel under test, with a fixed clock (the provider's own wiring is tested at the end). */
function withClock(options: { sellerId?: string; timeoutMs?: number }): AlipayChannel {
  return new AlipayChannel({
    fullName: 'pays.aliPayment',
    title: 'Alipay',
    appId: APP_ID,
    signer: new AlipaySigner({
      privateKey: der(appKeys.privateKey, 'pkcs1'),
      alipayPublicKey: der(alipayKeys.publicKey, 'spki'),
    }),
    gatewayUrl,
    now: () => NOW,
    ...(options.sellerId ? { sellerId: options.sellerId } : {}),
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  });
}

function attempt(over: Partial<AttemptInput> = {}): AttemptInput {
  return {
    orderId: 'D20240301120000123456',
    attemptId: 'a1',
    outTradeNo: 'D20240301120000123456',
    subject: 'Coffee & <cake> "large"',
    amount: { minor: 8888, currency: 'CNY' },
    payType: 'PRE_PAY',
    expireTime: new Date(NOW.getTime() + 30 * 60_000 + 59_000),
    notifyUrl: 'https://pay.example.com/api/v1/notify/alipay',
    ...over,
  };
}

const ref: AttemptRef = {
  orderId: 'D20240301120000123456',
  attemptId: 'a1',
  outTradeNo: 'D20240301120000123456',
  payType: 'PRE_PAY',
  amount: { minor: 8888, currency: 'CNY' },
  createdAt: NOW,
};

/** Verifies a request as the gateway does: merged params, app public key (§1.3). */
function requestVerifies(params: Record<string, string>): boolean {
  return createVerify('RSA-SHA256')
    .update(alipaySignContent(params), 'utf8')
    .verify(appKeys.publicKey, params['sign'] ?? '', 'base64');
}

describe('AlipayChannel basics', () => {
  const sut = withClock({});

  it('maps pc/mobile and its own payTypes, nothing else', () => {
    expect(sut.payTypes).toEqual(['PRE_PAY', 'WAP_PAY', 'PAGE_PAY']);
    expect(sut.resolvePayType('pc')).toBe('PRE_PAY');
    expect(sut.resolvePayType('mobile')).toBe('WAP_PAY');
    expect(sut.resolvePayType('PAGE_PAY')).toBe('PAGE_PAY');
    expect(sut.resolvePayType('NATIVE')).toBeUndefined();
    expect(sut.outTradeNoFor('D1', 'a1')).toBe('D1');
    expect(sut.notifyKey).toBe(APP_ID);
  });

  it('replies exactly success / fail to notifies', () => {
    expect(sut.notifyReply('accepted')).toEqual({
      status: 200,
      contentType: 'text/plain; charset=utf-8',
      body: 'success',
    });
    expect(sut.notifyReply('rejected').body).toBe('fail');
  });

  it('refuses a non-CNY amount before any call', async () => {
    const err = await payError(sut.createPayment(attempt({ amount: { minor: 100, currency: 'USD' } })));
    expect(err.code).toBe('INVALID_PARAMS');
    expect(recorded).toHaveLength(0);
  });
});

describe('createPayment PRE_PAY (alipay.trade.precreate)', () => {
  it('sends common params in the query, biz_content in the body, signed, and returns the QR', async () => {
    const sut = withClock({});
    answer('alipay.trade.precreate', {
      node: { code: '10000', msg: 'Success', out_trade_no: ref.outTradeNo, qr_code: 'https://qr.alipay.com/bax123' },
    });
    const info = await sut.createPayment(attempt());
    expect(info).toEqual({ payUrl: 'https://qr.alipay.com/bax123', qrContent: 'https://qr.alipay.com/bax123' });
    const req = recorded[0] as Recorded;
    expect(req.contentType).toBe('application/x-www-form-urlencoded;charset=utf-8');
    expect([...req.body.keys()]).toEqual(['biz_content']);
    expect(Object.fromEntries(req.query)).toMatchObject({
      app_id: APP_ID,
      method: 'alipay.trade.precreate',
      format: 'JSON',
      charset: 'utf-8',
      sign_type: 'RSA2',
      timestamp: '2024-03-01 12:00:00',
      version: '1.0',
      notify_url: 'https://pay.example.com/api/v1/notify/alipay',
    });
    expect(JSON.parse(req.params['biz_content'] as string)).toEqual({
      out_trade_no: ref.outTradeNo,
      total_amount: '88.88',
      subject: 'Coffee & <cake> "large"',
      timeout_express: '30m',
      time_expire: '2024-03-01 12:30:59',
    });
    expect(requestVerifies(req.params)).toBe(true);
  });

  it('never asks for less than 1m', async () => {
    const sut = withClock({});
    answer('alipay.trade.precreate', { node: { code: '10000', msg: 'Success', qr_code: 'https://qr.alipay.com/x' } });
    await sut.createPayment(attempt({ expireTime: new Date(NOW.getTime() + 10_000) }));
    expect(JSON.parse(recorded[0]?.params['biz_content'] as string).timeout_express).toBe('1m');
  });

  it('turns a bad or missing response signature into CHANNEL_ERROR', async () => {
    const sut = withClock({});
    const ok = { code: '10000', msg: 'Success', qr_code: 'https://qr.alipay.com/x' };
    answer('alipay.trade.precreate', { node: ok, sign: 'bad' }, { node: ok, sign: 'none' });
    expect((await payError(sut.createPayment(attempt()))).code).toBe('CHANNEL_ERROR');
    expect((await payError(sut.createPayment(attempt()))).code).toBe('CHANNEL_ERROR');
  });

  it('reports gateway failures as CHANNEL_ERROR, the sub_code in detail only', async () => {
    const sut = withClock({});
    answer(
      'alipay.trade.precreate',
      { node: { code: '20000', msg: 'Service Currently Unavailable', sub_code: 'isp.unknow-error', sub_msg: 'busy' } },
      { node: { code: '40004', msg: 'Business Failed', sub_code: 'ACQ.SYSTEM_ERROR', sub_msg: 'system error' } },
      { node: { code: '40002', msg: 'Invalid Arguments', sub_code: 'isv.invalid-signature', sub_msg: 'bad' } },
      { node: { code: '10000' }, status: 503 },
    );
    const e1 = await payError(sut.createPayment(attempt()));
    expect([e1.code, e1.detail?.['sub_code'], e1.detail?.['retryable']]).toEqual([
      'CHANNEL_ERROR',
      'isp.unknow-error',
      true,
    ]);
    expect(e1.message).not.toContain('isp.');
    const e2 = await payError(sut.createPayment(attempt()));
    expect([e2.code, e2.detail?.['sub_code'], e2.detail?.['retryable']]).toEqual([
      'CHANNEL_ERROR',
      'ACQ.SYSTEM_ERROR',
      true,
    ]);
    expect(e2.message).not.toContain('ACQ');
    const e3 = await payError(sut.createPayment(attempt()));
    expect([e3.code, e3.detail?.['sub_code'], e3.detail?.['retryable']]).toEqual([
      'CHANNEL_ERROR',
      'isv.invalid-signature',
      false,
    ]);
    const e4 = await payError(sut.createPayment(attempt()));
    expect([e4.code, e4.detail?.['httpStatus']]).toEqual(['CHANNEL_ERROR', 503]);
  });

  // A gateway that never answers is CHANNEL_TIMEOUT (one deadline for the whole exchange, http.ts), not
  // CHANNEL_ERROR: the caller must then settle the payment by query.
  it('answers CHANNEL_TIMEOUT when the gateway does not answer', async () => {
    const sut = withClock({ timeoutMs: 300 });
    answer('alipay.trade.precreate', 'hang');
    const err = await payError(sut.createPayment(attempt()));
    expect(err.code).toBe('CHANNEL_TIMEOUT');
  });
});

describe('createPayment WAP_PAY / PAGE_PAY (no server call)', () => {
  function fieldsOf(form: string): { action: string; inputs: Record<string, string> } {
    const unescape = (s: string) =>
      s
        .replace(/&quot;/g, '"')
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>')
        .replace(/&#39;/g, "'")
        .replace(/&amp;/g, '&');
    const action = unescape(/<form action="([^"]*)"/.exec(form)?.[1] ?? '');
    const inputs: Record<string, string> = {};
    for (const m of form.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)" \/>/g)) {
      inputs[unescape(m[1] as string)] = unescape(m[2] as string);
    }
    return { action, inputs };
  }

  it('WAP_PAY: a signed auto-submitting form and the same request as a GET URL', async () => {
    const sut = withClock({});
    const info = await sut.createPayment(
      attempt({ payType: 'mobile', returnUrl: 'https://shop.example.com/back?a=1&b="2"' }),
    );
    expect(recorded).toHaveLength(0);
    const form = info.form as string;
    expect(form).toMatch(/method="post"/);
    expect(form).toContain('document.forms["alipaysubmit"].submit()');
    expect(form).not.toContain('<cake>');
    const { action, inputs } = fieldsOf(form);
    const actionUrl = new URL(action);
    expect(actionUrl.origin + actionUrl.pathname).toBe(gatewayUrl);
    const params = { ...Object.fromEntries(actionUrl.searchParams), ...inputs };
    expect(Object.keys(inputs)).toEqual(['biz_content']);
    expect(params['method']).toBe('alipay.trade.wap.pay');
    expect(params['return_url']).toBe('https://shop.example.com/back?a=1&b="2"');
    expect(JSON.parse(params['biz_content'] as string)).toEqual({
      out_trade_no: ref.outTradeNo,
      product_code: 'QUICK_WAP_WAY',
      total_amount: '88.88',
      subject: 'Coffee & <cake> "large"',
      time_expire: '2024-03-01 12:30',
      quit_url: 'https://shop.example.com/back?a=1&b="2"',
    });
    expect(requestVerifies(params)).toBe(true);
    const get = Object.fromEntries(new URL(info.payUrl as string).searchParams);
    expect(get).toEqual(params);
  });

  it('PAGE_PAY: FAST_INSTANT_TRADE_PAY with timeout_express and the absolute time_expire, no return_url when none is given', async () => {
    const sut = withClock({});
    const info = await sut.createPayment(attempt({ payType: 'PAGE_PAY' }));
    const params = Object.fromEntries(new URL(info.payUrl as string).searchParams);
    expect(params['method']).toBe('alipay.trade.page.pay');
    expect(params).not.toHaveProperty('return_url');
    expect(JSON.parse(params['biz_content'] as string)).toEqual({
      out_trade_no: ref.outTradeNo,
      product_code: 'FAST_INSTANT_TRADE_PAY',
      total_amount: '88.88',
      subject: 'Coffee & <cake> "large"',
      timeout_express: '30m',
      time_expire: '2024-03-01 12:30', // the order's expiry in GMT+8: a form opened late is not payable after it
    });
    expect(requestVerifies(params)).toBe(true);
  });
});

describe('queryPayment', () => {
  it.each([
    ['WAIT_BUYER_PAY', 'pending'],
    ['TRADE_SUCCESS', 'paid'],
    ['TRADE_FINISHED', 'paid'],
    ['TRADE_CLOSED', 'closed'],
  ])('maps %s to %s', async (tradeStatus, status) => {
    const sut = withClock({});
    answer('alipay.trade.query', {
      node: {
        code: '10000',
        msg: 'Success',
        trade_no: '2024030122001400001',
        out_trade_no: ref.outTradeNo,
        trade_status: tradeStatus,
        total_amount: '88.88',
        send_pay_date: '2024-03-01 12:05:06',
      },
    });
    const snap = await sut.queryPayment(ref);
    expect(snap.status).toBe(status);
    expect(snap.channelTradeNo).toBe('2024030122001400001');
    expect(snap.amount).toEqual({ minor: 8888, currency: 'CNY' });
    expect(snap.paidAt?.toISOString()).toBe(status === 'paid' ? '2024-03-01T04:05:06.000Z' : undefined);
    expect(JSON.parse(recorded[0]?.params['biz_content'] as string)).toEqual({ out_trade_no: ref.outTradeNo });
  });

  it('reads ACQ.TRADE_NOT_EXIST as not_found, and refuses an unknown status', async () => {
    const sut = withClock({});
    answer(
      'alipay.trade.query',
      { node: { code: '40004', msg: 'Business Failed', sub_code: 'ACQ.TRADE_NOT_EXIST', sub_msg: '交易不存在' } },
      { node: { code: '10000', msg: 'Success', trade_status: 'SOMETHING_NEW' } },
    );
    expect((await sut.queryPayment(ref)).status).toBe('not_found');
    expect((await payError(sut.queryPayment(ref))).code).toBe('CHANNEL_ERROR');
  });
});

describe('closePayment', () => {
  const fail = (sub: string, code = '40004') => ({ node: { code, msg: 'x', sub_code: sub } });
  const query = (trade_status: string) => ({
    node: { code: '10000', msg: 'Success', trade_status, total_amount: '88.88' },
  });

  it('closed / not_found / already_paid from close and its follow-up query', async () => {
    const sut = withClock({});
    answer('alipay.trade.close', { node: { code: '10000', msg: 'Success' } });
    expect(await sut.closePayment(ref)).toBe('closed');
    answer('alipay.trade.close', fail('ACQ.TRADE_NOT_EXIST'));
    expect(await sut.closePayment(ref)).toBe('not_found');
    answer('alipay.trade.close', fail('ACQ.TRADE_STATUS_ERROR'));
    answer('alipay.trade.query', query('TRADE_SUCCESS'));
    expect(await sut.closePayment(ref)).toBe('already_paid');
    answer('alipay.trade.close', fail('ACQ.TRADE_STATUS_ERROR'));
    answer('alipay.trade.query', query('TRADE_CLOSED'));
    expect(await sut.closePayment(ref)).toBe('closed');
    expect(recorded.some((r) => r.params['method'] === 'alipay.trade.cancel')).toBe(false);
  });

  it('on a system error: query, and cancel only a trade still waiting for the buyer', async () => {
    const sut = withClock({});
    answer('alipay.trade.close', fail('ACQ.SYSTEM_ERROR'));
    answer('alipay.trade.query', query('WAIT_BUYER_PAY'));
    answer('alipay.trade.cancel', { node: { code: '10000', msg: 'Success', retry_flag: 'N', action: 'close' } });
    expect(await sut.closePayment(ref)).toBe('closed');
    expect(recorded.map((r) => r.params['method'])).toEqual([
      'alipay.trade.close',
      'alipay.trade.query',
      'alipay.trade.cancel',
    ]);

    recorded.length = 0;
    answer('alipay.trade.close', fail('isp.unknow-error', '20000'));
    answer('alipay.trade.query', query('TRADE_SUCCESS'));
    expect(await sut.closePayment(ref)).toBe('already_paid');
    expect(recorded.map((r) => r.params['method'])).toEqual(['alipay.trade.close', 'alipay.trade.query']);
  });

  it('never cancels when the query fails too, and asks for a retry on retry_flag=Y', async () => {
    const sut = withClock({});
    answer('alipay.trade.close', fail('ACQ.SYSTEM_ERROR'));
    answer('alipay.trade.query', fail('ACQ.SYSTEM_ERROR'));
    const err = await payError(sut.closePayment(ref));
    expect([err.code, err.detail?.['retryable']]).toEqual(['CHANNEL_ERROR', true]);
    expect(recorded.map((r) => r.params['method'])).toEqual(['alipay.trade.close', 'alipay.trade.query']);

    answer('alipay.trade.close', fail('ACQ.SYSTEM_ERROR'));
    answer('alipay.trade.query', query('WAIT_BUYER_PAY'));
    answer('alipay.trade.cancel', { node: { code: '10000', msg: 'Success', retry_flag: 'Y' } });
    expect((await payError(sut.closePayment(ref))).code).toBe('CHANNEL_ERROR');
  });

  it('reports other failures as CHANNEL_ERROR', async () => {
    const sut = withClock({});
    answer('alipay.trade.close', fail('ACQ.INVALID_PARAMETER'));
    const err = await payError(sut.closePayment(ref));
    expect([err.code, err.detail?.['sub_code'], err.detail?.['retryable']]).toEqual([
      'CHANNEL_ERROR',
      'ACQ.INVALID_PARAMETER',
      false,
    ]);
  });
});

describe('refund / queryRefund', () => {
  const input = {
    refundId: 'RF20240301A',
    orderId: ref.orderId,
    payment: ref,
    amount: { minor: 500, currency: 'CNY' },
    reason: 'returned',
    notifyUrl: 'https://pay.example.com/ignored',
  } as const;
  const accepted = (fundChange: string): Record<string, string> => ({
    code: '10000',
    msg: 'Success',
    trade_no: '2024030122001400001',
    out_trade_no: ref.outTradeNo,
    fund_change: fundChange,
    refund_fee: '5.00',
    gmt_refund_pay: '2024-03-01 12:10:00',
  });

  it('sends out_request_no = refundId and reads fund_change=Y as success', async () => {
    const sut = withClock({});
    answer('alipay.trade.refund', { node: accepted('Y') });
    const snap = await sut.refund(input);
    expect(snap).toMatchObject({
      status: 'success',
      amount: { minor: 500, currency: 'CNY' },
      refundedTotal: { minor: 500, currency: 'CNY' },
      finishedAt: new Date('2024-03-01T04:10:00Z'),
    });
    const params = recorded[0]?.params ?? {};
    expect(requestVerifies(params)).toBe(true);
    expect(JSON.parse(params['biz_content'] as string)).toEqual({
      out_trade_no: ref.outTradeNo,
      refund_amount: '5.00',
      out_request_no: 'RF20240301A',
      refund_reason: 'returned',
    });
  });

  it('fund_change=N asks the refund query: REFUND_SUCCESS = success, nothing = pending', async () => {
    const sut = withClock({});
    answer('alipay.trade.refund', { node: accepted('N') }, { node: accepted('N') });
    answer(
      'alipay.trade.fastpay.refund.query',
      {
        node: {
          code: '10000',
          msg: 'Success',
          out_trade_no: ref.outTradeNo,
          out_request_no: 'RF20240301A',
          refund_amount: '5.00',
          refund_status: 'REFUND_SUCCESS',
          gmt_refund_pay: '2024-03-01 12:10:00',
        },
      },
      { node: { code: '10000', msg: 'Success', out_trade_no: ref.outTradeNo } },
    );
    expect(await sut.refund(input)).toMatchObject({ status: 'success', raw: 'REFUND_SUCCESS' });
    expect(await sut.refund(input)).toMatchObject({ status: 'pending', raw: 'fund_change=N' });
    const query = JSON.parse(recorded[1]?.params['biz_content'] as string) as Record<string, unknown>;
    expect(query).toEqual({
      out_trade_no: ref.outTradeNo,
      out_request_no: 'RF20240301A',
      query_options: ['gmt_refund_pay'],
    });
  });

  it.each([
    ['ACQ.SELLER_BALANCE_NOT_ENOUGH'],
    ['ACQ.TRADE_HAS_FINISHED'],
    ['ACQ.REFUND_AMT_NOT_EQUAL_TOTAL'],
    ['ACQ.DISCORDANT_REPEAT_REQUEST'],
  ])('a definite refusal %s is failed with that code', async (subCode) => {
    const sut = withClock({});
    answer('alipay.trade.refund', { node: { code: '40004', msg: 'Business Failed', sub_code: subCode } });
    expect(await sut.refund(input)).toEqual({ status: 'failed', failureCode: subCode, raw: subCode });
  });

  it.each([
    ['40004', 'ACQ.SYSTEM_ERROR'],
    ['20000', 'isp.unknow-error'],
    ['40004', 'ACQ.SOMETHING_NEW'],
    ['40002', 'isv.invalid-signature'],
  ])('%s %s throws CHANNEL_ERROR (retry with the same refundId)', async (code, subCode) => {
    const sut = withClock({});
    answer('alipay.trade.refund', { node: { code, msg: 'x', sub_code: subCode } });
    expect((await payError(sut.refund(input))).code).toBe('CHANNEL_ERROR');
  });

  it('a timeout throws CHANNEL_TIMEOUT', async () => {
    const sut = withClock({ timeoutMs: 100 });
    answer('alipay.trade.refund', 'hang');
    expect((await payError(sut.refund(input))).code).toBe('CHANNEL_TIMEOUT');
  });

  it('queryRefund: no refund_status or TRADE_NOT_EXIST = not_found; REFUND_PROCESSING = pending', async () => {
    const sut = withClock({});
    answer(
      'alipay.trade.fastpay.refund.query',
      { node: { code: '10000', msg: 'Success', out_trade_no: ref.outTradeNo } },
      { node: { code: '40004', msg: 'Business Failed', sub_code: 'ACQ.TRADE_NOT_EXIST' } },
      { node: { code: '10000', msg: 'Success', refund_status: 'REFUND_PROCESSING', refund_amount: '5.00' } },
      { node: { code: '10000', msg: 'Success', out_request_no: 'OTHER', refund_status: 'REFUND_SUCCESS' } },
    );
    expect((await sut.queryRefund(input)).status).toBe('not_found');
    expect((await sut.queryRefund(input)).status).toBe('not_found');
    expect(await sut.queryRefund(input)).toMatchObject({ status: 'pending', amount: { minor: 500, currency: 'CNY' } });
    expect((await payError(sut.queryRefund(input))).code).toBe('CHANNEL_ERROR');
  });
});

describe('verifyNotify', () => {
  const SELLER = '2088000000000007';
  function notify(
    over: Record<string, string | undefined> = {},
    signWith: KeyObject = alipayKeys.privateKey,
  ): RawNotify {
    const fields: Record<string, string> = {
      notify_time: '2024-03-01 12:05:07',
      notify_type: 'trade_status_sync',
      notify_id: 'n-0001',
      app_id: APP_ID,
      charset: 'utf-8',
      version: '1.0',
      trade_no: '2024030122001400001',
      out_trade_no: ref.outTradeNo,
      seller_id: SELLER,
      trade_status: 'TRADE_SUCCESS',
      total_amount: '88.88',
      subject: '100% 纯 & = + 咖啡',
      gmt_payment: '2024-03-01 12:05:06',
    };
    for (const [k, v] of Object.entries(over)) {
      if (v === undefined) delete fields[k];
      else fields[k] = v;
    }
    const sign = signB64(alipayNotifyContent(fields), signWith);
    return {
      method: 'POST',
      path: '/api/v1/notify/alipay',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: Buffer.from(new URLSearchParams({ ...fields, sign_type: 'RSA2', sign }).toString()),
    };
  }

  it('returns the normalised notify', async () => {
    const sut = withClock({ sellerId: SELLER });
    expect(await sut.verifyNotify(notify())).toEqual({
      kind: 'payment',
      dedupeKey: 'n-0001',
      outTradeNo: ref.outTradeNo,
      channelTradeNo: '2024030122001400001',
      status: 'paid',
      raw: 'TRADE_SUCCESS',
      amount: { minor: 8888, currency: 'CNY' },
      paidAt: new Date('2024-03-01T04:05:06Z'),
    });
  });

  it('reads a partial-refund TRADE_SUCCESS notify as refund news, never a payment (§1.12)', async () => {
    const sut = withClock({ sellerId: SELLER });
    const n = await sut.verifyNotify(
      notify({ out_biz_no: 'RF-1', refund_fee: '5.00', gmt_refund: '2024-03-01 12:10:00.320', gmt_payment: undefined }),
    );
    expect(n).toMatchObject({
      kind: 'refund',
      outTradeNo: ref.outTradeNo,
      status: 'paid',
      refund: {
        refundId: 'RF-1',
        status: 'success',
        refundedTotal: { minor: 500, currency: 'CNY' },
        finishedAt: new Date('2024-03-01T04:10:00.320Z'),
      },
    });
    expect(n.refund?.amount).toBeUndefined(); // refund_fee is a running total, not this refund's amount
  });

  it('reads TRADE_CLOSED with gmt_close after a full refund as refund news; an unpaid close stays a payment notify', async () => {
    const sut = withClock({ sellerId: SELLER });
    const full = await sut.verifyNotify(
      notify({
        trade_status: 'TRADE_CLOSED',
        out_biz_no: 'RF-2',
        refund_fee: '88.88',
        gmt_refund: '2024-03-01 12:10:00.5',
        gmt_close: '2024-03-01 12:10:00',
      }),
    );
    expect(full).toMatchObject({ kind: 'refund', status: 'closed', refund: { refundId: 'RF-2', status: 'success' } });
    expect(full.refund?.finishedAt?.toISOString()).toBe('2024-03-01T04:10:00.500Z');
    const unpaid = await sut.verifyNotify(
      notify({ trade_status: 'TRADE_CLOSED', gmt_payment: undefined, gmt_close: '2024-03-01 12:30:00' }),
    );
    expect(unpaid).toMatchObject({ kind: 'payment', status: 'closed' });
    expect(unpaid.refund).toBeUndefined();
    await expect(sut.verifyNotify(notify({ out_biz_no: 'RF-3', refund_fee: '1.234' }))).rejects.toThrow('refund_fee');
  });

  it('falls back to trade_no + trade_status without notify_id', async () => {
    const sut = withClock({});
    expect((await sut.verifyNotify(notify({ notify_id: undefined, trade_status: 'TRADE_CLOSED' }))).dedupeKey).toBe(
      '2024030122001400001:TRADE_CLOSED',
    );
  });

  it('refuses tampering, another key, another app, another seller and a missing sign', async () => {
    const sut = withClock({ sellerId: SELLER });
    const good = notify();
    const tampered = { ...good, body: Buffer.from(good.body.toString().replace('88.88', '0.01')) };
    const unsigned = { ...good, body: Buffer.from(good.body.toString().replace(/&sign=[^&]*/, '')) };
    const cases: RawNotify[] = [
      tampered,
      notify({}, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey),
      notify({ app_id: '2021000000000002' }),
      notify({ seller_id: '2088000000000008' }),
      unsigned,
    ];
    for (const raw of cases) expect((await payError(sut.verifyNotify(raw))).code).toBe('INVALID_PARAMS');
  });

  it('decodes the form exactly once (a value holding %41 stays %41)', async () => {
    const sut = withClock({});
    const raw = notify({ body: 'literally %41 and %E4' });
    await expect(sut.verifyNotify(raw)).resolves.toMatchObject({ status: 'paid' });
  });
});

describe('AlipayProvider', () => {
  const sut = new AlipayProvider();

  it('builds an instance from bare base64 and PEM keys alike', () => {
    const pem = instance({
      privateKey: appKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }),
      publicKey: alipayKeys.publicKey.export({ type: 'spki', format: 'pem' }),
      gatewayUrl: undefined,
    });
    const channel = sut.createInstance(pem);
    expect([channel.type, channel.fullName, channel.notifyKey]).toEqual(['pays.AliPayType', 'pays.aliPayment', APP_ID]);
    expect(sut.createInstance(instance())).toBeInstanceOf(AlipayChannel);
  });

  const secretText = der(appKeys.privateKey, 'pkcs1');
  it.each([
    ['no appId', { appId: undefined }, 'field "appId" is missing'],
    ['no privateKey', { privateKey: undefined }, 'field "privateKey" is missing'],
    ['an empty publicKey', { publicKey: '' }, 'field "publicKey" is empty'],
    ['a truncated privateKey', { privateKey: secretText.slice(0, 900) }, 'field "privateKey"'],
    ['a public key as privateKey', { privateKey: der(alipayKeys.publicKey, 'spki') }, 'field "privateKey"'],
    ['the private key as publicKey', { publicKey: secretText }, 'field "publicKey"'],
    ['an ftp gatewayUrl', { gatewayUrl: 'ftp://x' }, 'field "gatewayUrl"'],
    ['a non-numeric sellerId', { sellerId: 'me' }, 'field "sellerId"'],
    ['a numeric appId', { appId: 12 }, 'field "appId" must be a string'],
  ])('refuses %s with a ConfigError naming the field, never the value', (_, over, message) => {
    let caught: unknown;
    try {
      sut.createInstance(instance(over));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const text = (caught as Error).message;
    expect(text).toContain('pays.aliPayment: ');
    expect(text).toContain(message);
    for (let i = 0; i + 12 <= secretText.length; i += 12) expect(text).not.toContain(secretText.slice(i, i + 12));
  });

  it('reads app_id from a notify without trusting it, and rejects with fail', () => {
    const raw: RawNotify = {
      method: 'POST',
      path: '/',
      headers: {},
      body: Buffer.from('a=1&app_id=2021000000000001&sign=x'),
    };
    expect(sut.notifyKeyOf(raw)).toBe(APP_ID);
    expect(sut.notifyKeyOf({ ...raw, body: Buffer.from('a=1') })).toBeUndefined();
    expect(sut.rejectReply()).toEqual({ status: 200, contentType: 'text/plain; charset=utf-8', body: 'fail' });
  });
});
