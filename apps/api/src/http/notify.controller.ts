import { Controller, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { ChannelType, NotifyReply, RawNotify } from '#channels';
import { NotifyService } from '#payments';

/**
 * Providers' notify webhooks (API.md §6). No bearer key: the channel's signature authenticates them.
 * Bodies arrive raw (express.raw on these paths, see main.ts) because signatures are over bytes.
 */
@Controller()
export class NotifyController {
  constructor(private readonly notify: NotifyService) {}

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
      path: req.originalUrl,
    };
    const reply: NotifyReply = await this.notify.handle(type, raw);
    res.status(reply.status).type(reply.contentType).send(reply.body);
  }
}
