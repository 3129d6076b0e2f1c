import { createCipheriv, createHash } from 'node:crypto';
import fc from 'fast-check';
// wechatpay-axios-plugin is CommonJS: under ESM its module.exports is the default export.
import wechatpay from 'wechatpay-axios-plugin';
import {
  constantTimeEqual,
  decryptRefundReqInfo,
  jsapiPaySign,
  signTypeOfSign,
  verifyWechatSign,
  wechatSign,
  wechatSigningString,
  type WechatSignType,
} from './wechatpay.signer.js';

const { Hash } = wechatpay;
const KEY = '192006250b4c09247ec02edce69f6a2d';

describe('wechatSign: published and self-computed vectors (PROTOCOLS.md §2.2, §2.4)', () => {
  const official = {
    appid: 'wxd930ea5d5a258f4f',
    mch_id: '10000100',
    device_info: '1000',
    body: 'test',
    nonce_str: 'ibuaiVcKdpRxkhJA',
  };

  it('builds stringA in ASCII order', () => {
    expect(wechatSigningString(official)).toBe(
      'appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA',
    );
  });

  it('reproduces the official MD5 vector', () => {
    expect(wechatSign(official, KEY, 'MD5')).toBe('9A0A8659F005D6984697E2CA0A9CF3B7');
  });

  it('reproduces the official HMAC-SHA256 vector (with the &key= suffix)', () => {
    expect(wechatSign(official, KEY, 'HMAC-SHA256')).toBe(
      '6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6',
    );
  });

  it('reproduces the unifiedorder NATIVE vector, skipping the empty attach and the sign field', () => {
    const fields = {
      appid: 'wxd930ea5d5a258f4f',
      mch_id: '10000100',
      nonce_str: '5K8264ILTKCH16CQ2502SI8ZNMTM67VS',
      body: 'test',
      attach: '',
      out_trade_no: '20150806125346',
      total_fee: '1',
      spbill_create_ip: '123.12.12.123',
      notify_url: 'https://example.com/wxpay/notify',
      trade_type: 'NATIVE',
      product_id: '12235413214070356458058',
      sign: 'WHATEVER',
    };
    expect(wechatSign(fields, KEY, 'MD5')).toBe('A32D9837B5C2AEF88F31F580D54D73D4');
  });

  const notify = {
    appid: 'wxd930ea5d5a258f4f',
    bank_type: 'CFT',
    cash_fee: '1',
    fee_type: 'CNY',
    is_subscribe: 'N',
    mch_id: '10000100',
    nonce_str: '5d2b6c2a8db53831f7eda20af46e531c',
    openid: 'oUpF8uMEb4qRXf22hE3X68TekukE',
    out_trade_no: '20150806125346',
    result_code: 'SUCCESS',
    return_code: 'SUCCESS',
    time_end: '20140903131540',
    total_fee: '1',
    trade_type: 'NATIVE',
    transaction_id: '1004400740201409030005092168',
  };

  it('reproduces the pay-notify vector (return_code and result_code signed too)', () => {
    expect(wechatSign(notify, KEY, 'MD5')).toBe('5284689929436B6B4389420167AF8630');
  });

  it('reproduces both JSAPI paySign vectors', () => {
    const base = {
      appId: 'wxd930ea5d5a258f4f',
      nonceStr: '5K8264ILTKCH16CQ2502SI8ZNMTM67VS',
      package: 'prepay_id=wx201410272009395522657a690389285100',
      timeStamp: '1414561699',
    };
    expect(jsapiPaySign({ ...base, signType: 'MD5' }, KEY)).toBe('FD19D752A746E5F238A6E53BD99EEBD0');
    expect(jsapiPaySign({ ...base, signType: 'HMAC-SHA256' }, KEY)).toBe(
      'FC7A79E4918B4FFA96E836F5AD4A510F31241FB46C14C971D6D7B4F8E15AF262',
    );
  });

  it('verifies a signed notify, detects the algorithm from the length, and refuses tampering', () => {
    const signed = { ...notify, sign: '5284689929436B6B4389420167AF8630' };
    expect(verifyWechatSign(signed, KEY)).toEqual({ ok: true, signType: 'MD5' });
    expect(verifyWechatSign(signed, KEY, 'HMAC-SHA256').ok).toBe(false); // algorithm pinned by the instance
    expect(verifyWechatSign({ ...signed, total_fee: '100' }, KEY).ok).toBe(false);
    expect(verifyWechatSign({ ...signed, coupon_fee_0: '1' }, KEY).ok).toBe(false); // unknown fields are signed
    expect(verifyWechatSign({ ...signed, sign: undefined }, KEY).ok).toBe(false);
    expect(verifyWechatSign({ ...signed, sign: 'xyz' }, KEY).ok).toBe(false);
    const hmac = { ...notify, sign: wechatSign(notify, KEY, 'HMAC-SHA256') };
    expect(verifyWechatSign(hmac, KEY)).toEqual({ ok: true, signType: 'HMAC-SHA256' });
  });

  it('signTypeOfSign and constantTimeEqual', () => {
    expect(signTypeOfSign('A'.repeat(32))).toBe('MD5');
    expect(signTypeOfSign('a'.repeat(64))).toBe('HMAC-SHA256');
    expect(signTypeOfSign('A'.repeat(40))).toBeUndefined();
    expect(signTypeOfSign('Z'.repeat(32))).toBeUndefined();
    expect(constantTimeEqual('abc', 'abc')).toBe(true);
    expect(constantTimeEqual('abc', 'abd')).toBe(false);
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
  });
});

