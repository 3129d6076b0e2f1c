import { createPrivateKey, createPublicKey, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { AlipaySdk } from 'alipay-sdk';
import { PayError } from '#common';
import {
  AlipayKeyError,
  AlipaySigner,
  alipayNotifyContent,
  alipaySignContent,
  loadAlipayPrivateKey,
  loadAlipayPublicKey,
  rawTopLevelMembers,
} from './alipay.signer.js';

const fixture = (name: string): string => readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), 'utf8');

/** PROTOCOLS.md §1.3/§1.4: public test key of alipay-sdk-nodejs-all (PKCS#1 PEM) and its public half. */
const APP_PRIVATE_PEM = fixture('app-private-key.pem');
const APP_PUBLIC_PEM = fixture('app-public-key.pem');

const bare = (pem: string): string => pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');

// ---- Published vectors (PROTOCOLS.md) ----

const REQUEST_PARAMS = {
  app_id: '2014072300007148',
  method: 'alipay.trade.precreate',
  format: 'JSON',
  charset: 'utf-8',
  sign_type: 'RSA2',
  timestamp: '2014-07-24 03:07:50',
  version: '1.0',
  notify_url: 'https://example.com/alipay/notify',
  biz_content: '{"out_trade_no":"20150320010101001","total_amount":"88.88","subject":"Iphone6 16G"}',
};
const REQUEST_STRING =
  'app_id=2014072300007148&biz_content={"out_trade_no":"20150320010101001","total_amount":"88.88","subject":"Iphone6 16G"}&charset=utf-8&format=JSON&method=alipay.trade.precreate&notify_url=https://example.com/alipay/notify&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0';
const REQUEST_SIGN =
  'VQOEJc0EWQIiNdSckWX3TiMkLlVdoJHWsnJWTs+1LWXVB3wWvz4Y/Q2gETrQukfeNiGXXy1SNlEcB9WzBMF0ReiWQHcgq1T+rW5YZssJDP/UOyeUKCT3cNlhLwp0J+3eAHLlVU+OnMiBHtbKLKumlMeOWvg13XKPnp64ptZWftLnzMFRgRZX2IaqHS5es0uQJKReJ/MiR/zjUSbyxb0019bz8yXoUKmTMK5pTodJSjIKqTd1dTtuK1Js2ITPB5jtFcNhLYMvvmUPNP8B6LvTUwZWZQZZV2wnqVeTAAAb9/e96Av26KA9lik5VlttUuduY/W1DTOKtLBsBvCiAWDH+w==';

const RESPONSE_INNER =
  '{"code":"10000","msg":"Success","out_trade_no":"20150320010101001","qr_code":"https:\\/\\/qr.alipay.com\\/bax03431ljhokirwl38f00a7"}';
const RESPONSE_SIGN =
  'MbOTXLvvjj/deaWrQfeymo44+b26IRmXqspUpczV6jdlRWTfjCu707UzN5i3YgpcN3rDCo7Q6AxbqjE36l0ISUxuvgCcVZ5zs5xO0p3Vb2C3dziV/UDnYjbmY9t/gYUFL1ccVe4DzXzg1mmRoaRmB8NcQAszir2bD8fmmel9v2Cc8rkLFTwj8sPKBfQxkQ967SECyBRJp1Brbrye6iQQblCOFV6qqaFNz1SsX2wDriUWJ4OiDEGgEnDhepf2w9LBVnq/GtT9eXjoVowAZJcWxCq61psL1F9b1pU2MygXM9t5EmYUcgcoH2uQocKbkyPj+IMLcMHDi3CXGaRxPZuayA==';

/** §1.9: a real notification (alipay-sdk-nodejs-all test "verify sign should delete sign_type") and Alipay's key. */
const NOTIFY_STRING =
  'app_id=2019073166072302&auth_app_id=2019073166072302&buyer_id=2088102534368455&buyer_logon_id=xud***@126.com&buyer_pay_amount=0.10&charset=utf-8&fund_bill_list=[{"amount":"0.10","fundChannel":"ALIPAYACCOUNT"}]&gmt_create=2019-08-15 15:56:22&gmt_payment=2019-08-15 15:56:24&invoice_amount=0.10&notify_id=2019081500222155624068450559358070&notify_time=2019-08-15 15:56:25&notify_type=trade_status_sync&out_trade_no=20190815155618536-564-57&point_amount=0.00&receipt_amount=0.10&seller_email=z97-yuquerevenue@service.aliyun.com&seller_id=2088531891668739&subject=语雀空间 500人规模&total_amount=0.10&trade_no=2019081522001468450512505578&trade_status=TRADE_SUCCESS&version=1.0';
