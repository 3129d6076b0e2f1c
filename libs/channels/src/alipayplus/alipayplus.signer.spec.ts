import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  AlipayPlusKeyError,
  AlipayPlusSigner,
  alipayPlusSign,
  alipayPlusSignContent,
  alipayPlusVerify,
  formatSignatureHeader,
  loadAlipayPlusPrivateKey,
  loadAlipayPlusPublicKey,
  parseSignatureHeader,
} from './alipayplus.signer.js';

const fixture = (name: string): string => readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), 'utf8');
const PKCS1_PEM = fixture('app-private-key.pem');
const PKCS8_B64 = fixture('app-private-key-pkcs8.b64');
const SPKI_PEM = fixture('app-public-key.pem');
const SPKI_B64 = fixture('app-public-key-spki.b64');

// shared/design/PROTOCOLS.md §3.8, self-computed vector [TEST]
const VECTOR = {
  clientId: 'SANDBOX_5X00000000000000',
  time: '2024-01-01T12:00:00+08:00',
  uri: '/v1/payments/pay',
  body: '{"paymentRequestId":"PR_20240101_0001","paymentAmount":{"currency":"USD","value":"1000"}}',
  content:
    'POST /v1/payments/pay\nSANDBOX_5X00000000000000.2024-01-01T12:00:00+08:00.{"paymentRequestId":"PR_20240101_0001","paymentAmount":{"currency":"USD","value":"1000"}}',
  base64:
    'gdwKAK3Ej+fTciCsS6iCIlEI7QMuXnYSrm/pxBOp7RctfAPIEKQW1gP7bI03tUm3ZKRBG8+LuOtVN2SK8BoJ9HOcGxERUiIDX8N76cTCyn34T25En+7hv1hExKdo2rgF4dm9qgNJcK3Y+jcccRONoa+lVcn/vZ3YR+8HHM47WxGJubBjDy+Dk7mLBL33J5eHEAmKZLHVKldIM+nFlj0f67Au3FsHIVfyLFehO7/61sJVBEwcSuxxRYp0f3hhrWsc+E12WxeEMeHmm5KUwzbfB59EFyA+n1wrPb20DlE9HUusgaJzw3D8U1IMzOMx5pLJ17Bu2udgX6F5o69HcCRAWw==',
  header:
    'algorithm=RSA256,keyVersion=1,signature=gdwKAK3Ej%2BfTciCsS6iCIlEI7QMuXnYSrm%2FpxBOp7RctfAPIEKQW1gP7bI03tUm3ZKRBG8%2BLuOtVN2SK8BoJ9HOcGxERUiIDX8N76cTCyn34T25En%2B7hv1hExKdo2rgF4dm9qgNJcK3Y%2BjcccRONoa%2BlVcn%2FvZ3YR%2B8HHM47WxGJubBjDy%2BDk7mLBL33J5eHEAmKZLHVKldIM%2BnFlj0f67Au3FsHIVfyLFehO7%2F61sJVBEwcSuxxRYp0f3hhrWsc%2BE12WxeEMeHmm5KUwzbfB59EFyA%2Bn1wrPb20DlE9HUusgaJzw3D8U1IMzOMx5pLJ17Bu2udgX6F5o69HcCRAWw%3D%3D',
};

/** A signer whose "wallet" key is the fixture key too, so it verifies what it signs. */
function fixtureSigner(): AlipayPlusSigner {
  return new AlipayPlusSigner({ clientId: VECTOR.clientId, privateKey: PKCS1_PEM, walletPublicKey: SPKI_PEM });
}

describe('Alipay+ signer: the PROTOCOLS §3.8 vector', () => {
  it('builds the exact string to sign', () => {
    const content = alipayPlusSignContent('POST', VECTOR.uri, VECTOR.clientId, VECTOR.time, VECTOR.body);
    expect(content.toString('utf8')).toBe(VECTOR.content);
  });

  it.each([
    ['PEM PKCS#1', PKCS1_PEM],
    ['bare base64 PKCS#8', PKCS8_B64],
  ])('reproduces the base64 signature with a %s key', (_label, key) => {
    const sig = alipayPlusSign(Buffer.from(VECTOR.content, 'utf8'), loadAlipayPlusPrivateKey(key));
    expect(sig).toBe(VECTOR.base64);
  });

  it('reproduces the header byte for byte', () => {
    const headers = fixtureSigner().signRequest('POST', VECTOR.uri, VECTOR.time, VECTOR.body);
    expect(headers.Signature).toBe(VECTOR.header);
    expect(headers['Client-Id']).toBe(VECTOR.clientId);
    expect(headers['Request-Time']).toBe(VECTOR.time);
    expect(formatSignatureHeader(VECTOR.base64)).toBe(VECTOR.header);
  });

  it.each([
    ['PEM SPKI', SPKI_PEM],
    ['bare base64 SPKI', SPKI_B64],
  ])('verifies the vector with a %s public key', (_label, key) => {
    expect(alipayPlusVerify(VECTOR.content, VECTOR.base64, loadAlipayPlusPublicKey(key))).toBe(true);
    const signer = new AlipayPlusSigner({ clientId: VECTOR.clientId, privateKey: PKCS8_B64, walletPublicKey: key });
    expect(signer.verifyFromWallet('POST', VECTOR.uri, VECTOR.time, VECTOR.body, VECTOR.header)).toBe(true);
  });
});