describe('wechatSign agrees with wechatpay-axios-plugin Hash.sign (independent peer, property)', () => {
  // snake_case ASCII keys as WeChat uses; pure-digit keys are left out because the plugin's ksort
  // rebuilds an object, and JS orders integer-like keys first regardless of the sort.
  const key = fc
    .stringMatching(/^[a-z][a-z0-9_]{0,15}$/)
    .filter((k) => !['sign', 'constructor', 'prototype'].includes(k));
  const value = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.constantFrom('', '0.10', '4200000000000000000000000000', 'a=b&c=d', '中文'),
  );
  const apiKey = fc.string({
    unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789ABCDEF'),
    minLength: 32,
    maxLength: 32,
  });
  const signType = fc.constantFrom<WechatSignType>('MD5', 'HMAC-SHA256');

  it('for random field sets, keys and algorithms', () => {
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 20 }), apiKey, signType, (fields, k, t) => {
        const plain = { ...fields };
        expect(wechatSign(plain, k, t)).toBe(Hash.sign(t, plain, k));
        const signed = { ...plain, sign: Hash.sign(t, plain, k) };
        expect(verifyWechatSign(signed, k, t).ok).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('decryptRefundReqInfo (refund notify req_info, PROTOCOLS-REFUNDS-BILLS.md §2.13)', () => {
  // The decrypted example of WxJava's WxPayRefundNotifyResultTest, encrypted here with node:crypto as the
  // fact sheet describes it (AES-256-ECB, PKCS#7, key = lower-case hex MD5 of the API key).
  const apiKey = '192006250b4c09247ec02edce69f6a2d';
  const root =
    '<root><out_refund_no><![CDATA[R4001312001201707262674894706_4]]></out_refund_no>' +
    '<out_trade_no><![CDATA[201707260201501501005710775]]></out_trade_no>' +
    '<refund_fee><![CDATA[15]]></refund_fee><refund_status><![CDATA[SUCCESS]]></refund_status>' +
    '<success_time><![CDATA[2017-07-26 02:45:49]]></success_time><total_fee><![CDATA[100]]></total_fee></root>';
  const keyHex = createHash('md5').update(apiKey).digest('hex');
  const cipher = createCipheriv('aes-256-ecb', Buffer.from(keyHex, 'ascii'), null);
  const reqInfo = Buffer.concat([cipher.update(root, 'utf8'), cipher.final()]).toString('base64');

  it('decrypts to the <root> document', () => {
    expect(keyHex).toMatch(/^[0-9a-f]{32}$/); // the key is the 32 ASCII bytes of the lower-case hex
    expect(decryptRefundReqInfo(reqInfo, apiKey)).toBe(root);
  });

  it('refuses another key, a truncated block and non-base64 without throwing', () => {
    expect(decryptRefundReqInfo(reqInfo, 'Z'.repeat(32))).not.toBe(root);
    expect(decryptRefundReqInfo(reqInfo.slice(0, 20), apiKey)).toBeUndefined();
    expect(decryptRefundReqInfo('***', apiKey)).toBeUndefined();
  });
});
