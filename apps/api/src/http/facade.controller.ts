import { Body, Controller, HttpCode, Inject, Param, Post, UseGuards } from '@nestjs/common';
import { PayError } from '#common';
import { APP_CONFIG, type AppConfig } from '#config';
import {
  PayService,
  RefundService,
  type OrderView,
  type PayInfoView,
  type RefundView,
  toOrderView,
  toRefundView,
} from '#payments';
import { Roles, SERVICE_ROLES } from './auth.guard.js';
import { ApiKeyRateLimitGuard } from './rate-limit.js';
import { CreateOrderDto, FacadeGetPayUrlDto, FacadeOrderIdDto, isFacadeMethod } from './dto/order.dto.js';
import { FacadeRefundDto } from './dto/refund.dto.js';
import { validateBody } from './validation.js';

/**
 * The seed-compatible facade (API.md §5): `POST /api/{app}/pays/services/PaySvc/{method}` with the
 * seeds' argument names; same answers and errors as the service API.
 */
@Controller('api/:app/pays/services/PaySvc')
@Roles(...SERVICE_ROLES)
@UseGuards(ApiKeyRateLimitGuard)
export class FacadeController {
  constructor(
    private readonly pay: PayService,
    private readonly refunds: RefundService,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
  ) {}

  @Post(':method')
  @HttpCode(200)
  async call(
    @Param('app') app: string,
    @Param('method') method: string,
    @Body() body: unknown,
  ): Promise<OrderView | PayInfoView | RefundView> {
    if (app !== this.cfg.appName) throw new PayError('NOT_FOUND', `no app ${app.slice(0, 64)}`);
    if (!isFacadeMethod(method)) throw new PayError('NOT_FOUND', `PaySvc has no method ${method.slice(0, 64)}`);
    switch (method) {
      case 'create': {
        const dto = await validateBody(CreateOrderDto, body);
        return toOrderView((await this.pay.create(dto)).order, []);
      }
      case 'getPayUrl': {
        const dto = await validateBody(FacadeGetPayUrlDto, body);
        const { orderId, fullName, ...rest } = dto;
        return this.pay.getPayUrl(orderId, { ...rest, channel: fullName });
      }
      case 'query':
        return this.pay.view((await validateBody(FacadeOrderIdDto, body)).orderId);
      case 'check': {
        const dto = await validateBody(FacadeOrderIdDto, body);
        return this.pay.viewOf(await this.pay.check(dto.orderId, dto.fullName));
      }
      case 'cancel':
        return this.pay.viewOf(await this.pay.cancel((await validateBody(FacadeOrderIdDto, body)).orderId));
      case 'refund': {
        const { orderId, ...rest } = await validateBody(FacadeRefundDto, body);
        return toRefundView((await this.refunds.create(orderId, rest, 'api')).refund);
      }
    }
  }
}
