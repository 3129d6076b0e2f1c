import { Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply as Response, FastifyRequest as Request } from 'fastify';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
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
import { ApiErrors } from '../ops/openapi-decorators.js';
import { AdminAuditQueryDto, AdminOrdersQueryDto, AdminStatsQueryDto } from './admin.dto.js';

/** Who is calling, for the audit log: set by the AuthGuard (bearer key). */
export function actorOf(req: Request): Actor {
  const p = principalOf(req);
  if (!p) throw new PayError('UNAUTHORIZED', 'missing API key: send Authorization: Bearer <key>');
  return { name: p.name, role: p.role, requestId: requestIdOf(req) };
}

/** The admin API (API.md §11): viewer reads, operator acts, admin also reads the audit log. */
@ApiTags('admin')
@ApiBearerAuth()
@ApiErrors(401, 403)
@Controller('api/admin')
export class AdminApiController {
  constructor(private readonly admin: AdminService) {}

  @Get('orders')
  @Roles(...CONSOLE_READ_ROLES)
  orders(@Query() q: AdminOrdersQueryDto): Promise<{ items: OrderView[]; nextCursor: string | null }> {
    return this.admin.searchOrders(q);
  }

  @Get('orders/:orderId')
  @Roles(...CONSOLE_READ_ROLES)
  order(@Param('orderId') orderId: string): Promise<AdminOrderDetail> {
    return this.admin.order(orderId);
  }

  @Get('stats')
  @Roles(...CONSOLE_READ_ROLES)
  stats(@Query() q: AdminStatsQueryDto): Promise<StatsView> {
    return this.admin.stats(q);
  }

  @Post('orders/:orderId/check')
  @HttpCode(200)
  @Roles(...CONSOLE_ACT_ROLES)
  check(@Req() req: Request, @Param('orderId') orderId: string, @Body() dto: CheckDto): Promise<OrderView> {
    return this.admin.check(actorOf(req), orderId, dto.channel);
  }

  @Post('orders/:orderId/cancel')
  @HttpCode(200)
  @Roles(...CONSOLE_ACT_ROLES)
  cancel(@Req() req: Request, @Param('orderId') orderId: string): Promise<OrderView> {
    return this.admin.cancel(actorOf(req), orderId);
  }

  @Post('orders/:orderId/refunds')
  @Roles(...CONSOLE_ACT_ROLES)
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
  resend(@Req() req: Request, @Param('id') id: string): Promise<EventView> {
    return this.admin.resend(actorOf(req), id);
  }

  @Get('audit')
  @Roles(...CONSOLE_AUDIT_ROLES)
  audit(@Query() q: AdminAuditQueryDto): Promise<{ items: AuditView[]; nextCursor: string | null }> {
    return this.admin.auditLog(q);
  }
}
