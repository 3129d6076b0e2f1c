import { generateKeyPairSync } from 'node:crypto';
import { Writable } from 'node:stream';
import { createPinoLogger, formatLine, scrubText } from './logging.js';
import { Secret } from './secret.js';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const der = privateKey.export({ type: 'pkcs1', format: 'der' }).toString('base64');

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, stream };
}

describe('log scrubbing', () => {
  it('masks PEM blocks, bare base64 keys, bearer keys and signature fields in text', () => {
    const text = `key ${pem} der ${der} Authorization: Bearer pb_service_abc123 url?a=1&sign=QUJDREVG&b=2 <sign><![CDATA[9A0A8659]]></sign> signature=xyz123,keyVersion=1`;
    const out = scrubText(text);
    expect(out).not.toContain(pem.split('\n')[1]);
    expect(out).not.toContain(der.slice(40, 80));
    expect(out).not.toContain('pb_service_abc123');
    expect(out).not.toContain('QUJDREVG');
    expect(out).not.toContain('9A0A8659');
    expect(out).not.toContain('xyz123');
    expect(out).toContain('&b=2');
    expect(out).toContain('keyVersion=1');
  });

  it('redacts secret fields and scrubs messages of a real pino logger', () => {
    const { lines, stream } = capture();
    const log = createPinoLogger({ level: 'info', format: 'json', destination: stream, app: 'test' });
    log.info(
      {
        headers: { authorization: 'Bearer k1_0123456789abcdef', cookie: 'sid=s3cr3t' },
        config: { apiKey: 'wx_api_key_0123456789', secret: new Secret('hidden-value-0123') },
      },
      `loaded ${pem}`,
    );
    log.warn({ err: new Error(`failed with Bearer k2_0123456789abcdef`) }, 'boom');
    const all = lines.join('\n');
    for (const s of [
      'k1_0123456789abcdef',
      's3cr3t',
      'wx_api_key_0123456789',
      'hidden-value-0123',
      'k2_0123456789abcdef',
    ]) {
      expect(all).not.toContain(s);
    }
    expect(all).not.toContain(pem.split('\n')[2]);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({
      level: 'info',
      app: 'test',
      headers: { authorization: '[redacted]', cookie: '[redacted]' },
    });
  });

  it('censors secret fields at every level it walks, in class instances and child bindings, whatever their case', () => {
    const { lines, stream } = capture();
    const log = createPinoLogger({ level: 'info', format: 'json', destination: stream, app: 'test' });
    class Creds {
      readonly label = 'main';
      readonly PrivateKey = 'pk_in_a_class_0123456789';
    }
    log.child({ requestId: 'r1', Authorization: 'Bearer bound_key_0123456789' }).info(
      {
        a: { b: { c: { Signature: 'deep_signature_0123456789', keep: 'visible-1' } } },
        creds: new Creds(),
        list: [{ access_token: 'token_in_array_0123456789' }],
        when: new Date('2026-01-02T03:04:05.000Z'),
      },
      'hello',
    );
    const all = lines.join('\n');
    for (const s of [
      'bound_key_0123456789',
      'deep_signature_0123456789',
      'pk_in_a_class_0123456789',
      'token_in_array_0123456789',
    ]) {
      expect(all).not.toContain(s);
    }
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({
      requestId: 'r1',
      Authorization: '[redacted]',
      a: { b: { c: { Signature: '[redacted]', keep: 'visible-1' } } },
      creds: { label: 'main', PrivateKey: '[redacted]' },
      list: [{ access_token: '[redacted]' }],
      when: '2026-01-02T03:04:05.000Z',
      msg: 'hello',
    });
  });

  it('logs objects whose toJSON answers themselves or throws, without failing the call', () => {
    const { lines, stream } = capture();
    const log = createPinoLogger({ level: 'info', format: 'json', destination: stream, app: 'test' });
    const selfish = {
      apiKey: 'selfish_key_0123456789',
      toJSON(): unknown {
        return this;
      },
    };
    const broken = {
      toJSON(): unknown {
        throw new Error('no');
      },
    };
    expect(() => log.info({ selfish, broken }, 'odd objects')).not.toThrow();
    expect(lines.join('\n')).not.toContain('selfish_key_0123456789');
    expect(JSON.parse(lines[0]!)).toMatchObject({ selfish: { apiKey: '[redacted]' }, broken: '[unserialisable]' });
  });

  it('formats a JSON line for humans', () => {
    const line = formatLine(
      JSON.stringify({
        level: 'warn',
        time: '2026-01-02T03:04:05.678Z',
        context: 'Notify',
        msg: 'hello',
        orderId: 'O1',
      }),
    );
    expect(line).toBe('03:04:05.678 WARN  [Notify] hello {"orderId":"O1"}');
  });
});
