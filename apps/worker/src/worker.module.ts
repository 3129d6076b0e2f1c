import { type DynamicModule, Module } from '@nestjs/common';
import { type AppConfig, ConfigModule } from '#config';
import { DatabaseModule } from '#database';
import type { ChannelInstanceConfig, ChannelProvider } from '#channels';
import { PaymentsModule } from '#payments';

export interface WorkerModuleOptions {
  readonly config: AppConfig;
  readonly channelProviders: ChannelProvider[];
  readonly instances: ChannelInstanceConfig[];
}

/** The scheduled jobs without HTTP, for deployments that run them apart from the api. */
@Module({})
export class WorkerModule {
  static forRoot(opts: WorkerModuleOptions): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        ConfigModule.forRoot({ ...opts.config, jobsEnabled: true }),
        // JSON lines like the api's (LOG_LEVEL, LOG_FORMAT), with app=worker.
        DatabaseModule.forRoot(),
        PaymentsModule.forRoot({ channelProviders: opts.channelProviders, instances: opts.instances }),
      ],
    };
  }
}
