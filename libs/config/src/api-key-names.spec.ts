import { parseApiKeys } from './app-config.js';

describe('API_KEYS names (name=role:secret)', () => {
  it('names a key; unnamed keys are named by their label; plain role:secret keeps its label', () => {
    const keys = parseApiKeys('alice=operator:abcdefghijklmnop,viewer:ABCDEFGHIJKLMNOP') ?? [];
    expect(keys.map((k) => [k.role, k.name])).toEqual([
      ['operator', 'alice'],
      ['viewer', keys[1]!.label],
    ]);
    // The label (idempotency scope, rate limits) does not depend on the name.
    expect(keys[0]!.label).toBe(parseApiKeys('operator:abcdefghijklmnop')![0]!.label);
    expect(keys[0]!.label).toMatch(/^operator:[0-9a-f]{12}$/);
  });

  it('an "=" inside the secret is part of the secret', () => {
    const [k] = parseApiKeys('admin:abc=defghijklmnopq') ?? [];
    expect(k).toMatchObject({ role: 'admin', secret: 'abc=defghijklmnopq' });
    expect(k!.name).toBe(k!.label);
  });

  it('refuses bad and duplicate names without echoing the secret', () => {
    expect(() => parseApiKeys('bad name=admin:abcdefghijklmnop')).toThrow('a name must be');
    let message = '';
    try {
      parseApiKeys('bob=admin:abcdefghijklmnop,bob=viewer:qrstuvwxyzabcdef');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('bob is given twice');
    expect(message).not.toContain('qrstuvwxyz');
  });
});
