import { type BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server } from 'node:http';

const DRAIN_TIMEOUT_MS = 10_000;

/**
 * Stops taking requests and lets those in flight finish before the database closes: Nest would close
 * the HTTP server only after its shutdown hooks, so a notify arriving meanwhile would fail on a closed
 * database (the provider retries it, but a pay request could fail after its channel call).
 */
@Injectable()
export class HttpDrain implements BeforeApplicationShutdown {
  private readonly logger = new Logger('Shutdown');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  async beforeApplicationShutdown(): Promise<void> {
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!server?.listening) return;
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
