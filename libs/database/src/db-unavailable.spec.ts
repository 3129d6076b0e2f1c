import { createServer } from 'node:net';
import pg from 'pg';
import { QueryFailedError } from 'typeorm';
import { PayError } from '#common';
import { isDatabaseUnavailable } from './db-unavailable.js';

const pgError = (code: string, message: string): Error => Object.assign(new Error(message), { code });

describe('isDatabaseUnavailable', () => {
  it('is true for a real refused connection from node-postgres', async () => {
    // A port nobody listens on: bind one, then close it.
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const addr = srv.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    await new Promise((r) => srv.close(r));
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'x', database: 'x', connectionTimeoutMillis: 2000 });
    let caught: unknown;
    try {
      await client.connect();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeDefined();
    expect(isDatabaseUnavailable(caught)).toBe(true);
  });

  it('is true for a server that hangs up mid-handshake ("Connection terminated")', async () => {
    const srv = createServer((s) => s.destroy());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const addr = srv.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'x', database: 'x' });
    let caught: unknown;
    try {
      await client.connect();
    } catch (err) {
      caught = err;
    } finally {
      await new Promise((r) => srv.close(r));
    }
    expect(isDatabaseUnavailable(caught)).toBe(true);
  });

  it.each([
    ['admin_shutdown', pgError('57P01', 'terminating connection due to administrator command')],
    ['crash_shutdown', pgError('57P02', 'terminating connection due to crash of another server process')],
    ['cannot_connect_now', pgError('57P03', 'the database system is starting up')],
    ['too_many_connections', pgError('53300', 'sorry, too many clients already')],
    ['connection_failure', pgError('08006', 'connection failure')],
    ['pool timeout', new Error('timeout exceeded when trying to connect')],
    ['terminated', new Error('Connection terminated unexpectedly')],
    ['reset', pgError('ECONNRESET', 'read ECONNRESET')],
    ['PGlite closed', new Error('PGlite is closed')],
    ['wrapped by TypeORM', new QueryFailedError('SELECT 1', [], pgError('57P01', 'terminating connection'))],
    ['as a cause', new Error('outer', { cause: pgError('ECONNREFUSED', 'connect ECONNREFUSED') })],
    ['AggregateError', new AggregateError([pgError('ECONNREFUSED', 'a'), pgError('ECONNREFUSED', 'b')], 'all failed')],
    ['the queue bound', new PayError('SERVICE_UNAVAILABLE', 'busy')],
  ])('is true for %s', (_name, err) => {
    expect(isDatabaseUnavailable(err)).toBe(true);
  });

  it.each([
    ['unique violation', new QueryFailedError('INSERT', [], pgError('23505', 'duplicate key value'))],
    ['syntax error', pgError('42601', 'syntax error at or near')],
    ['serialization failure', pgError('40001', 'could not serialize access')],
    ['a PayError', new PayError('ORDER_EXISTS', 'exists')],
    ['a plain error', new Error('boom')],
    ['not an error', 'ECONNREFUSED'],
    ['undefined', undefined],
  ])('is false for %s', (_name, err) => {
    expect(isDatabaseUnavailable(err)).toBe(false);
  });
});
