import { Writable } from 'node:stream';
import { Logger } from '@nestjs/common';
import { createPinoLogger } from './logging.js';
import { PinoNestLogger } from './nest-logger.js';

function capture(): { rows: () => Record<string, unknown>[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { rows: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>), stream };
}

describe('PinoNestLogger', () => {
  it("maps Nest's calls to pino lines: context last, errors and objects as fields, the handler's stack", () => {
    const { rows, stream } = capture();
    const root = createPinoLogger({ level: 'debug', format: 'json', destination: stream, app: 'test' });
    const sut = new PinoNestLogger(root);
    sut.log('started', 'Boot');
    sut.warn({ orderId: 'O1', note: 'late' }, 'Notify');
    sut.error(new Error('broke with Bearer pb_secret_0123456789'), 'Jobs');
    sut.error('handler failed', 'Error: x\n    at f (file.js:1:1)', 'ExceptionsHandler');
    sut.debug('count %d', 3, 'Sync');
    sut.verbose('not written at debug', 'Sync');
    const r = rows();
    expect(r).toHaveLength(5);
    expect(r[0]).toMatchObject({ level: 'info', context: 'Boot', msg: 'started' });
    expect(r[1]).toMatchObject({ level: 'warn', context: 'Notify', orderId: 'O1', note: 'late' });
    expect(r[2]).toMatchObject({
      level: 'error',
      context: 'Jobs',
      err: { message: expect.stringContaining('[redacted]') },
    });
    expect(JSON.stringify(r[2])).not.toContain('pb_secret_0123456789');
    expect(r[3]).toMatchObject({
      level: 'error',
      context: 'ExceptionsHandler',
      msg: 'handler failed',
      err: { stack: expect.stringContaining('at f (file.js:1:1)') },
    });
    expect(r[4]).toMatchObject({ level: 'debug', context: 'Sync', msg: 'count 3' });
  });

  it("writes through the current request's logger when there is one, through Nest's Logger too", () => {
    const { rows, stream } = capture();
    const root = createPinoLogger({ level: 'info', format: 'json', destination: stream, app: 'test' });
    let current: typeof root | undefined = root.child({ requestId: 'req-7' });
    Logger.overrideLogger(new PinoNestLogger(root, () => current));
    try {
      new Logger('Refunds').log('sent');
      current = undefined;
      new Logger('Refunds').log('after');
    } finally {
      Logger.overrideLogger(true);
    }
    expect(rows()).toEqual([
      expect.objectContaining({ requestId: 'req-7', context: 'Refunds', msg: 'sent' }),
      expect.not.objectContaining({ requestId: expect.anything() }),
    ]);
    expect(rows()[1]).toMatchObject({ context: 'Refunds', msg: 'after' });
  });
});
