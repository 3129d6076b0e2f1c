import { ConfigError } from '#common';
import { decideSandboxMode, isLoopbackHost, type SandboxModeInput } from './sandbox-mode.js';

/** A fresh checkout: nothing set, no pays/ folder. */
const fresh: SandboxModeInput = {
  paysDir: './pays',
  paysDirSet: false,
  paysDirExists: false,
  configuredInstances: 0,
  paySandbox: undefined,
  nodeEnv: 'development',
  host: '127.0.0.1',
  apiKeysSet: false,
  publicBaseUrlSet: false,
};

function refusal(input: Partial<SandboxModeInput>): string {
  try {
    decideSandboxMode({ ...fresh, ...input });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected the start to be refused');
}

const on = (input: Partial<SandboxModeInput>): boolean => decideSandboxMode({ ...fresh, ...input }).sandbox;

describe('decideSandboxMode', () => {
  it('runs the sandbox on a fresh checkout (npm install && npm start)', () => {
    expect(on({})).toBe(true);
    expect(on({ paysDirExists: true })).toBe(true); // an empty ./pays folder
    expect(on({ host: 'localhost' })).toBe(true);
    expect(on({ host: '::1' })).toBe(true);
  });

  it('stops when a PAYS_DIR that was set does not exist, naming it, whatever else is set', () => {
    for (const extra of [{}, { paySandbox: true }, { paySandbox: false }, { apiKeysSet: true }]) {
      const msg = refusal({ paysDir: '/etc/paybrige/pays', paysDirSet: true, paysDirExists: false, ...extra });
      expect(msg).toContain('/etc/paybrige/pays');
      expect(msg).toContain('PAYS_DIR');
    }
    expect(on({ paysDir: '/srv/pays', paysDirSet: true, paysDirExists: true })).toBe(true); // set, exists, empty
  });

  it.each<[string, Partial<SandboxModeInput>, RegExp]>([
    ['API_KEYS', { apiKeysSet: true }, /API_KEYS is set/],
    ['PUBLIC_BASE_URL', { publicBaseUrlSet: true }, /PUBLIC_BASE_URL is set/],
    ['NODE_ENV=production', { nodeEnv: 'production' }, /NODE_ENV=production/],
    ['HOST=0.0.0.0', { host: '0.0.0.0' }, /HOST=0\.0\.0\.0 is not a loopback/],
    ['HOST=10.1.2.3', { host: '10.1.2.3' }, /HOST=10\.1\.2\.3/],
    ['HOST=::', { host: '::' }, /HOST=::/],
  ])('refuses an empty pays/ when %s says this is a real deployment', (_name, input, why) => {
    for (const exists of [false, true]) {
      const msg = refusal({ ...input, paysDirExists: exists });
      expect(msg).toMatch(why);
      expect(msg).toContain('PAY_SANDBOX=true');
    }
  });

  it('lists every signal it saw', () => {
    expect(refusal({ apiKeysSet: true, publicBaseUrlSet: true, host: '0.0.0.0' })).toMatch(
      /API_KEYS is set, PUBLIC_BASE_URL is set, HOST=0\.0\.0\.0/,
    );
  });

  it('PAY_SANDBOX=true runs the sandbox despite deployment signals, except in production', () => {
    expect(on({ paySandbox: true, apiKeysSet: true, publicBaseUrlSet: true, host: '0.0.0.0' })).toBe(true);
    expect(on({ paySandbox: true, configuredInstances: 2, paysDirExists: true })).toBe(true);
    expect(refusal({ paySandbox: true, nodeEnv: 'production' })).toMatch(/NODE_ENV=production/);
    expect(refusal({ paySandbox: true, nodeEnv: 'production', configuredInstances: 1, paysDirExists: true })).toMatch(
      /never runs in production/,
    );
  });

  it('configured channels turn the sandbox off; PAY_SANDBOX=false always does', () => {
    expect(on({ paysDirExists: true, configuredInstances: 1 })).toBe(false);
    expect(on({ paysDirExists: true, configuredInstances: 1, nodeEnv: 'production', apiKeysSet: true })).toBe(false);
    expect(on({ paySandbox: false })).toBe(false);
    expect(on({ paySandbox: false, nodeEnv: 'production', host: '0.0.0.0' })).toBe(false);
  });
});

describe('isLoopbackHost', () => {
  it('knows loopback from the rest', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]'])
      expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.2', 'example.com', '1127.0.0.1', '127.0.0.1.example.com']) {
      expect(isLoopbackHost(h)).toBe(false);
    }
  });
});
