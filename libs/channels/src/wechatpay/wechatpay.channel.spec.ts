import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import wechatpay from 'wechatpay-axios-plugin';
import { Clock, ConfigError, PayError } from '#common';
import type { AttemptInput, AttemptRef, ChannelInstanceConfig, RawNotify } from '../channel.interface.js';
import { WechatPayChannel } from './wechatpay.channel.js';
import { mapTradeState, parseGmt8Compact } from './wechatpay.mapper.js';
import { WechatPayProvider } from './wechatpay.provider.js';
import { buildWechatXml, parseWechatXml } from './wechatpay.xml.js';

const { Hash } = wechatpay;
const KEY = '192006250b4c09247ec02edce69f6a2d';
const APPID = 'wxd930ea5d5a258f4f';
const MCHID = '10000100';
// 2024-05-01 12:00:00 GMT+8
const NOW = new Date('2024-05-01T04:00:00.000Z');

class FixedClock extends Clock {
  constructor(public t: Date) {
    super();
  }
  now(): Date {
    return this.t;
  }
}

type SignType = 'MD5' | 'HMAC-SHA256';

/** A canned WeChat endpoint: records requests, answers with what the test sets (signed by the peer library). */
class CannedWechat {
  server!: Server;
  baseUrl = '';
  requests: { path: string; fields: Record<string, string> }[] = [];
  answer: (path: string, req: Record<string, string>) => { status?: number; body: string } = () => ({ body: 'unset' });

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const fields = { ...parseWechatXml(Buffer.concat(chunks)) };
        this.requests.push({ path: req.url ?? '', fields });
        const a = this.answer(req.url ?? '', fields);
        res.writeHead(a.status ?? 200, { 'content-type': 'text/xml' }).end(a.body);
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function signedXml(fields: Record<string, string>, type: SignType = 'MD5', key = KEY): string {
  return buildWechatXml({ ...fields, sign: Hash.sign(type, fields, key) });
}

function ok(extra: Record<string, string>, type: SignType = 'MD5'): { body: string } {
  return {
    body: signedXml(
      {
        return_code: 'SUCCESS',
        return_msg: 'OK',
        appid: APPID,
        mch_id: MCHID,
        nonce_str: 'n0nce',
        result_code: 'SUCCESS',
        ...extra,
      },
      type,
    ),
  };
}

function fail(errCode: string, type: SignType = 'MD5'): { body: string } {
  return ok({ result_code: 'FAIL', err_code: errCode, err_code_des: `描述 ${errCode} secret-ish` }, type);
}

function instance(config: Record<string, unknown>, fullName = 'pays.myWechat'): ChannelInstanceConfig {
  return { fullName, type: 'pays.WechatPayType', title: 'My WeChat', isDefault: true, config };
}

async function caught(p: Promise<unknown>): Promise<PayError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PayError);
    return err as PayError;
  }
  throw new Error('expected a PayError');
}

const canned = new CannedWechat();
beforeAll(() => canned.start());
afterAll(() => canned.stop());
beforeEach(() => {
  canned.requests = [];
});

function channel(signType: SignType = 'MD5', clock = new FixedClock(NOW)): WechatPayChannel {
  return new WechatPayProvider(clock).createInstance(
    instance({ appId: APPID, mchId: MCHID, apiKey: KEY, signType, baseUrl: `${canned.baseUrl}/` }),
  );
}

function attempt(over: Partial<AttemptInput> = {}): AttemptInput {
  return {
    orderId: 'D20240501120000123456',
    attemptId: 'att-1',
    outTradeNo: 'D20240501120000123456',
    subject: 'Test order',
    amount: { minor: 1234, currency: 'CNY' },
    payType: 'NATIVE',
    expireTime: new Date(NOW.getTime() + 30 * 60_000),
    notifyUrl: 'https://pay.example.com/api/v1/notify/pays.myWechat',
    ...over,
  };
}

function ref(over: Partial<AttemptRef> = {}): AttemptRef {
  return {
    orderId: 'D20240501120000123456',
    attemptId: 'att-1',
    outTradeNo: 'D20240501120000123456',
    payType: 'NATIVE',
    amount: { minor: 1234, currency: 'CNY' },
    createdAt: new Date(NOW.getTime() - 10 * 60_000),
    ...over,
  };
}

function lastRequest(): { path: string; fields: Record<string, string> } {
  const r = canned.requests.at(-1);
  if (!r) throw new Error('no request');
  return r;
}