const NOTIFY_SIGN =
  'QfTb8tqE1BMhS5qAnXtvsF3/jBkEvu9q9en0pdbBUDDjvKycZhQb7h8GDs4FKfi049PynaNuatxSgLb/nLWZpXyyh0LEWdK2S6Ri7nPwrVgOs08zugLO20vOQz44y3ti2Ncm8/wZts1Fr2gZ7pShnVX3d1B50hbsXnObT1r/U8ONNQjWXd0HIul4TG+Q3fm3svmSvFEy0WnzuhcyHPX5Gm4ELNctL6Qd5YniGJFNcc7kopHYtI/XD9YCKCH6Ct02rzUs9i11C9CsadtZn+WhxF26Dqt9sGEFajkJ8cxUTLi8+VCpLHsgPE8P0y095uQcDdK0YjCh4x7wVSov+lrmOQ==';
const NOTIFY_ALIPAY_PUBLIC_KEY =
  'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqObrdC7hrgAVM98tK0nv3hSQRGGKT4lBsQjHiGjeYZjOPIPHR5knm2jnnz/YGIXIofVHkA/tAlBAd5DrY7YpvI4tP5EONLtZKC2ghBMx7McI2wRD0xiqzxOQr1FuhZGJ8/AUokBzJrzY+aGX2xcOrxFYRlFilvVLTXg4LWjR1tdPkO6+i7wQZAIVMClPkwVRZEbaERRHlKqTzv2gGv5rDU8gRoe1LeaN+6BlbTqHWkQcNCUNrA8C6l17XAXGKDsm/9TFWwO8EPHHHCaQdjtV5/FdcWIt+L8SR1ss7EXTjYDFtxcKVv9rEoY1lX8T4mX+GbXfZHraG5NCF1+XioL5JwIDAQAB';

