import { createSign, generateKeyPairSync, randomUUID } from 'node:crypto';
import type { AlipaySimulator } from '#sandbox';

/**
 * Helpers for the Alipay e2e suite: notify bodies built the way the simulator builds its own (PROTOCOLS.md
 * §1.9), and a small HTML form reader for acting as a browser on the cashier and page/wap pay forms.
 */

/** `yyyy-MM-dd HH:mm:ss` in GMT+8. */
export function gmt8(date: Date): string {
  return new Date(date.getTime() + 8 * 3600_000).toISOString().slice(0, 19).replace('T', ' ');
}

/**
 * The fields of a notify about `outTradeNo`, taken from the simulator's trade (trade_no, amount, subject,
 * seller), with `overrides` applied last (a value of `undefined` removes the field). A fresh notify_id
 * every call, so two calls never produce the same payload.
 */
export function notifyFields(
  sim: AlipaySimulator,
  outTradeNo: string,
  overrides: Readonly<Record<string, string | undefined>> = {},
): Record<string, string> {
  const trade = sim.trade(outTradeNo);
  if (!trade) throw new Error(`the simulator has no trade ${outTradeNo}`);
  const now = new Date();
  const paidAt = trade.gmtPayment ?? now;
  const fields: Record<string, string | undefined> = {
    notify_time: gmt8(now),
    notify_type: 'trade_status_sync',
    notify_id: `${gmt8(paidAt).replace(/\D/g, '')}${randomUUID().replace(/-/g, '')}`,
    app_id: sim.appId,
    auth_app_id: sim.appId,
    charset: 'utf-8',
    version: '1.0',
    trade_no: trade.tradeNo ?? `${gmt8(now).replace(/\D/g, '').slice(0, 8)}2200${Date.now()}`,
    out_trade_no: trade.outTradeNo,
    buyer_id: trade.buyerId ?? '2088000000000001',
    buyer_logon_id: 'sim***@example.com',
    seller_id: sim.sellerId,
    seller_email: 'sandbox-seller@example.com',
    trade_status: 'TRADE_SUCCESS',
    total_amount: trade.totalAmount,
    receipt_amount: trade.totalAmount,
    invoice_amount: trade.totalAmount,
    buyer_pay_amount: trade.totalAmount,
    point_amount: '0.00',
    subject: trade.subject,
    gmt_create: gmt8(trade.createdAt),
    gmt_payment: gmt8(paidAt),
    fund_bill_list: JSON.stringify([{ amount: trade.totalAmount, fundChannel: 'ALIPAYACCOUNT' }]),
    ...overrides,
  };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

/** The notify string to sign (§1.9): every field but sign and sign_type, non-empty, ASCII-sorted, raw k=v. */
export function notifyContent(fields: Readonly<Record<string, string>>): string {
  return Object.keys(fields)
    .filter((k) => k !== 'sign' && k !== 'sign_type' && fields[k] !== '')
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => `${k}=${fields[k] as string}`)
    .join('&');
}

let strangerKey: ReturnType<typeof generateKeyPairSync> | undefined;

/** A form body whose signature is well formed but made with a key that is not the simulator's. */
export function signWithStrangerKey(fields: Readonly<Record<string, string>>): string {
  strangerKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 });
  const sign = createSign('RSA-SHA256').update(notifyContent(fields), 'utf8').sign(strangerKey.privateKey, 'base64');
  return new URLSearchParams({ ...fields, sign_type: 'RSA2', sign }).toString();
}

/** A form body with the fields and no `sign` at all. */
export function unsignedBody(fields: Readonly<Record<string, string>>): string {
  return new URLSearchParams({ ...fields, sign_type: 'RSA2' }).toString();
}

/** Replaces one field of an already signed form body, keeping its signature (a tampered notify). */
export function tamper(body: string, field: string, value: string): string {
  const params = new URLSearchParams(body);
  if (!params.has(field)) throw new Error(`the body has no ${field}`);
  params.set(field, value);
  return params.toString();
}

export interface HtmlForm {
  readonly action: string;
  readonly method: string;
  readonly id: string | undefined;
  readonly fields: Record<string, string>;
  /** ids of the submit buttons inside the form. */
  readonly buttons: string[];
}

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", apos: "'" };

export function unescapeHtml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39|apos);/g, (_m, e: string) => ENTITIES[e] ?? _m);
}

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}="([^"]*)"`, 'i').exec(tag);
  return m ? unescapeHtml(m[1] ?? '') : undefined;
}

/** Every <form> of a page with its action, method and the name/value pairs of its <input>s, as a browser reads them. */
export function parseForms(html: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const open = ` ${m[1] ?? ''}`;
    const inner = m[2] ?? '';
    const fields: Record<string, string> = {};
    for (const input of inner.matchAll(/<input\b[^>]*>/gi)) {
      const name = attr(input[0], 'name');
      if (name !== undefined) fields[name] = attr(input[0], 'value') ?? '';
    }
    const buttons = [...inner.matchAll(/<button\b[^>]*>/gi)].map((b) => attr(b[0], 'id') ?? '');
    forms.push({
      action: attr(open, 'action') ?? '',
      method: (attr(open, 'method') ?? 'get').toLowerCase(),
      id: attr(open, 'id'),
      fields,
      buttons,
    });
  }
  return forms;
}