describe('WechatPayProvider', () => {
  const good = { appId: APPID, mchId: MCHID, apiKey: KEY };

  it('builds an instance with the contract fields', () => {
    const sut = new WechatPayProvider().createInstance(instance(good));
    expect(sut.type).toBe('pays.WechatPayType');
    expect(sut.fullName).toBe('pays.myWechat');
    expect(sut.payTypes).toEqual(['NATIVE', 'MWEB', 'JSAPI']);
    expect(sut.notifyKey).toBe(`${APPID}|${MCHID}`);
    expect(sut.resolvePayType('pc')).toBe('NATIVE');
    expect(sut.resolvePayType('mobile')).toBe('MWEB');
    expect(sut.resolvePayType('JSAPI')).toBe('JSAPI');
    expect(sut.resolvePayType('APP')).toBeUndefined();
    expect(sut.outTradeNoFor('D1234567', 'attempt-uuid')).toBe('D1234567');
  });

  it.each([
    [{ ...good, apiKey: undefined }, 'config.apiKey is required'],
    [{ ...good, apiKey: 'short-secret-value' }, 'config.apiKey must be the 32-character'],
    [{ ...good, apiKey: `${KEY}x` }, 'config.apiKey must be the 32-character'],
    [{ ...good, appId: '' }, 'config.appId is required'],
    [{ ...good, mchId: undefined }, 'config.mchId is required'],
    [{ ...good, mchId: { x: 1 } }, 'config.mchId must be a string'],
    [{ ...good, signType: 'SHA1' }, 'config.signType must be MD5 or HMAC-SHA256'],
    [{ ...good, baseUrl: 'ftp://host' }, 'config.baseUrl must be'],
    [{ ...good, baseUrl: 'https://user:pw@host' }, 'config.baseUrl must be'],
  ])('refuses %p with a ConfigError naming the instance and field', (config, message) => {
    let err: unknown;
    try {
      new WechatPayProvider().createInstance(instance(config, 'pays.wx'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(`pays.wx: ${message}`);
    for (const v of Object.values(config)) {
      if (typeof v === 'string' && v.length > 3) expect((err as Error).message).not.toContain(v);
    }
  });

  it('accepts a numeric mchId and HMAC', () => {
    const sut = new WechatPayProvider().createInstance(instance({ ...good, mchId: 10000100, signType: 'HMAC-SHA256' }));
    expect(sut.notifyKey).toBe(`${APPID}|10000100`);
  });

  it('notifyKeyOf reads appid|mch_id without trusting it, undefined when unreadable', () => {
    const sut = new WechatPayProvider();
    const raw = (body: string): RawNotify => ({ headers: {}, body: Buffer.from(body), method: 'POST', path: '/n' });
    expect(sut.notifyKeyOf(raw('<xml><appid>wxA</appid><mch_id>123</mch_id><sign>bad</sign></xml>'))).toBe('wxA|123');
    expect(sut.notifyKeyOf(raw('<xml><appid>wxA</appid></xml>'))).toBeUndefined();
    expect(sut.notifyKeyOf(raw('not xml'))).toBeUndefined();
    expect(
      sut.notifyKeyOf(raw('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><appid>&e;</appid></xml>')),
    ).toBeUndefined();
  });

  it('rejectReply is the FAIL XML with 200 text/xml', () => {
    expect(new WechatPayProvider().rejectReply()).toEqual({
      status: 200,
      contentType: 'text/xml',
      body: '<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[FAIL]]></return_msg></xml>',
    });
  });
});

describe('WechatPayChannel.createPayment', () => {
  it('NATIVE: sends a signed unifiedorder and returns code_url as payUrl and qrContent', async () => {
    canned.answer = () => ok({ trade_type: 'NATIVE', prepay_id: 'wx201', code_url: 'weixin://wxpay/bizpayurl?pr=abc' });
    const subject = `${'支'.repeat(120)}😀😀😀😀😀😀😀😀😀😀`; // 130 code points; the emoji are surrogate pairs
    const info = await channel().createPayment(attempt({ subject, payType: 'pc' }));
    expect(info).toEqual({ payUrl: 'weixin://wxpay/bizpayurl?pr=abc', qrContent: 'weixin://wxpay/bizpayurl?pr=abc' });

    const { path, fields } = lastRequest();
    expect(path).toBe('/pay/unifiedorder');
    expect(fields['sign']).toBe(Hash.sign('MD5', fields, KEY)); // the independent peer agrees
    // No time_start: a repeated unifiedorder must carry identical parameters or WeChat answers OUT_TRADE_NO_USED.
    expect(fields['time_start']).toBeUndefined();
    expect(fields).toMatchObject({
      appid: APPID,
      mch_id: MCHID,
      out_trade_no: 'D20240501120000123456',
      total_fee: '1234',
      spbill_create_ip: '127.0.0.1',
      time_expire: '20240501123000',
      notify_url: 'https://pay.example.com/api/v1/notify/pays.myWechat',
      trade_type: 'NATIVE',
      product_id: 'D20240501120000123456',
    });
    expect(Array.from(fields['body'] ?? '')).toHaveLength(127);
    expect(fields['body']).toBe(`${'支'.repeat(120)}${'😀'.repeat(7)}`);
    expect(fields['nonce_str']).toMatch(/^[0-9a-f]{32}$/);
    expect(fields['sign_type']).toBeUndefined();
    expect(fields['openid']).toBeUndefined();
  });

  it('MWEB: needs the client IP, sends scene_info, appends redirect_url', async () => {
    canned.answer = () =>
      ok({
        trade_type: 'MWEB',
        prepay_id: 'wx202',
        mweb_url: 'https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx202&package=1',
      });
    const info = await channel().createPayment(
      attempt({ payType: 'mobile', clientIp: '203.0.113.7', returnUrl: 'https://shop.example.com/back?o=1' }),
    );
    expect(info.payUrl).toBe(
      'https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx202&package=1&redirect_url=https%3A%2F%2Fshop.example.com%2Fback%3Fo%3D1',
    );
    const { fields } = lastRequest();
    expect(fields['spbill_create_ip']).toBe('203.0.113.7');
    expect(fields['trade_type']).toBe('MWEB');
    expect(JSON.parse(fields['scene_info'] ?? '')).toEqual({
      h5_info: { type: 'Wap', wap_url: 'https://shop.example.com', wap_name: 'My WeChat' },
    });
    expect(fields['product_id']).toBeUndefined();
  });

  it('MWEB without returnUrl: wap_url falls back to the public host and payUrl is mweb_url', async () => {
    canned.answer = () =>
      ok({ trade_type: 'MWEB', prepay_id: 'wx203', mweb_url: 'https://wx.tenpay.com/x?prepay_id=wx203' });
    const info = await channel().createPayment(attempt({ payType: 'MWEB', clientIp: '203.0.113.7' }));
    expect(info).toEqual({ payUrl: 'https://wx.tenpay.com/x?prepay_id=wx203' });
    expect(JSON.parse(lastRequest().fields['scene_info'] ?? '').h5_info.wap_url).toBe('https://pay.example.com');
  });

  it.each<SignType>(['MD5', 'HMAC-SHA256'])(
    'JSAPI (%s): returns front-end params whose paySign the peer verifies',
    async (signType) => {
      canned.answer = () => ok({ trade_type: 'JSAPI', prepay_id: 'wx204' }, signType);
      const info = await channel(signType).createPayment(
        attempt({ payType: 'JSAPI', openid: 'oUpF8uMEb4qRXf22hE3X68TekukE' }),
      );
      const p = info.jsapiParams;
      expect(p).toBeDefined();
      if (!p) return;
      expect(p).toMatchObject({
        appId: APPID,
        timeStamp: String(NOW.getTime() / 1000),
        package: 'prepay_id=wx204',
        signType,
      });
      const { paySign, ...signed } = p;
      expect(paySign).toBe(Hash.sign(signType, signed, KEY));
      const { fields } = lastRequest();
      expect(fields['openid']).toBe('oUpF8uMEb4qRXf22hE3X68TekukE');
      expect(fields['sign']).toBe(Hash.sign(signType, fields, KEY));
      if (signType === 'HMAC-SHA256') expect(fields['sign_type']).toBe('HMAC-SHA256');
    },
  );

  it.each([
    ['non-CNY', attempt({ amount: { minor: 100, currency: 'USD' } })],
    ['MWEB without clientIp', attempt({ payType: 'MWEB' })],
    ['JSAPI without openid', attempt({ payType: 'JSAPI' })],
    ['an expired order', attempt({ expireTime: new Date(NOW.getTime() - 1) })],
  ])('refuses %s with INVALID_PARAMS before calling WeChat', async (_name, input) => {
    const err = await caught(channel().createPayment(input));
    expect(err.code).toBe('INVALID_PARAMS');
    expect(canned.requests).toHaveLength(0);
  });

  it('refuses an unknown pay type', async () => {
    expect((await caught(channel().createPayment(attempt({ payType: 'APP' })))).code).toBe('UNKNOWN_PAY_TYPE');
  });

  it('a badly signed answer is a CHANNEL_ERROR', async () => {
    canned.answer = () => ({
      body: signedXml(
        {
          return_code: 'SUCCESS',
          appid: APPID,
          mch_id: MCHID,
          result_code: 'SUCCESS',
          prepay_id: 'x',
          code_url: 'weixin://x',
        },
        'MD5',
        'f'.repeat(32),
      ),
    });
    const err = await caught(channel().createPayment(attempt()));
    expect(err.code).toBe('CHANNEL_ERROR');
    expect(err.detail?.['reason']).toBe('answer signature invalid');
  });

  it('an MD5-signed answer to an HMAC instance is refused (no downgrade)', async () => {
    canned.answer = () => ok({ prepay_id: 'x', code_url: 'weixin://x' }, 'MD5');
    expect((await caught(channel('HMAC-SHA256').createPayment(attempt()))).code).toBe('CHANNEL_ERROR');
  });

  it('an unsigned answer claiming success is refused', async () => {
    canned.answer = () => ({
      body: buildWechatXml({ return_code: 'SUCCESS', result_code: 'SUCCESS', prepay_id: 'x', code_url: 'weixin://x' }),
    });
    expect((await caught(channel().createPayment(attempt()))).code).toBe('CHANNEL_ERROR');
  });

  it('return_code FAIL, HTTP errors and unreadable answers are CHANNEL_ERRORs with the raw text only in detail', async () => {
    canned.answer = () => ({ body: buildWechatXml({ return_code: 'FAIL', return_msg: '签名错误' }) });
    let err = await caught(channel().createPayment(attempt()));
    expect(err.code).toBe('CHANNEL_ERROR');
    expect(err.message).not.toContain('签名错误');
    expect(err.detail?.['returnMsg']).toBe('签名错误');

    canned.answer = () => ({ status: 500, body: 'oops' });
    err = await caught(channel().createPayment(attempt()));
    expect(err.code).toBe('CHANNEL_ERROR');
    expect(err.detail?.['status']).toBe(500);

    canned.answer = () => ({ body: '<html>gateway</html>' });
    expect((await caught(channel().createPayment(attempt()))).code).toBe('CHANNEL_ERROR');
  });

  it('a business failure keeps err_code in detail and a client-safe message', async () => {
    canned.answer = () => fail('OUT_TRADE_NO_USED');
    const err = await caught(channel().createPayment(attempt()));
    expect(err.code).toBe('CHANNEL_ERROR');
    expect(err.message).toBe('the order was already submitted to WeChat Pay with different parameters');
    expect(err.detail).toMatchObject({ errCode: 'OUT_TRADE_NO_USED', errCodeDes: '描述 OUT_TRADE_NO_USED secret-ish' });
    canned.answer = () => fail('constructor');
    expect((await caught(channel().createPayment(attempt()))).message).toBe('WeChat Pay refused the request');
  });

  it('an answer naming another merchant is refused', async () => {
    canned.answer = () => ok({ mch_id: '999', prepay_id: 'x', code_url: 'weixin://x' });
    expect((await caught(channel().createPayment(attempt()))).code).toBe('CHANNEL_ERROR');
  });
});

describe('WechatPayChannel.queryPayment', () => {
  it.each([
    ['SUCCESS', 'paid'],
    ['REFUND', 'paid'],
    ['NOTPAY', 'pending'],
    ['USERPAYING', 'pending'],
    ['ACCEPT', 'pending'],
    ['CLOSED', 'closed'],
    ['REVOKED', 'closed'],
    ['PAYERROR', 'failed'],
  ])('maps trade_state %s to %s', async (tradeState, status) => {
    canned.answer = () =>
      ok({
        trade_state: tradeState,
        out_trade_no: 'D20240501120000123456',
        total_fee: '1234',
        fee_type: 'CNY',
        transaction_id: '4200000000000000000000000001',
        time_end: '20240501120530',
      });
    const snap = await channel().queryPayment(ref());
    expect(snap.status).toBe(status);
    expect(snap.raw).toBe(tradeState);
    expect(snap.amount).toEqual({ minor: 1234, currency: 'CNY' });
    expect(snap.channelTradeNo).toBe('4200000000000000000000000001');
    if (status === 'paid') expect(snap.paidAt).toEqual(new Date('2024-05-01T04:05:30.000Z'));
    expect(lastRequest().fields['out_trade_no']).toBe('D20240501120000123456');
  });

  it('ORDERNOTEXIST is not_found; SYSTEMERROR and unknown states are CHANNEL_ERRORs', async () => {
    canned.answer = () => fail('ORDERNOTEXIST');
    expect(await channel().queryPayment(ref())).toEqual({ status: 'not_found', raw: 'ORDERNOTEXIST' });
    canned.answer = () => fail('SYSTEMERROR');
    expect((await caught(channel().queryPayment(ref()))).detail?.['errCode']).toBe('SYSTEMERROR');
    canned.answer = () => ok({ trade_state: 'SOMETHING_NEW' });
    expect((await caught(channel().queryPayment(ref()))).code).toBe('CHANNEL_ERROR');
    canned.answer = () => ok({ trade_state: 'SUCCESS', total_fee: '12.34' });
    expect((await caught(channel().queryPayment(ref()))).code).toBe('CHANNEL_ERROR');
    canned.answer = () => ok({ trade_state: 'SUCCESS', out_trade_no: 'OTHER123' });
    expect((await caught(channel().queryPayment(ref()))).code).toBe('CHANNEL_ERROR');
  });

  it('queries by transaction_id when the attempt knows it', async () => {
    canned.answer = () => ok({ trade_state: 'NOTPAY' });
    await channel().queryPayment(ref({ channelTradeNo: '4200000000000000000000000001' }));
    expect(lastRequest().fields['transaction_id']).toBe('4200000000000000000000000001');
    expect(lastRequest().fields['out_trade_no']).toBeUndefined();
  });
});

describe('WechatPayChannel.closePayment', () => {
  it('answers too_early for an attempt younger than 5 minutes, without calling WeChat', async () => {
    expect(await channel().closePayment(ref({ createdAt: new Date(NOW.getTime() - 4 * 60_000 - 59_999) }))).toBe(
      'too_early',
    );
    expect(canned.requests).toHaveLength(0);
  });

  it.each([
    [ok({}), 'closed'],
    [fail('ORDERPAID'), 'already_paid'],
    [fail('ORDERCLOSED'), 'closed'],
    [fail('ORDERNOTEXIST'), 'not_found'],
  ])('maps the answer %#', async (answer, outcome) => {
    canned.answer = () => answer;
    expect(await channel().closePayment(ref({ createdAt: new Date(NOW.getTime() - 5 * 60_000) }))).toBe(outcome);
    expect(lastRequest().path).toBe('/pay/closeorder');
    expect(lastRequest().fields['out_trade_no']).toBe('D20240501120000123456');
  });

  it('SYSTEMERROR is a CHANNEL_ERROR', async () => {
    canned.answer = () => fail('SYSTEMERROR');
    const err = await caught(channel().closePayment(ref()));
    expect(err.code).toBe('CHANNEL_ERROR');
    expect(err.detail?.['errCode']).toBe('SYSTEMERROR');
  });
});

describe('WechatPayChannel.verifyNotify and notifyReply', () => {
  const base = {
    return_code: 'SUCCESS',
    appid: APPID,
    mch_id: MCHID,
    nonce_str: '5d2b6c2a8db53831f7eda20af46e531c',
    result_code: 'SUCCESS',
    openid: 'oUpF8uMEb4qRXf22hE3X68TekukE',
    is_subscribe: 'N',
    trade_type: 'NATIVE',
    bank_type: 'CFT',
    total_fee: '1234',
    fee_type: 'CNY',
    cash_fee: '1234',
    transaction_id: '4200000000000000000000000001',
    out_trade_no: 'D20240501120000123456',
    time_end: '20240501120530',
  };
  const raw = (body: string | Buffer): RawNotify => ({
    headers: { 'content-type': 'text/xml' },
    body: Buffer.from(body),
    method: 'POST',
    path: '/notify',
  });

  it('accepts a paid notification (extra coupon fields signed too)', async () => {
    const fields = { ...base, coupon_count: '1', coupon_fee_0: '0', coupon_id_0: 'c1' };
    const v = await channel().verifyNotify(raw(signedXml(fields)));
    expect(v).toEqual({
      kind: 'payment',
      dedupeKey: '4200000000000000000000000001',
      outTradeNo: 'D20240501120000123456',
      channelTradeNo: '4200000000000000000000000001',
      status: 'paid',
      amount: { minor: 1234, currency: 'CNY' },
      paidAt: new Date('2024-05-01T04:05:30.000Z'),
      raw: 'SUCCESS',
    });
  });

  it('accepts an HMAC notification on an HMAC instance, with sign_type present', async () => {
    const fields = { ...base, sign_type: 'HMAC-SHA256' };
    expect((await channel('HMAC-SHA256').verifyNotify(raw(signedXml(fields, 'HMAC-SHA256')))).status).toBe('paid');
  });

  it('a correctly signed result_code=FAIL notification is refused: only orderquery fails an attempt', async () => {
    const { transaction_id: _t, time_end: _e, ...rest } = base;
    await expect(
      channel().verifyNotify(raw(signedXml({ ...rest, result_code: 'FAIL', err_code: 'X' }))),
    ).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
      message: expect.stringContaining('result_code FAIL'),
    });
  });

  it('fee_type defaults to CNY', async () => {
    const { fee_type: _f, ...rest } = base;
    expect((await channel().verifyNotify(raw(signedXml(rest)))).amount).toEqual({ minor: 1234, currency: 'CNY' });
  });

  it.each([
    ['a bad signature', () => signedXml(base, 'MD5', 'e'.repeat(32))],
    ['a tampered amount', () => signedXml(base).replace('<total_fee><![CDATA[1234]]>', '<total_fee><![CDATA[1]]>')],
    ['no signature', () => buildWechatXml(base)],
    ['an HMAC sign on an MD5 instance', () => signedXml(base, 'HMAC-SHA256')],
    ['a sign_type that contradicts the sign', () => signedXml({ ...base, sign_type: 'HMAC-SHA256' }, 'MD5')],
    ['another appid', () => signedXml({ ...base, appid: 'wx0000000000000000' })],
    ['another mch_id', () => signedXml({ ...base, mch_id: '1' })],
    ['return_code FAIL', () => signedXml({ ...base, return_code: 'FAIL' })],
    ['a paid result without transaction_id', () => signedXml({ ...base, transaction_id: '' })],
    [
      'a paid result without total_fee',
      () => {
        const { total_fee: _x, ...r } = base;
        return signedXml(r);
      },
    ],
    ['a decimal total_fee', () => signedXml({ ...base, total_fee: '12.34' })],
    ['an unknown result_code', () => signedXml({ ...base, result_code: 'MAYBE' })],
    ['a bad time_end', () => signedXml({ ...base, time_end: '20240231120000' })],
    ['an XXE payload', () => `<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>${signedXml(base)}`],
    ['a nested element', () => signedXml(base).replace('</xml>', '<a><b>1</b></a></xml>')],
    ['garbage', () => 'SUCCESS'],
  ])('refuses %s with INVALID_PARAMS', async (_name, body) => {
    const err = await caught(channel().verifyNotify(raw(body())));
    expect(err.code).toBe('INVALID_PARAMS');
    expect(err.message).not.toContain(KEY);
  });

  it('notifyReply is exactly the §2.9 XML', () => {
    expect(channel().notifyReply('accepted')).toEqual({
      status: 200,
      contentType: 'text/xml',
      body: '<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>',
    });
    const rejected = channel().notifyReply('rejected');
    expect(parseWechatXml(rejected.body)['return_code']).toBe('FAIL');
    expect(rejected.status).toBe(200);
  });
});

describe('mapper', () => {
  it('parseGmt8Compact refuses impossible dates', () => {
    expect(parseGmt8Compact('20240501120530')).toEqual(new Date('2024-05-01T04:05:30.000Z'));
    expect(parseGmt8Compact('20240101000000')).toEqual(new Date('2023-12-31T16:00:00.000Z'));
    expect(parseGmt8Compact('20240230120000')).toBeUndefined();
    expect(parseGmt8Compact('20240501250000')).toBeUndefined();
    expect(parseGmt8Compact('2024050112053')).toBeUndefined();
  });

  it('mapTradeState never guesses', () => {
    expect(mapTradeState('ORDERNOTEXIST')).toBe('not_found');
    expect(mapTradeState('success')).toBeUndefined();
    expect(mapTradeState('')).toBeUndefined();
  });
});
