import { type DynamicModule, Module } from '@nestjs/common';
import { Clock, SystemClock } from '#common';
import {
  ALIPAYPLUS_TOKEN_STORE,
  CHANNEL_INSTANCES,
  type ChannelInstanceConfig,
  type ChannelProvider,
  ChannelRegistry,
  PAYMENT_CHANNELS,
} from '#channels';
import { OrderStore } from './order-store.js';
import { PaymentTransitions } from './payment-transitions.js';
import { PaidSignal } from './paid-signal.js';
import { RefundService } from './refunds/refund.service.js';
import { RefundStore } from './refunds/refund-store.js';
import { RefundSyncJob } from './refunds/refund-sync.job.js';
import { PayService } from './pay.service.js';
import { PublicUrl } from './public-url.js';
import { PgAlipayPlusTokenStore } from './alipayplus-tokens.store.js';
import { NotifyService } from './notify/notify.service.js';
import { ScheduleModule } from '@nestjs/schedule';
import { HousekeepingJob, JobStats, JobsRunner, OrderSyncJob, TimeoutCloserJob } from './jobs/index.js';
import { APP_CONFIG } from '#config';
import { PaymentMetrics } from './metrics/payment-metrics.js';
import {
  DeliveryStore,
  EventWriter,
  EventsService,
  WEBHOOK_SETTINGS,
  WebhookPublisher,
  WebhookWake,
  webhookSettingsFrom,
} from './webhooks/index.js';
import { AdminService, AdminStore, AuditStore } from './admin/index.js';

export interface PaymentsModuleOptions {
  /** One provider per channel type, given to the registry through the PAYMENT_CHANNELS token. */
  readonly channelProviders: ChannelProvider[];
  /** The configured instances (from pays/, or the sandbox's). */
  readonly instances: ChannelInstanceConfig[];
  readonly clock?: Clock;
}

@Module({})
export class PaymentsModule {
  static forRoot(opts: PaymentsModuleOptions): DynamicModule {
    const exported = [
      PayService,
      NotifyService,
      OrderStore,
      PaymentTransitions,
      PublicUrl,
      ChannelRegistry,
      Clock,
      JobStats,
      PaymentMetrics,
      TimeoutCloserJob,
      OrderSyncJob,
      HousekeepingJob,
      RefundService,
      RefundStore,
      RefundSyncJob,
      WEBHOOK_SETTINGS,
      DeliveryStore,
      EventWriter,
      EventsService,
      WebhookPublisher,
      AdminService,
      AuditStore,
    ];
    return {
      module: PaymentsModule,
      imports: [ScheduleModule.forRoot()],
      providers: [
        { provide: PAYMENT_CHANNELS, useValue: opts.channelProviders },
        { provide: CHANNEL_INSTANCES, useValue: opts.instances },
        { provide: Clock, useValue: opts.clock ?? new SystemClock() },
        { provide: ALIPAYPLUS_TOKEN_STORE, useClass: PgAlipayPlusTokenStore },
        ChannelRegistry,
        OrderStore,
        PaymentTransitions,
        PaidSignal,
        PayService,
        NotifyService,
        PublicUrl,
        JobStats,
        PaymentMetrics,
        TimeoutCloserJob,
        OrderSyncJob,
        HousekeepingJob,
        RefundService,
        RefundStore,
        RefundSyncJob,
        JobsRunner,
        { provide: WEBHOOK_SETTINGS, inject: [APP_CONFIG], useFactory: webhookSettingsFrom },
        DeliveryStore,
        WebhookWake,
        EventWriter,
        EventsService,
        WebhookPublisher,
        AdminStore,
        AuditStore,
        AdminService,
      ],
      exports: exported,
    };
  }
}
