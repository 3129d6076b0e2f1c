import { randomBytes } from 'node:crypto';
import type { ChannelInstanceConfig } from '#channels';
import { gmt8Compact } from '#common';
// The simulator's own signer and XML writer: written apart from libs/channels, so a notify built here
// is genuinely signed without going through the code under test.
import { simSign, simXml, type SimSignType } from '../../libs/sandbox/src/wechatpay/wechatpay.wire.js';

/** The exact acknowledgement bytes of PROTOCOLS.md §2.9. */
export const WECHAT_SUCCESS_XML =
  '<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>';

export interface WechatCreds {
  readonly appId: string;
  readonly mchId: string;
  readonly apiKey: string;
}

/** appId, mchId and apiKey of an instance (default the sandbox's `pays.myWechatPay`). */
export function wechatCreds(instances: readonly ChannelInstanceConfig[], fullName = 'pays.myWechatPay'): WechatCreds {
  const inst = instances.find((i) => i.fullName === fullName);
  if (!inst) throw new Error(`no instance ${fullName}`);
  const c = inst.config as Record<string, unknown>;
  return { appId: String(c['appId']), mchId: String(c['mchId']), apiKey: String(c['apiKey']) };
}

export type NotifyFields = Record<string, string | undefined>;

/** The fields of a paid-order notify as WeChat sends it (§2.9), unsigned. */
export function paidNotifyFields(
  creds: WechatCreds,
  p: {
    outTradeNo: string;
    totalFee: number | string;
    transactionId?: string;
    timeEnd?: string;
    tradeType?: string;
    openid?: string;
  },
): NotifyFields {
  return {
    return_code: 'SUCCESS',
    appid: creds.appId,
    mch_id: creds.mchId,
    nonce_str: randomBytes(16).toString('hex'),
    sign_type: 'MD5',
    result_code: 'SUCCESS',
    openid: p.openid ?? 'oTestOpenid0123456789',
    is_subscribe: 'N',
    trade_type: p.tradeType ?? 'NATIVE',
    bank_type: 'CFT',
    total_fee: String(p.totalFee),
    fee_type: 'CNY',
    cash_fee: String(p.totalFee),
    transaction_id: p.transactionId ?? `4200${Date.now()}${randomBytes(4).toString('hex')}`.slice(0, 28),
    out_trade_no: p.outTradeNo,
    time_end: p.timeEnd ?? gmt8Compact(new Date()),
  };
}

/** `fields` plus a `sign` computed with `apiKey` (§2.2). */
export function signed(fields: NotifyFields, apiKey: string, type: SimSignType = 'MD5'): NotifyFields {
  return { ...fields, sign: simSign(fields, apiKey, type) };
}

export const toXml = (fields: NotifyFields): string => simXml(fields);

/** return_code of a v2 XML reply, or undefined when the text is not one. */
export function returnCodeOf(xml: string): string | undefined {
  return /<return_code><!\[CDATA\[([A-Z]+)\]\]><\/return_code>/.exec(xml)?.[1];
}
