import { setTimeout as sleep } from 'node:timers/promises';
import { type BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server } from 'node:http';
import { APP_CONFIG, type AppConfig } from '#config';

const DRAIN_TIMEOUT_MS = 10_000;

/**
 * Stops taking requests and lets those in flight finish before the database closes: Nest would close
 * the HTTP server only after its shutdown hooks, so a notify arriving meanwhile would fail on a closed
 * database (the provider retries it, but a pay request could fail after its channel call).
 *
 * From the first moment of shutdown `draining` is true and /health/ready answers 503; with
 * SHUTDOWN_GRACE_MS the listener stays open that long first, so a load balancer sees the 503 and stops
 * sending requests before connections are refused.
 */
@Injectable()
export class HttpDrain implements BeforeApplicationShutdown {
  private readonly logger = new Logger('Shutdown');

  private drainingSince: Date | undefined;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
  ) {}

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.drainingSince = new Date();
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server?.listening) return;
    if (this.cfg.shutdownGraceMs > 0) {
      this.logger.log(`draining: /health/ready answers 503; closing the listener in ${this.cfg.shutdownGraceMs} ms`);
      await sleep(this.cfg.shutdownGraceMs);
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.logger.warn('requests still running after 10 s: closing anyway');
        server.closeAllConnections();
        resolve();
      }, DRAIN_TIMEOUT_MS);
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      server.closeIdleConnections();
    });
  }
}
