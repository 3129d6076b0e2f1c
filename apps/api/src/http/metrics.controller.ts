import { Controller, Get, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply as Response } from 'fastify';
import { PaymentMetrics } from '#payments';
import { Roles } from './auth.guard.js';
import { ApiErrors } from '../ops/openapi-decorators.js';

/**
 * Prometheus text exposition (prom-client): process metrics, the HTTP histogram, the business counters
 * of this process and the database-wide gauges (stuck orders, pending refunds, undelivered events).
 * Viewer or higher: the series say how much money moves.
 */
@ApiTags('operations')
@ApiBearerAuth()
@Controller('metrics')
@Roles('viewer', 'operator', 'admin')
export class MetricsController {
  constructor(private readonly payments: PaymentMetrics) {}

  @Get()
  @ApiOperation({ summary: 'Prometheus metrics (text exposition format)' })
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'Prometheus text format 0.0.4', schema: { type: 'string' } })
  @ApiErrors(401, 403)
  async metrics(@Res() res: Response): Promise<void> {
    const body = await this.payments.scrape();
    void res.code(200).header('Content-Type', this.payments.registry.contentType).send(body);
  }
}
