import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { type ErrorCode, PayError, httpStatusOf } from '#common';
import { DB_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '#database';
import { requestIdOf } from './request-id.js';

/** The JSON body of every error answer (API.md §7). */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  requestId: string;
}

/**
 * The one exception filter: PayError keeps its code; Nest's and the body parser's HTTP errors are
 * mapped onto the closed set; anything else is a logged INTERNAL_ERROR whose details stay in the log.
 */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request>();
    const res = ctx.getResponse<Response>();
    const { code, message } = this.classify(exception, req);
    const body: ErrorBody = { code, message, requestId: requestIdOf(req) };
    if (res.headersSent) return;
    const retryAfter = exception instanceof PayError ? exception.hints.retryAfterSeconds : undefined;
    if (retryAfter !== undefined) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(retryAfter))));
    else if (code === 'SERVICE_UNAVAILABLE') res.setHeader('Retry-After', String(DB_RETRY_AFTER_SECONDS));
    res.status(httpStatusOf(code)).json(body);
  }

  private classify(exception: unknown, req: Request): { code: ErrorCode; message: string } {
    if (isDatabaseUnavailable(exception)) {
      // PostgreSQL restarting or unreachable, or the embedded database's queue full: retryable, and
      // the pool reconnects by itself. The driver's message may name the host: log only.
      this.logger.warn(`${req.method} ${req.path} database unavailable: ${(exception as Error).message}`);
      const message = exception instanceof PayError ? exception.message : 'the database is unavailable; retry shortly';
      return { code: 'SERVICE_UNAVAILABLE', message };
    }
    if (exception instanceof PayError) {
      if (exception.detail || exception.status >= 500) {
        this.logger.warn(
          `${req.method} ${req.path} ${exception.code}: ${exception.message} ${JSON.stringify(exception.detail ?? {})}`,
        );
      }
      return { code: exception.code, message: exception.message };
    }
    const parserType = (exception as { type?: unknown }).type;
    if (parserType === 'entity.too.large') return { code: 'PAYLOAD_TOO_LARGE', message: 'request body is too large' };
    if (parserType === 'entity.parse.failed')
      return { code: 'INVALID_PARAMS', message: 'request body is not valid JSON' };
    if (typeof parserType === 'string' && parserType.startsWith('charset')) {
      return { code: 'INVALID_PARAMS', message: 'unsupported charset' };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      if (status === 404) return { code: 'NOT_FOUND', message: `no route ${req.method} ${req.path.slice(0, 128)}` };
      if (status === 413) return { code: 'PAYLOAD_TOO_LARGE', message: 'request body is too large' };
      if (status === 401) return { code: 'UNAUTHORIZED', message: 'missing or invalid API key' };
      if (status === 403) return { code: 'FORBIDDEN', message: 'this API key may not do that' };
      if (status === 429) return { code: 'RATE_LIMITED', message: 'too many requests' };
      if (status < 500) return { code: 'INVALID_PARAMS', message: exception.message };
    }
    this.logger.error(
      `${req.method} ${req.path} failed: ${exception instanceof Error ? (exception.stack ?? exception.message) : String(exception)}`,
    );
    return { code: 'INTERNAL_ERROR', message: 'internal error' };
  }
}

/**
 * Express error handler for what fails before Nest routes a request (the body parsers): the same
 * JSON error shape as the filter.
 */
export function bodyParserErrorHandler(err: unknown, req: Request, res: Response, next: (err?: unknown) => void): void {
  if (res.headersSent) {
    next(err);
    return;
  }
  const type = (err as { type?: unknown }).type;
  const code: ErrorCode =
    type === 'entity.too.large' ? 'PAYLOAD_TOO_LARGE' : type === undefined ? 'INTERNAL_ERROR' : 'INVALID_PARAMS';
  const message =
    code === 'PAYLOAD_TOO_LARGE'
      ? 'request body is too large'
      : code === 'INVALID_PARAMS'
        ? 'request body could not be parsed'
        : 'internal error';
  res.status(httpStatusOf(code)).json({ code, message, requestId: requestIdOf(req) } satisfies ErrorBody);
}
