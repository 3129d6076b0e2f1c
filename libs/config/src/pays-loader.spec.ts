import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '#common';
import { loadPaysDir } from './pays-loader.js';
import { loadAppConfig, parseApiKeys } from './app-config.js';

function paysDir(files: Record<string, unknown>): string {
  const root = mkdtempSync(join(tmpdir(), 'pays-'));
  for (const [path, content] of Object.entries(files)) {
    const full = join(root, path);
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, typeof content === 'string' ? content : JSON.stringify(content));
  }
  return root;
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

const SECRET = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-very-secret';

describe('loadPaysDir', () => {
  it('reads the seed format, resolves ${ENV} and file: values', () => {
    const dir = paysDir({
      'aliPayment/e.json': { type: 'pays.AliPayType', title: 'Alipay', default: true },
      'aliPayment/aliPayment.json': {
        config: { appId: '2021', privateKey: '${ALI_KEY}', publicKey: 'file:keys/ali.pub' },
      },
      'aliPayment/keys/ali.pub': 'PUBKEY\n',
      'myWechatPay/e.json': { type: 'pays.WechatPayType' },
      'myWechatPay/myWechatPay.json': { config: { appId: 'wx1', mchId: '1', apiKey: 'file:shared.key' } },
      'shared.key': 'K'.repeat(32),
    });
    const got = loadPaysDir(dir, { ALI_KEY: SECRET });
    expect(got).toEqual([
      {
        fullName: 'pays.aliPayment',
        type: 'pays.AliPayType',
        title: 'Alipay',
        isDefault: true,
        config: { appId: '2021', privateKey: SECRET, publicKey: 'PUBKEY' },
      },
      {
        fullName: 'pays.myWechatPay',
        type: 'pays.WechatPayType',
        title: 'myWechatPay',
        isDefault: false,
        config: { appId: 'wx1', mchId: '1', apiKey: 'K'.repeat(32) },
      },
    ]);
  });

  it('answers [] for a missing folder', () => {
    expect(loadPaysDir(join(tmpdir(), 'does-not-exist-pays'))).toEqual([]);
  });

  it.each([
    ['an unknown type', { 'a1/e.json': { type: 'pays.Nope' } }, 'pays.a1: field "type"'],
    ['a missing e.json', { 'a1/a1.json': { config: {} } }, 'pays.a1: e.json is missing'],
    ['invalid JSON', { 'a1/e.json': '{nope' }, 'pays.a1: e.json is not valid JSON'],
    [
      'an unset env var',
      { 'a1/e.json': { type: 'pays.AliPayType' }, 'a1/a1.json': { config: { privateKey: '${NOT_SET_X}' } } },
      'pays.a1: field "privateKey" refers to environment variable NOT_SET_X',
    ],
    [
      'a missing file',
      { 'a1/e.json': { type: 'pays.AliPayType' }, 'a1/a1.json': { config: { privateKey: 'file:nope.pem' } } },
      'pays.a1: field "privateKey" points at a file that does not exist',
    ],
    [
      'a file outside pays/',
      { 'a1/e.json': { type: 'pays.AliPayType' }, 'a1/a1.json': { config: { privateKey: 'file:../../etc/passwd' } } },
      'outside the pays folder',
    ],
  ])('fails on %s, naming the instance and field', (_name, files, message) => {
    const err = errorOf(() => loadPaysDir(paysDir(files), {}));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(message);
  });

  it('never puts a value in its message', () => {
    const dir = paysDir({
      'a1/e.json': { type: 'pays.AliPayType' },
      'a1/a1.json': { config: { privateKey: `\${${'X'.repeat(3)}}` } },
    });
    const err = errorOf(() => loadPaysDir(dir, { XXX: '' }));
    expect(err.message).not.toContain(SECRET);
  });
});

describe('loadAppConfig', () => {
  it('has working defaults', () => {
    const c = loadAppConfig({});
    expect(c).toMatchObject({
      port: 3000,
      dataDir: './.data',
      dbMigrate: true,
      orderTimeoutMinutes: 30,
      sweepIntervalSeconds: 30,
      jobsEnabled: true,
      appName: 'paybridge',
    });
    expect(c.databaseUrl).toBeUndefined();
    expect(c.apiKeys).toBeUndefined();
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT'],
    [{ DB_MIGRATE: 'maybe' }, 'DB_MIGRATE'],
    [{ PUBLIC_BASE_URL: 'ftp://x' }, 'PUBLIC_BASE_URL'],
    [{ ORDER_TIMEOUT_MINUTES: '0' }, 'ORDER_TIMEOUT_MINUTES'],
  ])('refuses %p', (env, name) => {
    expect(() => loadAppConfig(env)).toThrow(name);
  });

  it('parses API_KEYS and never echoes a secret', () => {
    const keys = parseApiKeys('service:abcdefghijklmnop,admin:ABCDEFGHIJKLMNOP');
    expect(keys?.map((k) => [k.role, k.secret])).toEqual([
      ['service', 'abcdefghijklmnop'],
      ['admin', 'ABCDEFGHIJKLMNOP'],
    ]);
    // Labels scope Idempotency-Keys: stable when the list is reordered, and no part of the secret.
    const reordered = parseApiKeys('admin:ABCDEFGHIJKLMNOP,service:abcdefghijklmnop');
    expect(reordered?.find((k) => k.role === 'service')?.label).toBe(keys?.[0]?.label);
    expect(keys?.[0]?.label).toMatch(/^service:[0-9a-f]{12}$/);
    expect(keys?.[0]?.label).not.toContain('abcd');
    expect(() => parseApiKeys('service:abcdefghijklmnop,admin:abcdefghijklmnop')).toThrow(
      'the same secret is given twice',
    );
    const short = errorOf(() => parseApiKeys('service:tooShortSecret'));
    expect(short.message).toContain('at least 16');
    expect(short.message).not.toContain('tooShortSecret');
    expect(() => parseApiKeys('root:abcdefghijklmnopq')).toThrow('role must be one of');
  });
});
