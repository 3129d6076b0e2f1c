import { timeoutMsOf } from '../http.js';
import { Inject, Injectable, Optional } from '@nestjs/common';
import { Clock, ConfigError } from '#common';
import type {
  ChannelContext,
  ChannelInstanceConfig,
  ChannelProvider,
  NotifyReply,
  RawNotify,
} from '../channel.interface.js';
import { AlipayPlusChannel, type AlipayPlusChannelConfig } from './alipayplus.channel.js';
import { alipayPlusNotifyReply, headerOf } from './alipayplus.mapper.js';
import { AlipayPlusKeyError, loadAlipayPlusPrivateKey, loadAlipayPlusPublicKey } from './alipayplus.signer.js';

/**
 * Builds Alipay+ instances from `pays/<folder>/` config (API.md §2): clientId, privateKey,
 * walletPublicKey, gatewayUrl; optional keyVersion, customerBelongsTo, productCode, appId. Every check
 * runs at startup; a ConfigError names the instance and the field, never the value.
 */
@Injectable()
export class AlipayPlusProvider implements ChannelProvider {
  readonly type = 'pays.AlipayPlusType' as const;

  constructor(@Optional() @Inject(Clock) private readonly clock?: Clock) {}

  createInstance(instance: ChannelInstanceConfig, context?: ChannelContext): AlipayPlusChannel {
    const config = parseAlipayPlusConfig(instance);
    return new AlipayPlusChannel({
      fullName: instance.fullName,
      title: instance.title,
      config,
      timeoutMs: timeoutMsOf(instance.config, instance.fullName),
      ...(this.clock ? { clock: this.clock } : {}),
      ...(context?.alipayPlusTokens ? { tokenStore: context.alipayPlusTokens } : {}),
    });
  }

  /** The Client-Id header (case-insensitive); the signature is checked later by the instance. */
  notifyKeyOf(raw: RawNotify): string | undefined {
    const id = headerOf(raw.headers, 'client-id')?.trim();
    return id ? id : undefined;
  }

  rejectReply(): NotifyReply {
    return alipayPlusNotifyReply('rejected');
  }
}

/** Validates one instance's config statically (exported for the config loader's own checks and specs). */
export function parseAlipayPlusConfig(instance: ChannelInstanceConfig): AlipayPlusChannelConfig {
  const c = instance.config;
  const where = instance.fullName;
  const required = (field: string): string => {
    const v = c[field];
    if (v === undefined || v === null || v === '') throw new ConfigError(`${where}: config.${field} is missing`);
    if (typeof v !== 'string' || v.trim() === '')
      throw new ConfigError(`${where}: config.${field} must be a non-empty string`);
    return v.trim();
  };
  const optional = (field: string): string | undefined => {
    const v = c[field];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string' || v.trim() === '')
      throw new ConfigError(`${where}: config.${field} must be a non-empty string`);
    return v.trim();
  };

  const clientId = required('clientId');
  if (/[\s,]/.test(clientId)) throw new ConfigError(`${where}: config.clientId must not contain spaces or commas`);
  const privateKey = required('privateKey');
  const walletPublicKey = required('walletPublicKey');
  try {
    loadAlipayPlusPrivateKey(privateKey);
  } catch (err) {
    if (err instanceof AlipayPlusKeyError) {
      throw new ConfigError(`${where}: config.privateKey is not a PEM or base64 PKCS#8/PKCS#1 RSA private key`);
    }
    throw err;
  }
  try {
    loadAlipayPlusPublicKey(walletPublicKey);
  } catch (err) {
    if (err instanceof AlipayPlusKeyError) {
      throw new ConfigError(`${where}: config.walletPublicKey is not a PEM or base64 SPKI/PKCS#1 RSA public key`);
    }
    throw err;
  }
  const gatewayUrl = required('gatewayUrl');
  let url: URL;
  try {
    url = new URL(gatewayUrl);
  } catch {
    throw new ConfigError(`${where}: config.gatewayUrl is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(`${where}: config.gatewayUrl must be an http(s) URL`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw new ConfigError(`${where}: config.gatewayUrl must not have a query or fragment`);
  }

  let keyVersion: string | undefined;
  const kv = c['keyVersion'];
  if (kv !== undefined && kv !== null && kv !== '') {
    const text = typeof kv === 'number' ? String(kv) : kv;
    if (typeof text !== 'string' || !/^[1-9]\d{0,8}$/.test(text.trim())) {
      throw new ConfigError(`${where}: config.keyVersion must be a positive integer`);
    }
    keyVersion = text.trim();
  }
  const customerBelongsTo = optional('customerBelongsTo');
  const productCode = optional('productCode');
  const appId = optional('appId');
  return {
    clientId,
    privateKey,
    walletPublicKey,
    gatewayUrl: url.toString().replace(/\/+$/, ''),
    ...(keyVersion !== undefined ? { keyVersion } : {}),
    ...(customerBelongsTo !== undefined ? { customerBelongsTo } : {}),
    ...(productCode !== undefined ? { productCode } : {}),
    ...(appId !== undefined ? { appId } : {}),
  };
}