describe('Alipay+ signer: tolerant Signature header parsing', () => {
  const encoded = encodeURIComponent(VECTOR.base64);
  it.each([
    ['the SDK form (no spaces)', VECTOR.header],
    ['the docs form (spaces after commas)', `algorithm=RSA256, keyVersion=1, signature=${encoded}`],
    ['spaces around =', `algorithm = RSA256 , keyVersion = 1 , signature = ${encoded}`],
    ['another order', `signature=${encoded},keyVersion=1,algorithm=RSA256`],
    ['missing keyVersion', `algorithm=RSA256,signature=${encoded}`],
    ['signature only', `signature=${encoded}`],
    ['not URL-encoded', `algorithm=RSA256,keyVersion=1,signature=${VECTOR.base64}`],
    ['keys in another case', `Algorithm=RSA256,KeyVersion=1,Signature=${encoded}`],
    ['a quoted value', `algorithm=RSA256,keyVersion=1,signature="${encoded}"`],
    ['lower-case percent escapes', `algorithm=RSA256,keyVersion=1,signature=${encoded.replace(/%2B/g, '%2b')}`],
  ])('accepts %s', (_label, header) => {
    const parsed = parseSignatureHeader(header);
    expect(parsed?.signature).toBe(VECTOR.base64);
    expect(fixtureSigner().verifyFromWallet('POST', VECTOR.uri, VECTOR.time, VECTOR.body, header)).toBe(true);
  });

  it('defaults keyVersion to 1 and keeps a named one', () => {
    expect(parseSignatureHeader(`signature=${encoded}`)?.keyVersion).toBe('1');
    expect(parseSignatureHeader(`algorithm=RSA256,keyVersion=3,signature=${encoded}`)?.keyVersion).toBe('3');
    expect(parseSignatureHeader(VECTOR.header)?.algorithm).toBe('RSA256');
  });

  it.each([
    ['undefined', undefined],
    ['empty', ''],
    ['no signature', 'algorithm=RSA256,keyVersion=1'],
    ['empty signature', 'algorithm=RSA256,keyVersion=1,signature='],
    ['broken percent escape', 'signature=%E0%A4%A'],
    ['not base64', 'signature=not*base64!'],
  ])('refuses %s', (_label, header) => {
    expect(parseSignatureHeader(header)).toBeUndefined();
    expect(fixtureSigner().verifyFromWallet('POST', VECTOR.uri, VECTOR.time, VECTOR.body, header)).toBe(false);
  });

  it('refuses an algorithm other than RSA256', () => {
    const header = `algorithm=HS256,keyVersion=1,signature=${encoded}`;
    expect(fixtureSigner().verifyFromWallet('POST', VECTOR.uri, VECTOR.time, VECTOR.body, header)).toBe(false);
  });
});

