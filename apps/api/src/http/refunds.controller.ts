import { Body, Controller, Get, HttpCode, Param, Post, Res, UseGuards, UseInterceptors } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply as Response } from 'fastify';
import { ApiAnswer, ApiErrors } from '../ops/openapi-decorators.js';
import { RefundService, type RefundView, toRefundView } from '#payments';
import { Roles, SERVICE_ROLES } from './auth.guard.js';
import { CreateRefundDto } from './dto/refund.dto.js';
import { IdempotencyInterceptor } from './idempotency.interceptor.js';
import { ApiKeyRateLimitGuard } from './rate-limit.js';

/** Refunds of the service API (API.md §4). */
@ApiTags('refunds')
@ApiBearerAuth()
@ApiErrors(401, 403, 429)
@Controller('api/v1')
@Roles(...SERVICE_ROLES)
@UseGuards(ApiKeyRateLimitGuard)
export class RefundsController {
  constructor(private readonly refunds: RefundService) {}

  @Post('orders/:orderId/refunds')
  @UseInterceptors(IdempotencyInterceptor)
  @ApiOperation({ summary: 'Refund part or all of what is left of the order payment' })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Replays the first answer for the same key and body',
  })
  @ApiAnswer(201, 'Refund', 'Created (pending or already success)')
  @ApiAnswer(200, 'Refund', 'The same refundId with the same amount: that refund')
  @ApiErrors(400, 404, 409, 413, 422, 502, 504)
  async create(
    @Param('orderId') orderId: string,
    @Body() dto: CreateRefundDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<RefundView> {
    const { refund, created } = await this.refunds.create(orderId, dto, 'api');
    void res.code(created ? 201 : 200);
    return toRefundView(refund);
  }

  @Get('orders/:orderId/refunds')
  @ApiOperation({ summary: 'The refunds of an order' })
  @ApiAnswer(200, 'Refund', 'OK', true)
  @ApiErrors(404)
  async list(@Param('orderId') orderId: string): Promise<RefundView[]> {
    return (await this.refunds.listOf(orderId)).map(toRefundView);
  }

  @Get('refunds/:refundId')
  @ApiOperation({ summary: 'A refund (local state)' })
  @ApiAnswer(200, 'Refund')
  @ApiErrors(404)
  async get(@Param('refundId') refundId: string): Promise<RefundView> {
    return toRefundView(await this.refunds.get(refundId));
  }

  @Post('refunds/:refundId/check')
  @HttpCode(200)
  @ApiOperation({ summary: 'Ask the channel about a pending refund' })
  @ApiAnswer(200, 'Refund')
  @ApiErrors(404, 502, 504)
  async check(@Param('refundId') refundId: string): Promise<RefundView> {
    return toRefundView(await this.refunds.check(refundId));
  }
}
