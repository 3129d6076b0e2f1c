import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { ConfigError, PayError } from '#common';
import { ALIPAYPLUS_TOKEN_STORE, CHANNEL_INSTANCES, PAYMENT_CHANNELS } from './channel.tokens.js';
import type { AlipayPlusTokenStore } from './alipayplus/alipayplus.tokens.js';
import {
  CHANNEL_TYPES,
  type ChannelContext,
  type ChannelInstanceConfig,
  type ChannelProvider,
  type ChannelType,
  type PaymentChannel,
  type RawNotify,
} from './channel.interface.js';

/**
 * Maps instance fullNames (`pays.aliPayment`) to channel instances, built at startup from the pays/
 * config by the provider of each instance's type. A type name (`pays.AliPayType`) resolves to the
 * type's default instance. Any configuration error stops startup.
 */
@Injectable()
export class ChannelRegistry {
  private readonly logger = new Logger(ChannelRegistry.name);
  private readonly byName = new Map<string, PaymentChannel>();
  private readonly defaults = new Map<ChannelType, PaymentChannel>();
  private readonly providers = new Map<ChannelType, ChannelProvider>();

  constructor(
    @Inject(PAYMENT_CHANNELS) providers: ChannelProvider[],
    @Inject(CHANNEL_INSTANCES) instances: ChannelInstanceConfig[],
    @Optional() @Inject(ALIPAYPLUS_TOKEN_STORE) alipayPlusTokens?: AlipayPlusTokenStore,
  ) {
    const context: ChannelContext = alipayPlusTokens ? { alipayPlusTokens } : {};
    for (const p of providers) {
      if (this.providers.has(p.type)) throw new ConfigError(`two channel providers registered for ${p.type}`);
      this.providers.set(p.type, p);
    }
    for (const inst of instances) {
      if ((CHANNEL_TYPES as readonly string[]).includes(inst.fullName)) {
        throw new ConfigError(`${inst.fullName}: an instance may not be named after a channel type`);
      }
      if (this.byName.has(inst.fullName)) throw new ConfigError(`${inst.fullName}: configured twice`);
      const provider = this.providers.get(inst.type);
      if (!provider) throw new ConfigError(`${inst.fullName}: no provider for channel type ${inst.type}`);
      this.byName.set(inst.fullName, provider.createInstance(inst, context));
    }
    for (const type of CHANNEL_TYPES) {
      const chosen = defaultInstanceOf(type, instances);
      const channel = chosen && this.byName.get(chosen.fullName);
      if (channel) this.defaults.set(type, channel);
    }
    this.logger.log(`channel instances: ${[...this.byName.keys()].join(', ') || '(none)'}`);
  }

  get size(): number {
    return this.byName.size;
  }

  list(): PaymentChannel[] {
    return [...this.byName.values()];
  }

  /** Resolves an instance fullName or a type name; throws CHANNEL_NOT_FOUND otherwise. */
  resolve(fullName: string): PaymentChannel {
    const channel = this.byName.get(fullName) ?? this.defaults.get(fullName as ChannelType);
    if (!channel) throw new PayError('CHANNEL_NOT_FOUND', `unknown channel: ${fullName.slice(0, 64)}`);
    return channel;
  }

  /** The instance of `type` a raw notify names, or undefined (the pipeline then rejects it). */
  findForNotify(type: ChannelType, raw: RawNotify): PaymentChannel | undefined {
    const provider = this.providers.get(type);
    const key = provider?.notifyKeyOf(raw);
    if (key === undefined) return undefined;
    return this.list().find((c) => c.type === type && c.notifyKey === key);
  }

  provider(type: ChannelType): ChannelProvider | undefined {
    return this.providers.get(type);
  }
}

/**
 * A type's default instance: the one marked default, else the only one. Sandbox instances count only
 * when the type has no real instance, so a type name never resolves to a simulator beside a real account.
 */
export function defaultInstanceOf(
  type: ChannelType,
  instances: readonly ChannelInstanceConfig[],
): ChannelInstanceConfig | undefined {
  const ofType = instances.filter((i) => i.type === type);
  const real = ofType.filter((i) => i.sandbox !== true);
  const pool = real.length > 0 ? real : ofType;
  const marked = pool.filter((i) => i.isDefault);
  if (marked.length > 1) {
    throw new ConfigError(`${marked[1]?.fullName}: ${marked[0]?.fullName} is already the default of ${type}`);
  }
  return marked[0] ?? (pool.length === 1 ? pool[0] : undefined);
}