/** The notify as a form parser hands it over: the published string split back into fields, plus sign/sign_type. */
function notifyParams(): Record<string, string> {
  const params: Record<string, string> = {};
  for (const pair of NOTIFY_STRING.split('&')) {
    const eq = pair.indexOf('=');
    params[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  params['sign'] = NOTIFY_SIGN;
  params['sign_type'] = 'RSA2';
  return params;
}

/** A signer that signs with the fixture app key and verifies with `verifyKey` (default: the fixture's public half). */
function fixtureSigner(verifyKey: string | KeyObject = APP_PUBLIC_PEM): AlipaySigner {
  return new AlipaySigner({ privateKey: APP_PRIVATE_PEM, alipayPublicKey: verifyKey });
}

function payErrorOf(fn: () => unknown): PayError {
  try {
    fn();
  } catch (e) {
    if (e instanceof PayError) return e;
    throw e;
  }
  throw new Error('expected a PayError');
}

describe('request signing (§1.3)', () => {
  const sut = fixtureSigner();

  it('reproduces the published string to sign and signature byte for byte', () => {
    expect(sut.signContent(REQUEST_PARAMS)).toBe(REQUEST_STRING);
    expect(sut.sign(REQUEST_PARAMS)).toBe(REQUEST_SIGN);
  });

  it('drops sign and empty values, keeps sign_type, ignores insertion order', () => {
    const shuffled = Object.fromEntries(Object.entries(REQUEST_PARAMS).reverse());
    const noisy = {
      ...shuffled,
      sign: 'old-signature',
      return_url: '',
      app_auth_token: undefined,
      alipay_root_cert_sn: null,
    };
    expect(alipaySignContent(noisy)).toBe(REQUEST_STRING);
    expect(sut.sign(noisy)).toBe(REQUEST_SIGN);
    expect(alipaySignContent({ ...REQUEST_PARAMS, sign_type: undefined })).not.toContain('sign_type');
  });

  it('sorts keys byte-wise (uppercase before lowercase, "_" between them)', () => {
    expect(alipaySignContent({ b: '1', a_b: '2', aB: '3', a: '4', B: '5' })).toBe('B=5&a=4&aB=3&a_b=2&b=1');
  });

  it('uses raw values, without URL-encoding', () => {
    expect(alipaySignContent({ x: 'a b&c=d%20/é' })).toBe('x=a b&c=d%20/é');
  });
});

describe('response verification (§1.4)', () => {
  const sut = fixtureSigner();
  const body = `{"alipay_trade_precreate_response":${RESPONSE_INNER},"sign":"${RESPONSE_SIGN}"}`;

  it('verifies the published response over its raw bytes and parses the node', () => {
    const res = sut.verifyResponse(body, 'alipay.trade.precreate');
    expect(res.signed).toBe(true);
    expect(res.rawNode).toBe(RESPONSE_INNER);
    expect(res.node['qr_code']).toBe('https://qr.alipay.com/bax03431ljhokirwl38f00a7');
  });

  it('finds the node wherever it stands, with whitespace, and whatever other members hold', () => {
    const decoy = '{"x":"\\"alipay_trade_precreate_response\\":{\\"code\\":\\"10000\\"}","y":[{"}":"{"}]}';
    const spaced = `{ "sign" : "${RESPONSE_SIGN}" ,\n "decoy": ${decoy},\n "alipay_trade_precreate_response" :  ${RESPONSE_INNER}\n}`;
    expect(sut.verifyResponse(spaced, 'alipay.trade.precreate').rawNode).toBe(RESPONSE_INNER);
  });

  it('refuses the published response once any byte of the node changes', () => {
    for (const [from, to] of [
      ['10000', '10001'],
      ['20150320010101001', '20150320010101002'],
      ['bax03431', 'bax03432'],
      ['"msg":"Success"', '"msg" :"Success"'],
    ] as const) {
      const tampered = body.replace(from, to);
      expect(tampered).not.toBe(body);
      expect(payErrorOf(() => sut.verifyResponse(tampered, 'alipay.trade.precreate')).code).toBe('CHANNEL_ERROR');
    }
  });

  it('refuses a valid signature checked with another Alipay public key', () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    expect(payErrorOf(() => fixtureSigner(other).verifyResponse(body, 'alipay.trade.precreate')).code).toBe(
      'CHANNEL_ERROR',
    );
  });

  it('reads the node of the method asked for, not another one', () => {
    expect(payErrorOf(() => sut.verifyResponse(body, 'alipay.trade.query')).code).toBe('CHANNEL_ERROR');
  });

  it('retries with \\/ unescaped when the signer signed the unescaped text (Java SDK quirk)', () => {
    const unescaped = RESPONSE_INNER.replaceAll('\\/', '/');
    const signOverUnescaped = createSign('RSA-SHA256')
      .update(unescaped)
      .sign(createPrivateKey(APP_PRIVATE_PEM), 'base64');
    const quirky = `{"alipay_trade_precreate_response":${RESPONSE_INNER},"sign":"${signOverUnescaped}"}`;
    expect(sut.verifyResponse(quirky, 'alipay.trade.precreate').node['code']).toBe('10000');
  });

  it('needs a signature on a success, but takes an unsigned error_response', () => {
    const unsigned = `{"alipay_trade_precreate_response":${RESPONSE_INNER}}`;
    expect(payErrorOf(() => sut.verifyResponse(unsigned, 'alipay.trade.precreate')).code).toBe('CHANNEL_ERROR');
    const err = '{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"}}';
    const res = sut.verifyResponse(err, 'alipay.trade.precreate');
    expect(res.signed).toBe(false);
    expect(res.responseKey).toBe('error_response');
    expect(res.node['sub_code']).toBe('isv.invalid-app-id');
  });

  it('refuses a signed error whose signature is bad', () => {
    const err = `{"alipay_trade_query_response":{"code":"40004","sub_code":"ACQ.TRADE_NOT_EXIST"},"sign":"${RESPONSE_SIGN}"}`;
    expect(payErrorOf(() => sut.verifyResponse(err, 'alipay.trade.query')).code).toBe('CHANNEL_ERROR');
  });

  it.each(['', 'null', '[]', '{"a":1', '{"a":"x}', '<html>502</html>', '{"a":1} x'])(
    'answers CHANNEL_ERROR for the unreadable body %p',
    (text) => {
      expect(payErrorOf(() => sut.verifyResponse(text, 'alipay.trade.precreate')).code).toBe('CHANNEL_ERROR');
    },
  );

  it('splits top-level members exactly like JSON.parse reads them (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const text = JSON.stringify(obj, null, 1);
        const members = rawTopLevelMembers(text);
        expect(members.map((m) => m.key)).toEqual(Object.keys(obj));
        for (const m of members) expect(JSON.parse(m.raw)).toEqual(JSON.parse(JSON.stringify(obj[m.key])));
      }),
    );
  });
});

