import { Controller, Logger, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ChannelRegistry, type ChannelType, type NotifyReply, type RawNotify } from '#channels';
import { isDatabaseUnavailable } from '#database';
import { NotifyService } from '#payments';

/**
 * Providers' notify webhooks (API.md §6). No bearer key: the channel's signature authenticates them.
 * Bodies arrive raw (express.raw on these paths, see main.ts) because signatures are over bytes.
 */
@Controller()
export class NotifyController {
  private readonly logger = new Logger('Notify');

  constructor(
    private readonly notify: NotifyService,
    private readonly registry: ChannelRegistry,
  ) {}

  @Post('api/v1/notify/alipay')
  alipay(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.handle('pays.AliPayType', req, res);
  }

  @Post('api/v1/notify/wechatpay')
  wechat(@Req() req: Request, @Res() res: Response): Promise<void> {
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
      path: req.originalUrl,
    };
    let reply: NotifyReply;
    try {
      reply = await this.notify.handle(type, raw);
    } catch (err) {
      // Nothing was acknowledged (the database is away, or the pipeline failed before it could keep
      // the request): answer the channel's own failure reply so that the provider sends it again.
      const provider = this.registry.provider(type);
      if (!provider) throw err;
      const why = isDatabaseUnavailable(err) ? 'the database is unavailable' : (err as Error).message;
      this.logger.warn(`${type} notify not taken (${why}); the provider will retry`);
      reply = provider.rejectReply();
    }
    res.status(reply.status).type(reply.contentType).send(reply.body);
  }
}
