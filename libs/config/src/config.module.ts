import { type DynamicModule, Global, Module } from '@nestjs/common';
import { type AppConfig, loadAppConfig } from './app-config.js';

export const APP_CONFIG = Symbol('APP_CONFIG');

@Global()
@Module({})
export class ConfigModule {
  /** Loads the configuration from the environment, or takes a given one (tests, the worker). */
  static forRoot(config?: AppConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [{ provide: APP_CONFIG, useValue: config ?? loadAppConfig() }],
      exports: [APP_CONFIG],
    };
  }
}