describe('notify verification (§1.9)', () => {
  const sut = fixtureSigner(NOTIFY_ALIPAY_PUBLIC_KEY);

  it('verifies the real notification with sign and sign_type removed', () => {
    const params = notifyParams();
    expect(alipayNotifyContent(params)).toBe(NOTIFY_STRING);
    expect(sut.verifyNotify(params)).toBe(true);
  });

  it('fails when sign_type is kept in the string', () => {
    const params = notifyParams();
    expect(sut.verifyText(alipaySignContent(params), NOTIFY_SIGN)).toBe(false);
  });

  it('fails when any single field is changed, added or removed', () => {
    const original = notifyParams();
    for (const key of Object.keys(original).filter((k) => k !== 'sign' && k !== 'sign_type')) {
      expect(sut.verifyNotify({ ...original, [key]: `${original[key]}0` })).toBe(false);
      const without = { ...original };
      delete without[key];
      expect(sut.verifyNotify(without)).toBe(false);
    }
    expect(sut.verifyNotify({ ...original, refund_fee: '0.10' })).toBe(false);
    expect(sut.verifyNotify({ ...original, sign: undefined })).toBe(false);
    expect(sut.verifyNotify({ ...original, sign: 'not base64!' })).toBe(false);
    // Empty values are not signed: adding one changes nothing, as with Alipay's rsaCheckV1.
    expect(sut.verifyNotify({ ...original, passback_params: '' })).toBe(true);
  });
});

