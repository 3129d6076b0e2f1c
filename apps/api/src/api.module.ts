import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import type { Clock } from '#common';
import { type ApiKey, type AppConfig, ConfigModule } from '#config';
import { DatabaseModule } from '#database';
import type { ChannelInstanceConfig, ChannelProvider } from '#channels';
import { PaymentsModule } from '#payments';
import { AdminApiController } from './admin/admin-api.controller.js';
import { AdminSessions } from './admin/admin-session.js';
import { AdminWebController } from './admin/admin-web.controller.js';
import { API_KEYS, AuthGuard } from './http/auth.guard.js';
import { ErrorFilter } from './http/error.filter.js';
import { EventsController } from './http/events.controller.js';
import { FacadeController } from './http/facade.controller.js';
import { HealthController } from './http/health.controller.js';
import { HttpDrain } from './http/http-drain.js';
import { IdempotencyInterceptor } from './http/idempotency.interceptor.js';
import { MetricsController } from './http/metrics.controller.js';
import { NotifyController } from './http/notify.controller.js';
import { OrdersController } from './http/orders.controller.js';
import { RefundsController } from './http/refunds.controller.js';
import { ApiKeyRateLimitGuard, RateLimiter } from './http/rate-limit.js';
import { validationPipe } from './http/validation.js';

export interface ApiModuleOptions {
  readonly config: AppConfig;
  readonly apiKeys: readonly ApiKey[];
  readonly channelProviders: ChannelProvider[];
  readonly instances: ChannelInstanceConfig[];
  readonly clock?: Clock;
}

@Module({})
export class ApiModule {
  static forRoot(opts: ApiModuleOptions): DynamicModule {
    return {
      module: ApiModule,
      imports: [
        ConfigModule.forRoot(opts.config),
        TerminusModule.forRoot({ logger: false }),
        DatabaseModule.forRoot(),
        PaymentsModule.forRoot({
          channelProviders: opts.channelProviders,
          instances: opts.instances,
          clock: opts.clock,
        }),
      ],
      // NotifyController first: its seed path must win over the facade's `:method` route.
      controllers: [
        NotifyController,
        HealthController,
        MetricsController,
        OrdersController,
        RefundsController,
        FacadeController,
        EventsController,
        AdminApiController,
        AdminWebController,
      ],
      providers: [
        { provide: API_KEYS, useValue: opts.apiKeys },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: ErrorFilter },
        { provide: APP_PIPE, useFactory: validationPipe },
        IdempotencyInterceptor,
        HttpDrain,
        RateLimiter,
        ApiKeyRateLimitGuard,
        AdminSessions,
      ],
    };
  }
}
