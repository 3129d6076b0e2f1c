import { Body, Controller, HttpCode, Inject, Param, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiParam, ApiResponse, ApiTags, getSchemaPath } from '@nestjs/swagger';
import { PayError } from '#common';
import { ApiErrors } from '../ops/openapi-decorators.js';
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
import {
  CreateOrderDto,
  FACADE_METHODS,
  FacadeGetPayUrlDto,
  FacadeOrderIdDto,
  isFacadeMethod,
} from './dto/order.dto.js';
import { FacadeRefundDto } from './dto/refund.dto.js';
import { validateBody } from './validation.js';

/**
 * The seed-compatible facade (API.md §5): `POST /api/{app}/pays/services/PaySvc/{method}` with the
 * seeds' argument names; same answers and errors as the service API.
 */
@ApiTags('facade')
@ApiBearerAuth()
@ApiErrors(400, 401, 403, 404, 409, 413, 429, 502, 504)
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
  @ApiOperation({
    summary: 'Seed-compatible PaySvc (API.md §5)',
    description:
      'create: CreateOrderDto → Order; getPayUrl: FacadeGetPayUrlDto → PayInfo; query, check, cancel: ' +
      'FacadeOrderIdDto → Order; refund: FacadeRefundDto → Refund.',
  })
  @ApiParam({ name: 'app', description: 'APP_NAME (default paybridge)', schema: { type: 'string' } })
  @ApiParam({ name: 'method', schema: { type: 'string', enum: [...FACADE_METHODS] } })
  @ApiBody({
    schema: {
      oneOf: [
        { $ref: getSchemaPath('CreateOrderDto') },
        { $ref: getSchemaPath('FacadeGetPayUrlDto') },
        { $ref: getSchemaPath('FacadeOrderIdDto') },
        { $ref: getSchemaPath('FacadeRefundDto') },
      ],
    },
  })
  @ApiResponse({
    status: 200,
    description: 'Order, PayInfo or Refund, by method',
    schema: {
      oneOf: [
        { $ref: '#/components/schemas/Order' },
        { $ref: '#/components/schemas/PayInfo' },
        { $ref: '#/components/schemas/Refund' },
      ],
    },
  })
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