describe('key formats (§1.5)', () => {
  const pkcs1Pem = APP_PRIVATE_PEM;
  const key = createPrivateKey(pkcs1Pem);
  const pkcs8Pem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  const privateForms: Record<string, string | KeyObject> = {
    'PEM PKCS#1': pkcs1Pem,
    'PEM PKCS#8': pkcs8Pem,
    'bare base64 PKCS#1': bare(pkcs1Pem),
    'bare base64 PKCS#8': bare(pkcs8Pem),
    'PKCS#8 in 64-column lines without armour': bare(pkcs8Pem).replace(/(.{64})/g, '$1\n'),
    'PEM with CRLF and indentation': `  ${pkcs1Pem.replace(/\n/g, '\r\n')}  `,
    KeyObject: key,
  };
  const publicPem = APP_PUBLIC_PEM;
  const publicForms: Record<string, string | KeyObject> = {
    'PEM SPKI': publicPem,
    'bare base64 SPKI': bare(publicPem),
    'PEM PKCS#1 (RSA PUBLIC KEY)': createPublicKey(publicPem).export({ type: 'pkcs1', format: 'pem' }) as string,
    KeyObject: createPublicKey(publicPem),
  };

  it('recognises the bare prefixes Alipay hands out', () => {
    expect(bare(pkcs1Pem).startsWith('MIIEowIBAAKCAQEA')).toBe(true);
    expect(bare(pkcs8Pem).startsWith('MIIEvQIBADANBgkqhkiG9w0BAQEFAASC')).toBe(true);
    expect(bare(publicPem).startsWith('MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA')).toBe(true);
  });

  it.each(Object.entries(privateForms))('the private key as %s signs the published vector', (_, form) => {
    expect(new AlipaySigner({ privateKey: form, alipayPublicKey: publicPem }).sign(REQUEST_PARAMS)).toBe(REQUEST_SIGN);
  });

  it.each(Object.entries(publicForms))('the public key as %s verifies the published response', (_, form) => {
    const body = `{"alipay_trade_precreate_response":${RESPONSE_INNER},"sign":"${RESPONSE_SIGN}"}`;
    expect(fixtureSigner(form).verifyResponse(body, 'alipay.trade.precreate').signed).toBe(true);
  });

  it("the Alipay console's bare public key of §1.9 loads", () => {
    expect(loadAlipayPublicKey(NOTIFY_ALIPAY_PUBLIC_KEY).asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  const body = bare(pkcs1Pem);
  const broken: Record<string, string> = {
    'truncated base64': body.slice(0, 800),
    'one byte flipped in the middle': `${body.slice(0, 400)}${body[400] === 'A' ? 'B' : 'A'}${body.slice(401)}`.slice(
      0,
      900,
    ),
    'a public key where a private key belongs': publicPem,
    'a PEM with the wrong label': pkcs1Pem.replace(/RSA PRIVATE KEY/g, 'EC PRIVATE KEY'),
    'a PKCS#1 body under a PKCS#8 label': pkcs1Pem.replace(/RSA PRIVATE KEY/g, 'PRIVATE KEY'),
    'not base64': `${body.slice(0, 100)}!!${body.slice(100)}`,
    empty: '',
  };

  it.each(Object.entries(broken))('refuses %s without echoing any of it', (_, text) => {
    let caught: unknown;
    try {
      loadAlipayPrivateKey(text, 'field "privateKey"');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(AlipayKeyError);
    const message = (caught as Error).message + String((caught as Error).stack);
    expect(message).toContain('field "privateKey"');
    for (let i = 0; i + 12 <= text.length; i += 6) {
      const chunk = text.slice(i, i + 12);
      if (/^[A-Za-z0-9+/]{12}$/.test(chunk)) expect(message).not.toContain(chunk);
    }
  });

  it('refuses a private key where the public key belongs, and a non-RSA key', () => {
    expect(() => loadAlipayPublicKey(pkcs8Pem)).toThrow(AlipayKeyError);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => loadAlipayPrivateKey(ec.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string)).toThrow(
      'not an RSA key',
    );
    expect(() => loadAlipayPublicKey(ec.publicKey)).toThrow('not an RSA key');
  });
});

describe('interop with the official alipay-sdk', () => {
  const sdk = new AlipaySdk({
    appId: '2014072300007148',
    privateKey: bare(APP_PRIVATE_PEM),
    alipayPublicKey: bare(APP_PUBLIC_PEM),
  });
  const sut = fixtureSigner();

  /** Notify-like params: no empty values (the SDK would sign them, Alipay skips them). */
  const notifyArb = fc.dictionary(
    fc.stringMatching(/^[a-z][a-z_]{0,15}$/).filter((k) => k !== 'sign' && k !== 'sign_type'),
    fc.string({ minLength: 1, unit: 'grapheme' }),
    { minKeys: 1 },
  );

  it('checkNotifySignV2 accepts notifies signed by our code, sent through a real form encoding (property)', () => {
    fc.assert(
      fc.property(notifyArb, (fields) => {
        const signed = { ...fields, sign_type: 'RSA2', sign: sut.signText(alipayNotifyContent(fields)) };
        const received = Object.fromEntries(new URLSearchParams(new URLSearchParams(signed).toString()));
        expect(sdk.checkNotifySignV2(received)).toBe(true);
        const first = Object.keys(fields)[0] as string;
        expect(sdk.checkNotifySignV2({ ...received, [first]: `${received[first] ?? ''}x` })).toBe(false);
      }),
      { numRuns: 50 },
    );
  });

  it('our verifier accepts the requests the SDK signs, and our signer reproduces its signature', () => {
    const query = sdk.sdkExecute('alipay.trade.precreate', {
      notifyUrl: 'https://example.com/alipay/notify?x=1&y=%2F',
      bizContent: { outTradeNo: 'D20240101000000123456', totalAmount: '88.88', subject: '测试 & <b>"q"</b>' },
    });
    const params = Object.fromEntries(new URLSearchParams(query));
    const sign = params['sign'] as string;
    expect(params['sign_type']).toBe('RSA2');
    expect(sut.verifyText(alipaySignContent(params), sign)).toBe(true);
    expect(sut.sign(params)).toBe(sign);
    expect(sut.verifyText(alipaySignContent({ ...params, total_amount: '1' }), sign)).toBe(false);
  });
});
