import type { LoggerService } from '@nestjs/common';
import type { Level, Logger } from 'pino';

/**
 * Nest's logger on pino: `new Logger('Notify').warn(msg)` becomes `{"level":"warn","context":"Notify",
 * "msg":...}` on the process's one pino logger, or on the logger `current()` gives (the api's request
 * logger, which carries the request id, while a request runs). The argument conventions are Nest's:
 * the context comes last; an Error or an object as the message becomes fields; Nest's exception
 * handlers call `error(message, stack)`.
 *
 * Written here (issue 14) instead of nestjs-pino, whose per-request binding ran as a Nest middleware
 * through @fastify/middie: the api binds its request logger in its first request hook instead.
 */
export class PinoNestLogger implements LoggerService {
  constructor(
    private readonly root: Logger,
    private readonly current: () => Logger | undefined = () => undefined,
  ) {}

  verbose(message: unknown, ...params: unknown[]): void {
    this.call('trace', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.call('debug', message, params);
  }
  log(message: unknown, ...params: unknown[]): void {
    this.call('info', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.call('warn', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.call('error', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.call('fatal', message, params);
  }

  private call(level: Level, message: unknown, params: unknown[]): void {
    const log = this.current() ?? this.root;
    if (!log.isLevelEnabled(level)) return;
    const fields: Record<string, unknown> = {};
    let rest = params;
    if (rest.length > 0) {
      const context = rest[rest.length - 1];
      if (typeof context === 'string') fields['context'] = context;
      rest = rest.slice(0, -1);
    }
    if (message instanceof Error) {
      fields['err'] = message;
      log[level](fields, message.message);
    } else if (typeof message === 'object' && message !== null) {
      log[level]({ ...fields, ...(message as Record<string, unknown>) });
    } else if (level === 'error' && typeof message === 'string' && rest.length === 1 && typeof rest[0] === 'string') {
      // Nest's exception handlers: error(message, stack, context).
      const err = new Error(message);
      err.stack = rest[0];
      log[level]({ ...fields, err }, message);
    } else {
      // Further arguments fill printf-style placeholders, as pino does.
      log[level](fields, String(message), ...rest.filter((p) => p !== undefined));
    }
  }
}
