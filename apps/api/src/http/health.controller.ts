import { Controller, Get, Inject, Res, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { ApiResponseSchemaHost } from '@nestjs/swagger';

type SchemaObject = ApiResponseSchemaHost['schema'];
import type { HttpReply as Response } from './http-types.js';
import { APP_CONFIG, type AppConfig } from '#config';
import { HttpDrain } from './http-drain.js';

type Check = 'up' | 'down';

const READY_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['status', 'checks'],
  properties: {
    status: { type: 'string', enum: ['ok', 'error', 'shutting_down'] },
    checks: {
      type: 'object',
      properties: {
        database: { type: 'string', enum: ['up', 'down'] },
        http: { type: 'string', enum: ['up', 'draining'] },
      },
    },
  },
};

/**
 * Probes (API.md §12), public: they say nothing secret. `live`: the process answers. `ready`: the
 * database answers within READY_DB_TIMEOUT_MS and the process is not shutting down (503 otherwise).
 * On the embedded database the ping waits behind any open transaction of its single connection: the
 * timeout bounds that.
 */
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly drain: HttpDrain,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
  ) {}

  @Get('live')
  @ApiOperation({ summary: 'Liveness: the process runs' })
  @ApiResponse({ status: 200, schema: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } } } })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  @ApiOperation({ summary: 'Readiness: the database answers and the process is not draining' })
  @ApiResponse({ status: 200, schema: READY_SCHEMA })
  @ApiResponse({ status: 503, schema: READY_SCHEMA })
  ready(@Res() res: Response): Promise<void> {
    return this.answer(res);
  }

  @Get()
  @ApiOperation({ summary: 'Alias of /health/ready' })
  @ApiResponse({ status: 200, schema: READY_SCHEMA })
  @ApiResponse({ status: 503, schema: READY_SCHEMA })
  alias(@Res() res: Response): Promise<void> {
    return this.answer(res);
  }

  private async answer(res: Response): Promise<void> {
    const checks = [
      () => {
        const http = this.indicators.check('http');
        return this.drain.draining ? http.down({ state: 'draining' }) : http.up();
      },
      () => this.db.pingCheck('database', { timeout: this.cfg.readyDbTimeoutMs }),
    ];
    let status: string;
    let details: Record<string, { status: string }>;
    try {
      const r = await this.health.check(checks);
      status = r.status;
      details = r.details;
    } catch (err) {
      if (!(err instanceof ServiceUnavailableException)) throw err;
      const r = err.getResponse() as { status: string; details: Record<string, { status: string }> };
      status = r.status;
      details = r.details;
    }
    // Only up/down: an indicator's message (a driver error naming a host) stays out of a public answer.
    const state = (k: string): Check => (details[k]?.status === 'up' ? 'up' : 'down');
    const body = {
      status: this.drain.draining ? 'shutting_down' : status,
      checks: { database: state('database'), http: this.drain.draining ? 'draining' : state('http') },
    };
    void res.code(body.status === 'ok' ? 200 : 503).send(body);
  }
}
