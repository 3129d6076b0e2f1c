import { Body, Controller, Get, HttpCode, Param, Post, Res, UseGuards, UseInterceptors } from '@nestjs/common';
import type { Response } from 'express';
import { RefundService, type RefundView, toRefundView } from '#payments';
import { Roles, SERVICE_ROLES } from './auth.guard.js';
import { CreateRefundDto } from './dto/refund.dto.js';
import { IdempotencyInterceptor } from './idempotency.interceptor.js';
import { ApiKeyRateLimitGuard } from './rate-limit.js';

/** Refunds of the service API (API.md §4). */
@Controller('api/v1')
@Roles(...SERVICE_ROLES)
@UseGuards(ApiKeyRateLimitGuard)
export class RefundsController {
  constructor(private readonly refunds: RefundService) {}

  @Post('orders/:orderId/refunds')
  @UseInterceptors(IdempotencyInterceptor)
  async create(
    @Param('orderId') orderId: string,
    @Body() dto: CreateRefundDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<RefundView> {
    const { refund, created } = await this.refunds.create(orderId, dto, 'api');
    res.status(created ? 201 : 200);
    return toRefundView(refund);
  }

  @Get('orders/:orderId/refunds')
  async list(@Param('orderId') orderId: string): Promise<RefundView[]> {
    return (await this.refunds.listOf(orderId)).map(toRefundView);
  }

  @Get('refunds/:refundId')
  async get(@Param('refundId') refundId: string): Promise<RefundView> {
    return toRefundView(await this.refunds.get(refundId));
  }

  @Post('refunds/:refundId/check')
  @HttpCode(200)
  async check(@Param('refundId') refundId: string): Promise<RefundView> {
    return toRefundView(await this.refunds.check(refundId));
  }
}
