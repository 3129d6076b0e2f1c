import { Body, Controller, Get, HttpCode, Param, Post, Res, UseGuards, UseInterceptors } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply as Response } from 'fastify';
import { ApiAnswer, ApiErrors } from '../ops/openapi-decorators.js';
import { PayService, type OrderView, type PayInfoView, toOrderView } from '#payments';
import { Roles, SERVICE_ROLES } from './auth.guard.js';
import { ApiKeyRateLimitGuard } from './rate-limit.js';
import { CheckDto, ClientResultDto, CreateOrderDto, PayDto } from './dto/order.dto.js';
import { IdempotencyInterceptor } from './idempotency.interceptor.js';

/** The service API of API.md §4. */
@ApiTags('orders')
@ApiBearerAuth()
@ApiErrors(401, 403, 429)
@Controller('api/v1/orders')
@Roles(...SERVICE_ROLES)
@UseGuards(ApiKeyRateLimitGuard)
export class OrdersController {
  constructor(private readonly pay: PayService) {}

  @Post()
  @UseInterceptors(IdempotencyInterceptor)
  @ApiOperation({ summary: 'Create an order' })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Replays the first answer for the same key and body',
  })
  @ApiAnswer(201, 'Order', 'Created')
  @ApiAnswer(200, 'Order', 'The same orderId with the same parameters: the existing order')
  @ApiErrors(400, 409, 413, 422)
  async create(@Body() dto: CreateOrderDto, @Res({ passthrough: true }) res: Response): Promise<OrderView> {
    const { order, created } = await this.pay.create(dto);
    void res.code(created ? 201 : 200);
    return created ? toOrderView(order, []) : this.pay.viewOf(order);
  }

  @Get(':orderId')
  @ApiOperation({ summary: 'The order (local state; cheap, for polling)' })
  @ApiAnswer(200, 'Order')
  @ApiErrors(404)
  async get(@Param('orderId') orderId: string): Promise<OrderView> {
    return this.pay.view(orderId);
  }

  @Post(':orderId/pay')
  @HttpCode(200)
  @UseInterceptors(IdempotencyInterceptor)
  @ApiOperation({ summary: 'Pay information for a channel and pay type' })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Replays the first answer for the same key and body',
  })
  @ApiAnswer(200, 'PayInfo')
  @ApiErrors(400, 404, 409, 413, 422, 502, 504)
  async payUrl(@Param('orderId') orderId: string, @Body() dto: PayDto): Promise<PayInfoView> {
    return this.pay.getPayUrl(orderId, dto);
  }

  @Post(':orderId/check')
  @HttpCode(200)
  @ApiOperation({ summary: 'Ask the channel(s) for the truth, then answer the order' })
  @ApiAnswer(200, 'Order')
  @ApiErrors(400, 404, 502, 504)
  async check(@Param('orderId') orderId: string, @Body() dto: CheckDto): Promise<OrderView> {
    return this.pay.viewOf(await this.pay.check(orderId, dto.channel));
  }

  @Post(':orderId/client-result')
  @HttpCode(200)
  @ApiOperation({ summary: 'What the client should do after my.tradePay answered' })
  @ApiAnswer(200, 'ClientResult')
  @ApiErrors(400, 404)
  async clientResult(
    @Param('orderId') orderId: string,
    @Body() dto: ClientResultDto,
  ): Promise<OrderView & { next: string; meaning: string }> {
    const r = await this.pay.clientResult(orderId, dto.resultCode);
    return { ...(await this.pay.viewOf(r.order)), next: r.next, meaning: r.meaning };
  }

  @Post(':orderId/cancel')
  @HttpCode(200)
  @ApiOperation({ summary: 'Close the order (the channel side first)' })
  @ApiAnswer(200, 'Order')
  @ApiErrors(404, 409, 502, 504)
  async cancel(@Param('orderId') orderId: string): Promise<OrderView> {
    return this.pay.viewOf(await this.pay.cancel(orderId));
  }
}
