import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { type ErrorCode, PayError, httpStatusOf } from '#common';
import { DB_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '#database';
import type { HttpReply, HttpRequest } from './http-types.js';
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
    const req = ctx.getRequest<HttpRequest>();
    const res = ctx.getResponse<HttpReply>();
    const { code, message } = this.classify(exception, req);
    const body: ErrorBody = { code, message, requestId: requestIdOf(req) };
    if (res.sent || res.raw.headersSent) return;
    const retryAfter = exception instanceof PayError ? exception.hints.retryAfterSeconds : undefined;
    if (retryAfter !== undefined) res.header('Retry-After', String(Math.max(1, Math.ceil(retryAfter))));
    else if (code === 'SERVICE_UNAVAILABLE') res.header('Retry-After', String(DB_RETRY_AFTER_SECONDS));
    void res
      .code(httpStatusOf(code))
      .header('Content-Type', 'application/json; charset=utf-8')
      .send(JSON.stringify(body));
  }

  private classify(exception: unknown, request: HttpRequest): { code: ErrorCode; message: string } {
    const req = { method: request.method, path: request.url.split('?')[0] ?? '' };
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
    if (parserType === 'encoding.unsupported')
      return { code: 'INVALID_PARAMS', message: 'unsupported Content-Encoding' };
    if (parserType === 'parameters.too.many') return { code: 'PAYLOAD_TOO_LARGE', message: 'too many form fields' };
    // Fastify's own refusals before routing (malformed Content-Type, a bad URL, ...): FST_ERR_* codes.
    const fastifyStatus = (exception as { statusCode?: unknown; code?: unknown }).statusCode;
    if (
      !(exception instanceof HttpException) &&
      typeof fastifyStatus === 'number' &&
      String((exception as { code?: unknown }).code).startsWith('FST_')
    ) {
      if (fastifyStatus === 413) return { code: 'PAYLOAD_TOO_LARGE', message: 'request body is too large' };
      if (fastifyStatus === 404)
        return { code: 'NOT_FOUND', message: `no route ${req.method} ${req.path.slice(0, 128)}` };
      if (fastifyStatus >= 400 && fastifyStatus < 500)
        return { code: 'INVALID_PARAMS', message: 'request could not be parsed' };
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