describe('Alipay+ signer: tampering fails', () => {
  const signer = fixtureSigner();
  const ok = (method: string, uri: string, time: string, body: string | Buffer, header = VECTOR.header): boolean =>
    signer.verifyFromWallet(method, uri, time, body, header);

  it('verifies the untouched message (lower-case method is upper-cased)', () => {
    expect(ok('POST', VECTOR.uri, VECTOR.time, VECTOR.body)).toBe(true);
    expect(ok('post', VECTOR.uri, VECTOR.time, Buffer.from(VECTOR.body))).toBe(true);
  });

  it.each([
    ['a changed amount', VECTOR.body.replace('"1000"', '"1001"')],
    ['a changed id', VECTOR.body.replace('0001', '0002')],
    ['extra whitespace', VECTOR.body.replace(':', ': ')],
    ['a trailing newline', `${VECTOR.body}\n`],
    ['an empty body', ''],
  ])('refuses %s in the body', (_label, body) => {
    expect(ok('POST', VECTOR.uri, VECTOR.time, body)).toBe(false);
  });

  it.each([
    ['another path', '/v2/payments/pay'],
    ['a query string', '/v1/payments/pay?x=1'],
    ['a trailing slash', '/v1/payments/pay/'],
  ])('refuses %s as the URI', (_label, uri) => {
    expect(ok('POST', uri, VECTOR.time, VECTOR.body)).toBe(false);
  });

  it.each([
    ['a second later', '2024-01-01T12:00:01+08:00'],
    ['the same instant in UTC', '2024-01-01T04:00:00Z'],
    ['epoch milliseconds', '1704081600000'],
  ])('refuses a different Request-Time: %s', (_label, time) => {
    expect(ok('POST', VECTOR.uri, time, VECTOR.body)).toBe(false);
  });

  it('refuses another method, another client id and a flipped signature byte', () => {
    expect(ok('GET', VECTOR.uri, VECTOR.time, VECTOR.body)).toBe(false);
    const other = new AlipayPlusSigner({ clientId: 'SANDBOX_OTHER', privateKey: PKCS1_PEM, walletPublicKey: SPKI_PEM });
    expect(other.verifyFromWallet('POST', VECTOR.uri, VECTOR.time, VECTOR.body, VECTOR.header)).toBe(false);
    const flipped = VECTOR.base64.startsWith('g') ? `h${VECTOR.base64.slice(1)}` : `g${VECTOR.base64.slice(1)}`;
    expect(ok('POST', VECTOR.uri, VECTOR.time, VECTOR.body, `signature=${encodeURIComponent(flipped)}`)).toBe(false);
  });

  it('refuses a signature made by another key', () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const forged = alipayPlusSign(VECTOR.content, privateKey);
    expect(ok('POST', VECTOR.uri, VECTOR.time, VECTOR.body, formatSignatureHeader(forged))).toBe(false);
  });

  it('signs and verifies epoch-millisecond Request-Times and multi-byte bodies verbatim', () => {
    const body = '{"order":{"orderDescription":"咖啡 ☕"}}';
    const h = signer.signRequest('POST', '/v2/payments/pay', '1704081600000', body);
    expect(
      signer.verifyFromWallet('POST', '/v2/payments/pay', '1704081600000', Buffer.from(body, 'utf8'), h.Signature),
    ).toBe(true);
    expect(h.Signature).toMatch(/^algorithm=RSA256,keyVersion=1,signature=[A-Za-z0-9%]+$/);
  });

  it('writes the configured keyVersion', () => {
    const s = new AlipayPlusSigner({
      clientId: 'C',
      privateKey: PKCS1_PEM,
      walletPublicKey: SPKI_PEM,
      keyVersion: '2',
    });
    expect(s.signRequest('POST', '/x', 't', '{}').Signature).toMatch(/^algorithm=RSA256,keyVersion=2,signature=/);
  });
});

describe('Alipay+ signer: key loading', () => {
  it('loads PEM and bare base64 keys of every accepted wrapping', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pkcs1 = privateKey.export({ type: 'pkcs1', format: 'der' }).toString('base64');
    const spki = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    const pub1 = publicKey.export({ type: 'pkcs1', format: 'der' }).toString('base64');
    const wrapped = (b64: string): string => b64.replace(/(.{64})/g, '$1\n');
    for (const k of [pkcs1, wrapped(pkcs1), privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()]) {
      expect(loadAlipayPlusPrivateKey(k).asymmetricKeyType).toBe('rsa');
    }
    for (const k of [spki, pub1, wrapped(spki), publicKey.export({ type: 'pkcs1', format: 'pem' }).toString()]) {
      expect(loadAlipayPlusPublicKey(k).asymmetricKeyType).toBe('rsa');
    }
  });

  it.each(['', 'not a key', 'AAAA', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----'])(
    'refuses %p without echoing it',
    (bad) => {
      let caught: unknown;
      try {
        loadAlipayPlusPrivateKey(bad, 'privateKey');
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(AlipayPlusKeyError);
      if (bad.length > 4) expect((caught as Error).message).not.toContain(bad);
      expect(() => loadAlipayPlusPublicKey(bad)).toThrow(AlipayPlusKeyError);
    },
  );

  it('refuses a public key where a private key is needed', () => {
    expect(() => loadAlipayPlusPrivateKey(SPKI_B64)).toThrow(AlipayPlusKeyError);
  });
});
