import { timeoutMsOf } from '../http.js';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { Clock, ConfigError, Secret, SystemClock } from '#common';
import type { ChannelInstanceConfig, ChannelProvider, NotifyReply, RawNotify } from '../channel.interface.js';
import {
  WECHAT_MIN_CLOSE_AGE_MS,
  WechatPayChannel,
  wechatNotifyReply,
  type WechatPaySettings,
} from './wechatpay.channel.js';
import { isWechatSignType } from './wechatpay.signer.js';
import { parseWechatXml } from './wechatpay.xml.js';

export const WECHATPAY_DEFAULT_BASE_URL = 'https://api.mch.weixin.qq.com';

/**
 * Builds WeChat Pay (API v2) instances from `pays/<folder>` configs (API.md §2): `appId`, `mchId`,
 * `apiKey` (32 characters), optional `signType` (`MD5` default, or `HMAC-SHA256`), `baseUrl`, and for
 * refunds the merchant client certificate (`apiclient_cert.p12`): `pfx` (base64 PKCS#12) or `pfxPath`
 * (a file path; relative paths are resolved by the pays/ loader), `pfxPassword` (default: the mch_id,
 * as WeChat issues it), optional `secapiBaseUrl` (where /secapi/ calls go, default `baseUrl`; https
 * only) and `caCert` (PEM of a CA to trust for the API host instead of the system CAs: the sandbox uses
 * it). The certificate is opened at start-up: a file that does not open is a ConfigError naming the
 * instance and the field. An instance without a certificate starts; its refunds throw a clear error.
 * A ConfigError names the instance and the field, never the value.
 */
export class WechatPayProvider implements ChannelProvider {
  readonly type = 'pays.WechatPayType' as const;

  constructor(private readonly clock: Clock = new SystemClock()) {}

  createInstance(instance: ChannelInstanceConfig): WechatPayChannel {
    return new WechatPayChannel(parseWechatPaySettings(instance), this.clock);
  }

  /** `${appid}|${mch_id}` read from the XML without trusting it; undefined when it cannot be read. */
  notifyKeyOf(raw: RawNotify): string | undefined {
    try {
      const f = parseWechatXml(raw.body);
      const appid = f['appid'];
      const mchId = f['mch_id'];
      return appid && mchId ? `${appid}|${mchId}` : undefined;
    } catch {
      return undefined;
    }
  }

  rejectReply(): NotifyReply {
    return wechatNotifyReply('rejected');
  }
}

