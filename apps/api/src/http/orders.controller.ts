import { Body, Controller, Get, HttpCode, Param, Post, Res, UseGuards, UseInterceptors } from '@nestjs/common';
import type { Response } from 'express';
import { PayService, type OrderView, type PayInfoView, toOrderView } from '#payments';
import { Roles, SERVICE_ROLES } from './auth.guard.js';
import { ApiKeyRateLimitGuard } from './rate-limit.js';
import { CheckDto, ClientResultDto, CreateOrderDto, PayDto } from './dto/order.dto.js';
import { IdempotencyInterceptor } from './idempotency.interceptor.js';

/** The service API of API.md §4. */
@Controller('api/v1/orders')
@Roles(...SERVICE_ROLES)
@UseGuards(ApiKeyRateLimitGuard)
export class OrdersController {
  constructor(private readonly pay: PayService) {}

  @Post()
  @UseInterceptors(IdempotencyInterceptor)
  async create(@Body() dto: CreateOrderDto, @Res({ passthrough: true }) res: Response): Promise<OrderView> {
    const { order, created } = await this.pay.create(dto);
    res.status(created ? 201 : 200);
    return created ? toOrderView(order, []) : this.pay.viewOf(order);
  }

  @Get(':orderId')
  async get(@Param('orderId') orderId: string): Promise<OrderView> {
    return this.pay.view(orderId);
  }

  @Post(':orderId/pay')
  @HttpCode(200)
  @UseInterceptors(IdempotencyInterceptor)
  async payUrl(@Param('orderId') orderId: string, @Body() dto: PayDto): Promise<PayInfoView> {
    return this.pay.getPayUrl(orderId, dto);
  }

  @Post(':orderId/check')
  @HttpCode(200)
  async check(@Param('orderId') orderId: string, @Body() dto: CheckDto): Promise<OrderView> {
    return this.pay.viewOf(await this.pay.check(orderId, dto.channel));
  }

  @Post(':orderId/client-result')
  @HttpCode(200)
  async clientResult(
    @Param('orderId') orderId: string,
    @Body() dto: ClientResultDto,
  ): Promise<OrderView & { next: string; meaning: string }> {
    const r = await this.pay.clientResult(orderId, dto.resultCode);
    return { ...(await this.pay.viewOf(r.order)), next: r.next, meaning: r.meaning };
  }

  @Post(':orderId/cancel')
  @HttpCode(200)
  async cancel(@Param('orderId') orderId: string): Promise<OrderView> {
    return this.pay.viewOf(await this.pay.cancel(orderId));
  }
}
