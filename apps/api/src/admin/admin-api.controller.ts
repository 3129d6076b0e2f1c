import { Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { FastifyReply as Response, FastifyRequest as Request } from 'fastify';
import { PayError } from '#common';
import {
  type Actor,
  type AdminOrderDetail,
  AdminService,
  type AuditView,
  type EventView,
  type OrderView,
  type RefundView,
  type StatsView,
} from '#payments';
import { CONSOLE_ACT_ROLES, CONSOLE_AUDIT_ROLES, CONSOLE_READ_ROLES, Roles, principalOf } from '../http/auth.guard.js';
import { CheckDto } from '../http/dto/order.dto.js';
import { CreateRefundDto } from '../http/dto/refund.dto.js';
import { requestIdOf } from '../http/request-id.js';
import { ApiAnswer, ApiErrors } from '../ops/openapi-decorators.js';
import { AdminAuditQueryDto, AdminOrdersQueryDto, AdminStatsQueryDto } from './admin.dto.js';

/** Who is calling, for the audit log: set by the AuthGuard (bearer key). */
export function actorOf(req: Request): Actor {
  const p = principalOf(req);
  if (!p) throw new PayError('UNAUTHORIZED', 'missing API key: send Authorization: Bearer <key>');
  return { name: p.name, role: p.role, requestId: requestIdOf(req) };
}

const text = (maxLength: number, description?: string) => ({
  type: 'string',
  maxLength,
  ...(description ? { description } : {}),
});
const time = (description: string) => ({
  type: 'string',
  maxLength: 40,
  description: `${description}: ISO 8601 date or date-time`,
});
const limit = { type: 'integer', minimum: 1, maximum: 200, default: 50 };

/** The admin API (API.md §11): viewer reads, operator acts, admin also reads the audit log. */
@ApiTags('admin')
@ApiBearerAuth()
@ApiErrors(401, 403)
@Controller('api/admin')
export class AdminApiController {
  constructor(private readonly admin: AdminService) {}

  @Get('orders')
  @Roles(...CONSOLE_READ_ROLES)
  @ApiOperation({ summary: 'Search orders, newest first (viewer)' })
  @ApiQuery({
    name: 'status',
    required: false,
    schema: { type: 'string', enum: ['wait', 'success', 'close', 'timeout'] },
  })
  @ApiQuery({ name: 'channel', required: false, schema: text(64, 'Channel instance fullName') })
  @ApiQuery({
    name: 'q',
    required: false,
    schema: text(64, 'orderId prefix, part of the subject, or a channel trade number'),
  })
  @ApiQuery({ name: 'from', required: false, schema: time('Created at or after') })
  @ApiQuery({ name: 'to', required: false, schema: time('Created before') })
  @ApiQuery({ name: 'currency', required: false, schema: text(3, 'ISO 4217') })
  @ApiQuery({ name: 'minAmount', required: false, schema: text(20, 'Decimal amount such as 10.00') })
  @ApiQuery({ name: 'maxAmount', required: false, schema: text(20, 'Decimal amount such as 99.99') })
  @ApiQuery({ name: 'limit', required: false, schema: limit })
  @ApiQuery({
    name: 'cursor',
    required: false,
    schema: { type: 'string', maxLength: 200, description: 'nextCursor of the previous page' },
  })
  @ApiAnswer(200, 'OrderPage')
  @ApiErrors(400)
  orders(@Query() q: AdminOrdersQueryDto): Promise<{ items: OrderView[]; nextCursor: string | null }> {
    return this.admin.searchOrders(q);
  }

  @Get('orders/:orderId')
  @Roles(...CONSOLE_READ_ROLES)
  @ApiOperation({
    summary: "An order's whole story: attempts, payments, refunds, notifies, events, audit and one timeline (viewer)",
  })
  @ApiAnswer(200, 'AdminOrderDetail')
  @ApiErrors(404)
  order(@Param('orderId') orderId: string): Promise<AdminOrderDetail> {
    return this.admin.order(orderId);
  }

  @Get('stats')
  @Roles(...CONSOLE_READ_ROLES)
  @ApiOperation({ summary: 'Orders created, paid, closed, timed out and amounts per bucket and channel (viewer)' })
  @ApiQuery({ name: 'from', required: false, schema: time('Start (default: 14 days or 24 hours before to)') })
  @ApiQuery({ name: 'to', required: false, schema: time('End, exclusive (default: now)') })
  @ApiQuery({ name: 'bucket', required: false, schema: { type: 'string', enum: ['day', 'hour'], default: 'day' } })
  @ApiQuery({ name: 'tz', required: false, schema: text(64, 'IANA time zone of the buckets (default UTC)') })
  @ApiAnswer(200, 'Stats')
  @ApiErrors(400)
  stats(@Query() q: AdminStatsQueryDto): Promise<StatsView> {
    return this.admin.stats(q);
  }

  @Post('orders/:orderId/check')
  @HttpCode(200)
  @Roles(...CONSOLE_ACT_ROLES)
  @ApiOperation({ summary: 'Ask the channels about the order now, audited (operator)' })
  @ApiAnswer(200, 'Order')
  @ApiErrors(400, 404, 413, 502, 504)
  check(@Req() req: Request, @Param('orderId') orderId: string, @Body() dto: CheckDto): Promise<OrderView> {
    return this.admin.check(actorOf(req), orderId, dto.channel);
  }

  @Post('orders/:orderId/cancel')
  @HttpCode(200)
  @Roles(...CONSOLE_ACT_ROLES)
  @ApiOperation({ summary: 'Close an unpaid order at its channels, audited (operator)' })
  @ApiAnswer(200, 'Order')
  @ApiErrors(404, 409, 502, 504)
  cancel(@Req() req: Request, @Param('orderId') orderId: string): Promise<OrderView> {
    return this.admin.cancel(actorOf(req), orderId);
  }

  @Post('orders/:orderId/refunds')
  @Roles(...CONSOLE_ACT_ROLES)
  @ApiOperation({ summary: 'Refund part or all of what is left of the order payment, audited (operator)' })
  @ApiAnswer(201, 'Refund', 'Created (pending or already success)')
  @ApiAnswer(200, 'Refund', 'The same refundId with the same amount: that refund')
  @ApiErrors(400, 404, 409, 413, 502, 504)
  async refund(
    @Req() req: Request,
    @Param('orderId') orderId: string,
    @Body() dto: CreateRefundDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<RefundView> {
    const { refund, created } = await this.admin.refund(actorOf(req), orderId, dto);
    void res.code(created ? 201 : 200);
    return refund;
  }

  @Post('events/:id/resend')
  @HttpCode(200)
  @Roles(...CONSOLE_ACT_ROLES)
  @ApiOperation({ summary: 'Deliver the event again now, same id and body, audited (operator)' })
  @ApiAnswer(200, 'Event')
  @ApiErrors(404)
  resend(@Req() req: Request, @Param('id') id: string): Promise<EventView> {
    return this.admin.resend(actorOf(req), id);
  }

  @Get('audit')
  @Roles(...CONSOLE_AUDIT_ROLES)
  @ApiOperation({ summary: 'The audit log, newest first (admin)' })
  @ApiQuery({ name: 'actor', required: false, schema: text(64, 'API key name or label') })
  @ApiQuery({ name: 'orderId', required: false, schema: text(32) })
  @ApiQuery({ name: 'limit', required: false, schema: limit })
  @ApiQuery({
    name: 'cursor',
    required: false,
    schema: { type: 'string', maxLength: 40, description: 'nextCursor of the previous page' },
  })
  @ApiAnswer(200, 'AuditPage')
  @ApiErrors(400)
  audit(@Query() q: AdminAuditQueryDto): Promise<{ items: AuditView[]; nextCursor: string | null }> {
    return this.admin.auditLog(q);
  }
}
