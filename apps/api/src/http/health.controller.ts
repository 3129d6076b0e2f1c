import { Controller, Get, Res } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Response } from 'express';
import type { DataSource } from 'typeorm';

@Controller('health')
export class HealthController {
  constructor(@InjectDataSource() private readonly ds: DataSource) {}

  /** 200 when the database answers, 503 otherwise. Public: it says nothing secret. */
  @Get()
  async health(@Res() res: Response): Promise<void> {
    const started = Date.now();
    try {
      await this.ds.query('SELECT 1');
      res.status(200).json({ status: 'ok', database: 'ok', latencyMs: Date.now() - started });
    } catch {
      res.status(503).json({ status: 'error', database: 'unreachable' });
    }
  }
}