/** Static validation of one instance's config (exported for tests and the config loader's dry run). */
export function parseWechatPaySettings(instance: ChannelInstanceConfig): WechatPaySettings {
  const c = instance.config;
  const where = (field: string): string => `${instance.fullName}: config.${field}`;
  const str = (field: string, required: boolean): string | undefined => {
    const v = Object.hasOwn(c, field) ? c[field] : undefined;
    if (v === undefined || v === null || v === '') {
      if (required) throw new ConfigError(`${where(field)} is required`);
      return undefined;
    }
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return String(v); // a numeric mchId in JSON
    if (typeof v !== 'string') throw new ConfigError(`${where(field)} must be a string`);
    if (v.trim() !== v) throw new ConfigError(`${where(field)} has leading or trailing whitespace`);
    return v;
  };

  const appId = str('appId', true) as string;
  if (appId.length > 32 || !/^[A-Za-z0-9_-]+$/.test(appId))
    throw new ConfigError(`${where('appId')} is not a valid appid`);
  const mchId = str('mchId', true) as string;
  if (mchId.length > 32 || !/^[A-Za-z0-9_-]+$/.test(mchId))
    throw new ConfigError(`${where('mchId')} is not a valid mch_id`);
  const apiKey = str('apiKey', true) as string;
  if (apiKey.length !== 32 || !/^[\x21-\x7e]+$/.test(apiKey)) {
    throw new ConfigError(`${where('apiKey')} must be the 32-character API v2 key`);
  }
  const signTypeRaw = str('signType', false) ?? 'MD5';
  if (!isWechatSignType(signTypeRaw)) throw new ConfigError(`${where('signType')} must be MD5 or HMAC-SHA256`);
  const baseUrlRaw = str('baseUrl', false) ?? WECHATPAY_DEFAULT_BASE_URL;
  let baseUrl: string;
  try {
    const u = new URL(baseUrlRaw);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('protocol');
    if (u.search || u.hash || u.username || u.password) throw new Error('extras');
    baseUrl = u.toString().replace(/\/+$/, '');
  } catch {
    throw new ConfigError(`${where('baseUrl')} must be an absolute http(s) URL without query or credentials`);
  }
  const clientCert = parseClientCert(instance, str, mchId);
  const secapiRaw = str('secapiBaseUrl', false);
  let secapiBaseUrl = baseUrl;
  if (secapiRaw !== undefined) {
    try {
      const u = new URL(secapiRaw);
      if (u.protocol !== 'https:' || u.search || u.hash || u.username || u.password) throw new Error('bad');
      secapiBaseUrl = u.toString().replace(/\/+$/, '');
    } catch {
      throw new ConfigError(`${where('secapiBaseUrl')} must be an absolute https URL without query or credentials`);
    }
  }
  if (clientCert && !secapiBaseUrl.startsWith('https:')) {
    throw new ConfigError(`${where('secapiBaseUrl')} must be https: the client certificate is only sent over TLS`);
  }
  // WeChat's own closeorder rule is 5 minutes; only a simulator may be configured with less.
  const minCloseRaw = instance.config['minCloseAgeSeconds'];
  if (
    minCloseRaw !== undefined &&
    (typeof minCloseRaw !== 'number' || !Number.isInteger(minCloseRaw) || minCloseRaw < 0)
  ) {
    throw new ConfigError(`${where('minCloseAgeSeconds')} must be a whole number of seconds`);
  }
  return {
    fullName: instance.fullName,
    title: instance.title,
    appId,
    mchId,
    apiKey: new Secret(apiKey),
    signType: signTypeRaw,
    baseUrl,
    minCloseAgeMs: minCloseRaw === undefined ? WECHAT_MIN_CLOSE_AGE_MS : minCloseRaw * 1000,
    secapiBaseUrl,
    timeoutMs: timeoutMsOf(instance.config, instance.fullName),
    ...(clientCert ? { clientCert } : {}),
  };
}

/**
 * Reads and opens the client certificate (pfx | pfxPath, pfxPassword defaulting to mch_id) and the
 * optional caCert. Opening it here turns a wrong password or a broken file into a start-up error.
 */
function parseClientCert(
  instance: ChannelInstanceConfig,
  str: (field: string, required: boolean) => string | undefined,
  mchId: string,
): WechatPaySettings['clientCert'] {
  const where = (field: string): string => `${instance.fullName}: config.${field}`;
  const pfxText = str('pfx', false);
  const pfxPath = str('pfxPath', false);
  const caCert = str('caCert', false);
  if (caCert !== undefined) {
    try {
      new X509Certificate(caCert);
    } catch {
      throw new ConfigError(`${where('caCert')} is not a PEM certificate`);
    }
  }
  if (pfxText !== undefined && pfxPath !== undefined) {
    throw new ConfigError(`${instance.fullName}: give config.pfx or config.pfxPath, not both`);
  }
  let pfx: Buffer | undefined;
  let field = 'pfx';
  if (pfxText !== undefined) {
    const compact = pfxText.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw new ConfigError(`${where('pfx')} must be base64 (PKCS#12)`);
    pfx = Buffer.from(compact, 'base64');
  } else if (pfxPath !== undefined) {
    field = 'pfxPath';
    try {
      pfx = readFileSync(pfxPath);
    } catch {
      throw new ConfigError(`${where('pfxPath')} cannot be read`);
    }
  }
  if (pfx === undefined) {
    if (str('pfxPassword', false) !== undefined) {
      throw new ConfigError(`${where('pfxPassword')} is set but there is no config.pfx or config.pfxPath`);
    }
    return undefined;
  }
  const passphrase = str('pfxPassword', false) ?? mchId;
  try {
    createSecureContext({ pfx, passphrase });
  } catch {
    throw new ConfigError(
      `${where(field)} does not open as PKCS#12 with config.pfxPassword (default: the mch_id): wrong password, ` +
        'not a PKCS#12 file, or a legacy RC2-encrypted file (re-export it: openssl pkcs12 -legacy -in old.p12 -nodes | ' +
        'openssl pkcs12 -export -out new.p12)',
    );
  }
  return { pfx, passphrase: new Secret(passphrase), ...(caCert !== undefined ? { caCert } : {}) };
}
