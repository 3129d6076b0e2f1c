import { timeoutMsOf } from '../http.js';
import { Injectable } from '@nestjs/common';
import { ConfigError, Secret } from '#common';
import type {
  ChannelInstanceConfig,
  ChannelProvider,
  NotifyReply,
  PaymentChannel,
  RawNotify,
} from '../channel.interface.js';
import { ALIPAY_PRODUCTION_GATEWAY, AlipayChannel } from './alipay.channel.js';
import { AlipayKeyError, AlipaySigner, loadAlipayPrivateKey, loadAlipayPublicKey } from './alipay.signer.js';

/**
 * Builds Alipay channel instances from `pays/<x>/` config (API.md §2): `appId`, `privateKey` (app key:
 * PEM or bare base64 PKCS#1/PKCS#8), `publicKey` (Alipay's key: PEM or bare base64 SPKI), optional
 * `gatewayUrl` and `sellerId`. Every error names the instance and the field, never the value.
 */
@Injectable()
export class AlipayProvider implements ChannelProvider {
  readonly type = 'pays.AliPayType' as const;

  createInstance(instance: ChannelInstanceConfig): PaymentChannel {
    const where = instance.fullName;
    if (instance.type !== this.type) {
      throw new ConfigError(`${where}: type ${instance.type} is not ${this.type}`);
    }
    const cfg = instance.config;
    const appId = requiredText(cfg, 'appId', where);
    if (!/^[0-9A-Za-z_]{1,32}$/.test(appId)) {
      throw new ConfigError(`${where}: field "appId" must be at most 32 letters or digits`);
    }
    const privateKeyText = requiredText(cfg, 'privateKey', where);
    const publicKeyText = requiredText(cfg, 'publicKey', where);
    let signer: AlipaySigner;
    try {
      const privateKey = loadAlipayPrivateKey(privateKeyText, `field "privateKey"`);
      const alipayPublicKey = loadAlipayPublicKey(publicKeyText, `field "publicKey"`);
      signer = new AlipaySigner({ privateKey, alipayPublicKey });
    } catch (e) {
      // AlipayKeyError messages name the field and the expected format, never the key; others are not trusted.
      const reason = e instanceof AlipayKeyError ? e.message : 'the keys could not be loaded';
      throw new ConfigError(`${where}: ${reason}`);
    }
    const gatewayUrl = optionalText(cfg, 'gatewayUrl', where) ?? ALIPAY_PRODUCTION_GATEWAY;
    let parsed: URL | undefined;
    try {
      parsed = new URL(gatewayUrl);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
      throw new ConfigError(`${where}: field "gatewayUrl" must be an http(s) URL`);
    }
    const sellerId = optionalText(cfg, 'sellerId', where);
    if (sellerId !== undefined && !/^\d{1,32}$/.test(sellerId)) {
      throw new ConfigError(`${where}: field "sellerId" must be digits (the 2088… Alipay user id)`);
    }
    return new AlipayChannel({
      fullName: instance.fullName,
      title: instance.title,
      appId,
      signer,
      gatewayUrl,
      timeoutMs: timeoutMsOf(cfg, where),
      ...(sellerId !== undefined ? { sellerId } : {}),
    });
  }

  /** app_id from the form body, untrusted (its signature is checked by the instance it names). */
  notifyKeyOf(raw: RawNotify): string | undefined {
    try {
      const appId = new URLSearchParams(raw.body.toString('utf8')).get('app_id');
      return appId || undefined;
    } catch {
      return undefined;
    }
  }

  rejectReply(): NotifyReply {
    return { status: 200, contentType: 'text/plain; charset=utf-8', body: 'fail' };
  }
}

function textOf(value: unknown): string | undefined {
  if (value instanceof Secret) return value.reveal();
  return typeof value === 'string' ? value : undefined;
}

function requiredText(cfg: Readonly<Record<string, unknown>>, field: string, where: string): string {
  const value = cfg[field];
  if (value === undefined || value === null) throw new ConfigError(`${where}: field "${field}" is missing`);
  const text = textOf(value);
  if (text === undefined) throw new ConfigError(`${where}: field "${field}" must be a string`);
  if (text.trim() === '') throw new ConfigError(`${where}: field "${field}" is empty`);
  return text.trim();
}

function optionalText(cfg: Readonly<Record<string, unknown>>, field: string, where: string): string | undefined {
  const value = cfg[field];
  if (value === undefined || value === null || value === '') return undefined;
  const text = textOf(value);
  if (text === undefined) throw new ConfigError(`${where}: field "${field}" must be a string`);
  return text.trim() === '' ? undefined : text.trim();
}
