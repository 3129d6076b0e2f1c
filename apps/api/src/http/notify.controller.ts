import { ApiExcludeController } from '@nestjs/swagger';
import { Controller, Inject, Logger, Post, Req, Res } from '@nestjs/common';
import { ChannelRegistry, type ChannelType, type RawNotify } from '#channels';
import { APP_CONFIG, type AppConfig } from '#config';
import { isDatabaseUnavailable } from '#database';
import { NotifyService, type NotifyOutcome, REFUSED_UNSIGNED } from '#payments';
import type { ErrorBody } from './error.filter.js';
import type { HttpReply as Response, HttpRequest as Request } from './http-types.js';
import { RateLimiter } from './rate-limit.js';
import { requestIdOf } from './request-id.js';

/**
 * Providers' notify webhooks (API.md §6). No bearer key: the channel's signature authenticates them.
 * Bodies arrive raw (app.factory.ts's RAW_BODY_ROUTES, json-body.ts) because signatures are over bytes.
 *
 * Refused notifies (no instance matches, or verification fails) are limited per source IP to
 * NOTIFY_REFUSED_PER_MINUTE, counted across instances. A source over its limit still has every notify
 * processed, so a real provider behind the same address loses nothing: its refused ones are answered
 * 429 RATE_LIMITED and leave no inbox row, its valid ones are applied and acknowledged as usual.
 */
@ApiExcludeController()
@Controller()
export class NotifyController {
  private readonly logger = new Logger('Notify');

  constructor(
    private readonly notify: NotifyService,
    private readonly registry: ChannelRegistry,
    private readonly limiter: RateLimiter,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
  ) {}

  @Post('api/v1/notify/alipay')
  alipay(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.handle('pays.AliPayType', req, res);
  }

  @Post('api/v1/notify/wechatpay')
  wechat(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.handle('pays.WechatPayType', req, res);
  }

  /** WeChat's refund notifies (req_info encrypted under the API key), given as notify_url of each refund. */
  @Post('api/v1/notify/wechatpay/refund')
  wechatRefund(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.handle('pays.WechatPayType', req, res);
  }

  /** The seeds' WeChat notify URL. */
  @Post('api/:app/pays/services/PaySvc/wechatNotify')
  wechatSeed(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.handle('pays.WechatPayType', req, res);
  }

  @Post('api/v1/notify/alipayplus')
  alipayPlus(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.handle('pays.AlipayPlusType', req, res);
  }

  private async handle(type: ChannelType, req: Request, res: Response): Promise<void> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === 'string') headers[k.toLowerCase()] = v;
      else if (Array.isArray(v)) headers[k.toLowerCase()] = v.join(', ');
    }
    const raw: RawNotify = {
      headers,
      body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
      method: req.method,
      path: req.url,
    };
    const limit = this.cfg.notifyRefusedPerMinute;
    const source = req.ip || (req.socket.remoteAddress ?? 'unknown');
    const blocked = limit > 0 ? this.limiter.blockedFor('notify_ip', source) : undefined;
    let outcome: NotifyOutcome;
    try {
      outcome = await this.notify.handle(type, raw, { recordRefused: blocked === undefined });
    } catch (err) {
      // Nothing was acknowledged (the database is away, or the pipeline failed before it could keep
      // the request): answer the channel's own failure reply so that the provider sends it again.
      const provider = this.registry.provider(type);
      if (!provider) throw err;
      const why = isDatabaseUnavailable(err) ? 'the database is unavailable' : (err as Error).message;
      this.logger.warn(`${type} notify not taken (${why}); the provider will retry`);
      const reply = provider.rejectReply();
      void res.code(reply.status).type(reply.contentType).send(reply.body);
      return;
    }
    let retryAfter = blocked;
    if (limit > 0 && blocked === undefined && REFUSED_UNSIGNED.has(outcome.verdict)) {
      const count = await this.limiter.hit('notify_ip', source, limit);
      if (count && count.n > limit) retryAfter = count.retryAfterSeconds;
    }
    if (retryAfter !== undefined && REFUSED_UNSIGNED.has(outcome.verdict)) {
      const body: ErrorBody = {
        code: 'RATE_LIMITED',
        message: 'too many refused notifies from this address',
        requestId: requestIdOf(req),
      };
      void res
        .code(429)
        .header('Retry-After', String(retryAfter))
        .type('application/json; charset=utf-8')
        .send(JSON.stringify(body));
      return;
    }
    void res.code(outcome.status).type(outcome.contentType).send(outcome.body);
  }
}
