import { createCipheriv, createHash, randomBytes, randomInt } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import QRCode from 'qrcode';
import type { ChannelInstanceConfig } from '#channels';
import { formatMinor, gmt8Compact } from '#common';
import { renderCashierPage, renderResultPage } from './wechatpay.cashier.js';
import {
  WECHAT_SANDBOX_CA_PEM,
  WECHAT_SANDBOX_CLIENT_PFX_BASE64,
  WECHAT_SANDBOX_CLIENT_PFX_PASSWORD,
  WECHAT_SANDBOX_SERVER_CERT_PEM,
  WECHAT_SANDBOX_SERVER_KEY_PEM,
} from './wechatpay.sandbox-certs.js';
import { simParseXml, simSign, simVerify, simXml, type SimSignType } from './wechatpay.wire.js';

/**
 * A loopback simulator of WeChat Pay API v2 (PROTOCOLS.md §2.11) for tests and sandbox mode:
 * unifiedorder / orderquery / closeorder with signatures checked both ways, a cashier page, and signed
 * payment notifications retried until the merchant answers the exact SUCCESS XML.
 *
 * Choices where the real behaviour is [UNVERIFIED] (PROTOCOLS.md §4):
 * - a bad request signature: `return_code=FAIL`, `return_msg=签名错误`, unsigned;
 * - closeorder within `minCloseAgeMs` of the order (WeChat's 5-minute rule): `result_code=FAIL`,
 *   `err_code=INVALID_REQUEST` (a documented code; WeChat publishes no dedicated one), `err_code_des`
 *   quoting the rule; the order stays NOTPAY;
 * - closing an already closed order: `err_code=ORDERCLOSED`; a paid one: `ORDERPAID`;
 * - unifiedorder again with the same out_trade_no: identical parameters (all but nonce_str and sign)
 *   give the same prepay_id; any difference, `OUT_TRADE_NO_USED`.
 *
 * Refunds (PROTOCOLS.md §2.8, PROTOCOLS-REFUNDS-BILLS.md §2.12, §2.13, §4):
 * - `/secapi/pay/refund` is served only to a request that came over mutual TLS with a client certificate
 *   issued by the sandbox CA (`createWechatPaySandbox` starts that https listener); over plain HTTP it
 *   answers `return_code=FAIL`;
 * - idempotent on out_refund_no (same refund_fee: the same answer, one refund); another refund_fee under
 *   the same number `INVALID_REQUEST`; more than the trade has left `ERROR` (WeChat's "refund business
 *   error"; its exact text is UNVERIFIED); total_fee must be the trade's;
 * - PROCESSING until done: at once, or after `setRefundDelayMs`; then the encrypted refund notify
 *   (`req_info`, AES-256-ECB under MD5(apiKey), `<root>` body, no sign) to the request's notify_url;
 * - `/pay/refundquery` by refund_id > out_refund_no > transaction_id > out_trade_no, `_N` fields,
 *   REFUNDNOTEXIST; orderquery says trade_state=REFUND once a refund exists;
 * - test hooks: `failNextRefund(errCode)` refuses the next refund (default NOTENOUGH);
 *   `closeNextRefund()` accepts it and ends it REFUNDCLOSE.
 */

export const WECHAT_SIM_CLOSE_TOO_EARLY_ERR_CODE = 'INVALID_REQUEST';
export const WECHAT_SIM_DEFAULT_RETRY_DELAYS_MS: readonly number[] = [1000, 2000, 5000, 10000, 30000];
const MAX_BODY_BYTES = 64 * 1024;

export type WechatSimTradeState = 'NOTPAY' | 'SUCCESS' | 'CLOSED';

export interface WechatSimTrade {
  readonly outTradeNo: string;
  readonly tradeType: string;
  readonly body: string;
  /** fen */
  readonly totalFee: number;
  readonly feeType: string;
  readonly notifyUrl: string;
  readonly prepayId: string;
  readonly codeUrl?: string;
  readonly mwebUrl?: string;
  readonly openid?: string;
  readonly attach?: string;
  readonly signType: SimSignType;
  readonly createdAt: Date;
  readonly expiresAt?: Date;
  readonly state: WechatSimTradeState;
  readonly transactionId?: string;
  readonly timeEnd?: string;
}

export interface WechatSimRefund {
  readonly outRefundNo: string;
  readonly refundId: string;
  /** fen */
  readonly refundFee: number;
  readonly notifyUrl?: string;
  readonly createdAt: Date;
  status: 'PROCESSING' | 'SUCCESS' | 'REFUNDCLOSE';
  successTime?: string;
  /** End REFUNDCLOSE instead of SUCCESS (closeNextRefund). */
  readonly closes: boolean;
}

interface TradeRecord extends Omit<WechatSimTrade, 'state' | 'transactionId' | 'timeEnd'> {
  state: WechatSimTradeState;
  transactionId?: string;
  timeEnd?: string;
  refunds: WechatSimRefund[];
  /** The unifiedorder parameters minus nonce_str and sign, to tell a re-submission from a conflict. */
  readonly params: string;
}

export interface WechatNotifyLogEntry {
  readonly outTradeNo: string;
  /** 1-based delivery attempt. */
  readonly attempt: number;
  readonly at: Date;
  readonly outcome: 'acknowledged' | 'rejected' | 'error' | 'dropped';
  readonly httpStatus?: number;
  /** The merchant's reply (first 200 characters). */
  readonly reply?: string;
}

export interface WechatPaySimulatorOptions {
  /** Where the simulator is reachable, e.g. `http://127.0.0.1:3000/sandbox/wechatpay` (code_url is built on it). */
  readonly baseUrl: string;
  readonly appId: string;
  readonly mchId: string;
  readonly apiKey: string;
  /** Delays between notify attempts; one attempt is made at once, then one after each delay. */
  readonly notifyRetryDelaysMs?: readonly number[];
  /** closeorder is refused this long after unifiedorder (WeChat: 5 minutes). */
  readonly minCloseAgeMs?: number;
  readonly now?: () => Date;
}

type Fields = Record<string, string | undefined>;

export class WechatPaySimulator {
  readonly baseUrl: string;
  readonly appId: string;
  readonly mchId: string;
  readonly notifyLog: WechatNotifyLogEntry[] = [];
  readonly #apiKey: string;
  readonly #retryDelays: readonly number[];
  readonly #minCloseAgeMs: number;
  readonly #now: () => Date;
  readonly #trades = new Map<string, TradeRecord>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #inflight = new Set<AbortController>();
  #down = false;
  #latencyMs = 0;
  #dropNotifies = false;
  #closed = false;
  #refundDelayMs = 0;
  readonly #refundFaults: { readonly errCode?: string; readonly close?: boolean }[] = [];
  /** Every refund notify delivery attempt. */
  readonly refundNotifyLog: { readonly outRefundNo: string; readonly attempt: number; readonly outcome: string }[] = [];

  constructor(opts: WechatPaySimulatorOptions) {
    // The sandbox is for tests and demos; it must never stand in for WeChat in production.
    if (process.env['NODE_ENV'] === 'production')
      throw new Error('the WeChat Pay simulator refuses to run with NODE_ENV=production');
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.appId = opts.appId;
    this.mchId = opts.mchId;
    this.#apiKey = opts.apiKey;
    this.#retryDelays = opts.notifyRetryDelaysMs ?? WECHAT_SIM_DEFAULT_RETRY_DELAYS_MS;
    this.#minCloseAgeMs = opts.minCloseAgeMs ?? 5 * 60_000;
    this.#now = opts.now ?? (() => new Date());
  }

  // ---- test hooks -----------------------------------------------------------------------------------

  /** Answer every request with 503 (WeChat unreachable). */
  setDown(down: boolean): void {
    this.#down = down;
  }

  /** Delay every answer by this much. */
  setLatencyMs(ms: number): void {
    this.#latencyMs = Math.max(0, ms);
  }

  /** Lose notifications: attempts are logged as 'dropped' and not sent (the retry schedule goes on). */
  setDropNotifies(drop: boolean): void {
    this.#dropNotifies = drop;
  }

  /** A copy of the simulator's trade, or undefined. */
  trade(outTradeNo: string): WechatSimTrade | undefined {
    const t = this.#trades.get(outTradeNo);
    if (!t) return undefined;
    this.#expire(t);
    const { params: _params, ...copy } = t;
    return { ...copy };
  }

  /**
   * The payer pays: the trade becomes SUCCESS with a transaction_id and time_end, and the notification
   * is sent (first attempt at once, then on the retry schedule). Resolves once the trade is paid;
   * watch `notifyLog` for delivery. Paying a paid trade again changes nothing.
   */
  pay(outTradeNo: string): Promise<void> {
    const t = this.#trades.get(outTradeNo);
    if (!t) return Promise.reject(new Error(`no such trade: ${outTradeNo}`));
    this.#expire(t);
    if (t.state === 'SUCCESS') return Promise.resolve();
    if (t.state !== 'NOTPAY') return Promise.reject(new Error(`trade ${outTradeNo} is ${t.state}`));
    const now = this.#now();
    t.state = 'SUCCESS';
    t.transactionId = `4200${gmt8Compact(now).slice(0, 8)}${randomDigits(16)}`;
    t.timeEnd = gmt8Compact(now);
    this.#deliver(t, 0);
    return Promise.resolve();
  }

  /** Refunds finish this long after they are accepted (0, the default: at once). */
  setRefundDelayMs(ms: number): void {
    this.#refundDelayMs = Math.max(0, ms);
  }

  /** Test hook: the next refund is refused result_code=FAIL with this err_code (nothing refunded). */
  failNextRefund(errCode = 'NOTENOUGH'): void {
    this.#refundFaults.push({ errCode });
  }

  /** Test hook: the next refund is accepted, then ends REFUNDCLOSE (not refunded). */
  closeNextRefund(): void {
    this.#refundFaults.push({ close: true });
  }

  /** Copies of a trade's refunds, oldest first. */
  refundsOf(outTradeNo: string): WechatSimRefund[] {
    return (this.#trades.get(outTradeNo)?.refunds ?? []).map((r) => ({ ...r }));
  }

  /** Stops every timer and in-flight notification. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const c of this.#inflight) c.abort();
    this.#inflight.clear();
  }

  // ---- HTTP -------------------------------------------------------------------------------------------

  /** Request handler; paths are relative to where it is mounted (Express app.use or a bare http server). */
  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    this.#handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('simulator error');
    });
  };

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const body = await readBody(req);
    if (this.#down) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('service unavailable');
      return;
    }
    if (this.#latencyMs > 0) await sleep(this.#latencyMs);
    if (body === undefined) {
      res.writeHead(413, { 'content-type': 'text/plain' }).end('payload too large');
      return;
    }

    if (path === '/secapi/pay/refund') {
      // Only over the mutual-TLS listener, with a certificate the sandbox CA issued (checked in the handshake).
      const socket = req.socket as Partial<TLSSocket>;
      if (socket.encrypted !== true || socket.authorized !== true) {
        return this.#xml(res, {
          return_code: 'FAIL',
          return_msg: '证书错误: this API needs the merchant client certificate',
        });
      }
      if (req.method !== 'POST') return this.#xml(res, { return_code: 'FAIL', return_msg: 'REQUIRE_POST_METHOD' });
      return this.#api('refund', body, res);
    }
    const api = /^\/pay\/(unifiedorder|orderquery|closeorder|refundquery)$/.exec(path)?.[1];
    if (api) {
      if (req.method !== 'POST') return this.#xml(res, { return_code: 'FAIL', return_msg: 'REQUIRE_POST_METHOD' });
      return this.#api(api, body, res);
    }
    const cashier = /^\/cashier\/([^/]+)(?:\/(pay|abandon))?$/.exec(path);
    if (cashier) {
      const outTradeNo = decodeURIComponent(cashier[1] ?? '');
      const action = cashier[2];
      if (!action && req.method === 'GET')
        return this.#cashierPage(outTradeNo, url.searchParams.get('redirect_url'), res);
      if (action && req.method === 'POST') {
        const redirect = new URLSearchParams(body).get('redirect_url');
        return this.#cashierAction(outTradeNo, action, redirect, res);
      }
      res.writeHead(405, { 'content-type': 'text/plain' }).end('method not allowed');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  }

  async #api(api: string, body: string, res: ServerResponse): Promise<void> {
    if (body.trim() === '') return this.#xml(res, { return_code: 'FAIL', return_msg: 'POST_DATA_EMPTY' });
    const req = await simParseXml(body);
    if (!req) return this.#xml(res, { return_code: 'FAIL', return_msg: 'XML_FORMAT_ERROR' });
    const signTypeField = req['sign_type'] ?? 'MD5';
    if (signTypeField !== 'MD5' && signTypeField !== 'HMAC-SHA256') {
      return this.#xml(res, { return_code: 'FAIL', return_msg: 'sign_type参数错误' });
    }
    const signType: SimSignType = signTypeField;
    if (!simVerify(req, this.#apiKey, signType)) return this.#xml(res, { return_code: 'FAIL', return_msg: '签名错误' });
    if (!req['nonce_str']) return this.#xml(res, { return_code: 'FAIL', return_msg: '缺少参数nonce_str' });

    const reply = (fields: Fields): void => {
      const signed: Fields = {
        return_code: 'SUCCESS',
        return_msg: 'OK',
        appid: this.appId,
        mch_id: this.mchId,
        nonce_str: randomBytes(16).toString('hex'),
        ...fields,
      };
      signed['sign'] = simSign(signed, this.#apiKey, signType);
      this.#xml(res, signed);
    };
    const failWith = (errCode: string, errCodeDes: string): void =>
      reply({ result_code: 'FAIL', err_code: errCode, err_code_des: errCodeDes });

    if (req['appid'] !== this.appId || req['mch_id'] !== this.mchId) {
      return failWith('APPID_MCHID_NOT_MATCH', 'appid和mch_id不匹配');
    }
    switch (api) {
      case 'unifiedorder':
        return this.#unifiedOrder(req, signType, reply, failWith);
      case 'orderquery':
        return this.#orderQuery(req, reply, failWith);
      case 'refund':
        return this.#refund(req, reply, failWith);
      case 'refundquery':
        return this.#refundQuery(req, reply, failWith);
      default:
        return this.#closeOrder(req, reply, failWith);
    }
  }

  #unifiedOrder(
    req: Record<string, string>,
    signType: SimSignType,
    reply: (f: Fields) => void,
    failWith: (code: string, des: string) => void,
  ): void {
    const tradeType = req['trade_type'] ?? '';
    const required = ['body', 'out_trade_no', 'total_fee', 'spbill_create_ip', 'notify_url', 'trade_type'];
    if (tradeType === 'NATIVE') required.push('product_id');
    if (tradeType === 'JSAPI') required.push('openid');
    if (tradeType === 'MWEB') required.push('scene_info');
    const missing = required.find((k) => !req[k]);
    if (missing) return failWith('LACK_PARAMS', `缺少参数${missing}`);
    if (!['NATIVE', 'JSAPI', 'MWEB'].includes(tradeType)) return failWith('INVALID_REQUEST', 'trade_type参数错误');
    const outTradeNo = req['out_trade_no'] ?? '';
    if (!/^[0-9A-Za-z_\-|*]{6,32}$/.test(outTradeNo)) return failWith('INVALID_REQUEST', 'out_trade_no参数错误');
    const totalFeeText = req['total_fee'] ?? '';
    if (!/^[1-9]\d{0,10}$/.test(totalFeeText)) return failWith('INVALID_REQUEST', 'total_fee参数错误');
    const feeType = req['fee_type'] || 'CNY';
    if (feeType !== 'CNY') return failWith('INVALID_REQUEST', 'fee_type参数错误');
    const notifyUrl = req['notify_url'] ?? '';
    if (!isAbsoluteUrl(notifyUrl) || notifyUrl.includes('?')) return failWith('INVALID_REQUEST', 'notify_url参数错误');
    if ([...(req['body'] ?? '')].length > 128) return failWith('INVALID_REQUEST', 'body参数长度有误');
    if (tradeType === 'MWEB' && !validSceneInfo(req['scene_info'] ?? ''))
      return failWith('INVALID_REQUEST', 'scene_info参数错误');
    let expiresAt: Date | undefined;
    if (req['time_expire']) {
      expiresAt = parseCompact(req['time_expire']);
      if (!expiresAt) return failWith('INVALID_REQUEST', 'time_expire参数错误');
    }

    const { nonce_str: _n, sign: _s, ...rest } = req;
    const params = JSON.stringify(Object.entries(rest).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const existing = this.#trades.get(outTradeNo);
    if (existing) {
      this.#expire(existing);
      if (existing.state === 'SUCCESS') return failWith('ORDERPAID', '该订单已支付');
      if (existing.state === 'CLOSED') return failWith('ORDERCLOSED', '该订单已关');
      if (existing.params !== params) return failWith('OUT_TRADE_NO_USED', '商户订单号重复');
      return reply(this.#orderAnswer(existing));
    }
    if (expiresAt && expiresAt.getTime() <= this.#now().getTime())
      return failWith('INVALID_REQUEST', 'time_expire时间过短');

    const cashierUrl = `${this.baseUrl}/cashier/${encodeURIComponent(outTradeNo)}`;
    const now = this.#now();
    const trade: TradeRecord = {
      outTradeNo,
      tradeType,
      body: req['body'] ?? '',
      totalFee: Number(totalFeeText),
      feeType,
      notifyUrl,
      prepayId: `wx${gmt8Compact(now)}${randomBytes(12).toString('hex')}`.slice(0, 36),
      ...(tradeType === 'NATIVE' ? { codeUrl: cashierUrl } : {}),
      ...(tradeType === 'MWEB' ? { mwebUrl: cashierUrl } : {}),
      ...(req['openid'] ? { openid: req['openid'] } : {}),
      ...(req['attach'] ? { attach: req['attach'] } : {}),
      signType,
      createdAt: now,
      ...(expiresAt ? { expiresAt } : {}),
      state: 'NOTPAY',
      params,
      refunds: [],
    };
    this.#trades.set(outTradeNo, trade);
    reply(this.#orderAnswer(trade));
  }

  #orderAnswer(t: TradeRecord): Fields {
    return {
      result_code: 'SUCCESS',
      trade_type: t.tradeType,
      prepay_id: t.prepayId,
      code_url: t.codeUrl,
      mweb_url: t.mwebUrl,
    };
  }

  #orderQuery(req: Record<string, string>, reply: (f: Fields) => void, failWith: (c: string, d: string) => void): void {
    let t: TradeRecord | undefined;
    if (req['transaction_id']) {
      t = [...this.#trades.values()].find((x) => x.transactionId === req['transaction_id']);
    } else if (req['out_trade_no']) {
      t = this.#trades.get(req['out_trade_no']);
    } else {
      return failWith('LACK_PARAMS', '缺少参数out_trade_no');
    }
    if (!t) return failWith('ORDERNOTEXIST', '订单不存在');
    this.#expire(t);
    const paid = t.state === 'SUCCESS';
    reply({
      result_code: 'SUCCESS',
      out_trade_no: t.outTradeNo,
      trade_type: t.tradeType,
      trade_state: t.state === 'SUCCESS' && t.refunds.length > 0 ? 'REFUND' : t.state,
      trade_state_desc: t.state === 'SUCCESS' ? '支付成功' : t.state === 'CLOSED' ? '订单已关闭' : '订单未支付',
      total_fee: String(t.totalFee),
      fee_type: t.feeType,
      attach: t.attach,
      openid: paid ? (t.openid ?? simulatedOpenid(t.outTradeNo)) : undefined,
      is_subscribe: paid ? 'N' : undefined,
      bank_type: paid ? 'CFT' : undefined,
      cash_fee: paid ? String(t.totalFee) : undefined,
      cash_fee_type: paid ? 'CNY' : undefined,
      transaction_id: t.transactionId,
      time_end: t.timeEnd,
    });
  }

  #closeOrder(req: Record<string, string>, reply: (f: Fields) => void, failWith: (c: string, d: string) => void): void {
    const outTradeNo = req['out_trade_no'];
    if (!outTradeNo) return failWith('LACK_PARAMS', '缺少参数out_trade_no');
    const t = this.#trades.get(outTradeNo);
    if (!t) return failWith('ORDERNOTEXIST', '订单不存在');
    this.#expire(t);
    if (t.state === 'SUCCESS') return failWith('ORDERPAID', '订单已支付，不能发起关单');
    if (t.state === 'CLOSED') return failWith('ORDERCLOSED', '订单已关闭，无需继续调用');
    if (this.#now().getTime() - t.createdAt.getTime() < this.#minCloseAgeMs) {
      return failWith(WECHAT_SIM_CLOSE_TOO_EARLY_ERR_CODE, '订单生成后不能马上调用关单接口，最短调用时间间隔为5分钟');
    }
    t.state = 'CLOSED';
    reply({ result_code: 'SUCCESS', result_msg: 'OK' });
  }

  // ---- refunds ---------------------------------------------------------------------------------------

  #findTrade(req: Record<string, string>): TradeRecord | undefined {
    if (req['transaction_id']) return [...this.#trades.values()].find((x) => x.transactionId === req['transaction_id']);
    return req['out_trade_no'] ? this.#trades.get(req['out_trade_no']) : undefined;
  }

  #refund(req: Record<string, string>, reply: (f: Fields) => void, failWith: (c: string, d: string) => void): void {
    const missing = ['out_refund_no', 'total_fee', 'refund_fee'].find((k) => !req[k]);
    if (missing) return failWith('PARAM_ERROR', `缺少参数${missing}`);
    const outRefundNo = req['out_refund_no'] ?? '';
    if (!/^[0-9A-Za-z_\-|*@]{1,64}$/.test(outRefundNo)) return failWith('PARAM_ERROR', 'out_refund_no参数错误');
    const totalFee = /^[1-9]\d{0,10}$/.test(req['total_fee'] ?? '') ? Number(req['total_fee']) : NaN;
    const refundFee = /^[1-9]\d{0,10}$/.test(req['refund_fee'] ?? '') ? Number(req['refund_fee']) : NaN;
    if (Number.isNaN(totalFee) || Number.isNaN(refundFee)) return failWith('PARAM_ERROR', '金额参数错误');
    if ((req['refund_fee_type'] || 'CNY') !== 'CNY') return failWith('PARAM_ERROR', 'refund_fee_type参数错误');
    const notifyUrl = req['notify_url'];
    if (notifyUrl !== undefined && (!isAbsoluteUrl(notifyUrl) || notifyUrl.includes('?'))) {
      return failWith('PARAM_ERROR', 'notify_url参数错误');
    }
    if (!req['transaction_id'] && !req['out_trade_no']) return failWith('PARAM_ERROR', '缺少参数out_trade_no');
    const t = this.#findTrade(req);
    if (!t) return failWith(req['transaction_id'] ? 'INVALID_TRANSACTIONID' : 'ORDERNOTEXIST', '订单不存在');
    const answer = (r: WechatSimRefund): void =>
      reply({
        result_code: 'SUCCESS',
        transaction_id: t.transactionId,
        out_trade_no: t.outTradeNo,
        out_refund_no: r.outRefundNo,
        refund_id: r.refundId,
        refund_fee: String(r.refundFee),
        total_fee: String(t.totalFee),
        cash_fee: String(t.totalFee),
        cash_refund_fee: String(r.refundFee),
      });
    const prior = t.refunds.find((r) => r.outRefundNo === outRefundNo);
    if (prior) {
      // "同一退款单号多次请求只退一笔": the same refund, answered again.
      if (prior.refundFee !== refundFee) return failWith('INVALID_REQUEST', '同一退款单号的退款金额不一致');
      return answer(prior);
    }
    const fault = this.#refundFaults.shift();
    if (fault?.errCode) return failWith(fault.errCode, 'injected by the sandbox');
    this.#expire(t);
    if (t.state !== 'SUCCESS') return failWith('ERROR', '订单未支付或已关闭，不能退款');
    if (totalFee !== t.totalFee) return failWith('INVALID_REQUEST', '订单金额与原订单不一致');
    const taken = t.refunds.reduce((sum, r) => (r.status === 'REFUNDCLOSE' ? sum : sum + r.refundFee), 0);
    if (taken + refundFee > t.totalFee) return failWith('ERROR', '退款金额大于订单剩余可退金额');
    const now = this.#now();
    const refund: WechatSimRefund = {
      outRefundNo,
      refundId: `5030${gmt8Compact(now).slice(0, 8)}${randomDigits(17)}`,
      refundFee,
      ...(notifyUrl ? { notifyUrl } : {}),
      createdAt: now,
      status: 'PROCESSING',
      closes: fault?.close === true,
    };
    t.refunds.push(refund);
    if (this.#refundDelayMs === 0) this.#finishRefund(t, refund);
    else this.#schedule(() => this.#finishRefund(t, refund), this.#refundDelayMs);
    answer(refund);
  }

  #finishRefund(t: TradeRecord, r: WechatSimRefund): void {
    if (this.#closed || r.status !== 'PROCESSING') return;
    r.status = r.closes ? 'REFUNDCLOSE' : 'SUCCESS';
    if (r.status === 'SUCCESS') r.successTime = dashed(gmt8Compact(this.#now()));
    if (r.notifyUrl) this.#deliverRefund(t, r, r.notifyUrl, 0);
  }

  #refundQuery(
    req: Record<string, string>,
    reply: (f: Fields) => void,
    failWith: (c: string, d: string) => void,
  ): void {
    let t: TradeRecord | undefined;
    let list: WechatSimRefund[];
    const byRefund = (pick: (r: WechatSimRefund) => boolean): void => {
      for (const trade of this.#trades.values()) {
        const found = trade.refunds.filter(pick);
        if (found.length > 0) {
          t = trade;
          list = found;
          return;
        }
      }
    };
    list = [];
    if (req['refund_id']) byRefund((r) => r.refundId === req['refund_id']);
    else if (req['out_refund_no']) byRefund((r) => r.outRefundNo === req['out_refund_no']);
    else if (req['transaction_id'] || req['out_trade_no']) {
      t = this.#findTrade(req);
      list = t?.refunds ?? [];
    } else return failWith('PARAM_ERROR', '缺少参数out_refund_no');
    if (!t || list.length === 0) return failWith('REFUNDNOTEXIST', '退款订单查询失败');
    const offset = req['offset'] !== undefined ? Number(req['offset']) : 0;
    if (!Number.isInteger(offset) || offset < 0 || (offset > 0 && offset >= list.length)) {
      return failWith('PARAM_ERROR', 'offset参数错误');
    }
    const page = list.slice(offset, offset + 10);
    const fields: Fields = {
      result_code: 'SUCCESS',
      transaction_id: t.transactionId,
      out_trade_no: t.outTradeNo,
      total_fee: String(t.totalFee),
      cash_fee: String(t.totalFee),
      fee_type: 'CNY',
      refund_count: String(page.length),
      ...(req['offset'] !== undefined ? { total_refund_count: String(list.length) } : {}),
    };
    page.forEach((r, n) => {
      fields[`out_refund_no_${n}`] = r.outRefundNo;
      fields[`refund_id_${n}`] = r.refundId;
      fields[`refund_channel_${n}`] = 'ORIGINAL';
      fields[`refund_fee_${n}`] = String(r.refundFee);
      fields[`settlement_refund_fee_${n}`] = String(r.refundFee);
      fields[`refund_status_${n}`] = r.status;
      fields[`refund_account_${n}`] = 'REFUND_SOURCE_UNSETTLED_FUNDS';
      fields[`refund_recv_accout_${n}`] = '支付用户零钱';
      if (r.successTime) fields[`refund_success_time_${n}`] = r.successTime;
    });
    reply(fields);
  }

  /** The refund notify of §2.13: encrypted req_info, no sign; retried until the SUCCESS XML reply. */
  #deliverRefund(t: TradeRecord, r: WechatSimRefund, url: string, index: number): void {
    const attemptOnce = async (): Promise<void> => {
      if (this.#closed) return;
      const attempt = index + 1;
      let outcome: string;
      if (this.#dropNotifies) {
        outcome = 'dropped';
      } else {
        const inner = rootXml({
          transaction_id: t.transactionId,
          out_trade_no: t.outTradeNo,
          refund_id: r.refundId,
          out_refund_no: r.outRefundNo,
          total_fee: String(t.totalFee),
          settlement_total_fee: String(t.totalFee),
          refund_fee: String(r.refundFee),
          settlement_refund_fee: String(r.refundFee),
          refund_status: r.status,
          success_time: r.successTime,
          refund_recv_accout: '支付用户零钱',
          refund_account: 'REFUND_SOURCE_UNSETTLED_FUNDS',
          refund_request_source: 'API',
        });
        const key = Buffer.from(createHash('md5').update(this.#apiKey).digest('hex'), 'ascii');
        const cipher = createCipheriv('aes-256-ecb', key, null);
        const reqInfo = Buffer.concat([cipher.update(inner, 'utf8'), cipher.final()]).toString('base64');
        const body = simXml({
          return_code: 'SUCCESS',
          appid: this.appId,
          mch_id: this.mchId,
          nonce_str: randomBytes(16).toString('hex'),
          req_info: reqInfo,
        });
        try {
          const res = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'text/xml' },
            body,
            signal: AbortSignal.timeout(10_000),
          });
          const parsed = await simParseXml(await res.text());
          outcome = res.status === 200 && parsed?.['return_code'] === 'SUCCESS' ? 'acknowledged' : 'rejected';
        } catch {
          outcome = 'error';
        }
      }
      this.refundNotifyLog.push({ outRefundNo: r.outRefundNo, attempt, outcome });
      const delay = this.#retryDelays[index];
      if (outcome !== 'acknowledged' && delay !== undefined) {
        this.#schedule(() => this.#deliverRefund(t, r, url, index + 1), delay);
      }
    };
    if (index === 0) this.#schedule(() => void attemptOnce(), 0);
    else void attemptOnce();
  }

  async #cashierPage(outTradeNo: string, redirectUrl: string | null, res: ServerResponse): Promise<void> {
    const t = this.#trades.get(outTradeNo);
    if (!t) return this.#html(res, 404, renderResultPage('Not found', 'No such order.'));
    this.#expire(t);
    const qrDataUrl = await QRCode.toDataURL(
      t.codeUrl ?? t.mwebUrl ?? `${this.baseUrl}/cashier/${encodeURIComponent(t.outTradeNo)}`,
    );
    this.#html(
      res,
      200,
      renderCashierPage({
        outTradeNo: t.outTradeNo,
        subject: t.body,
        amount: formatMinor(t.totalFee, t.feeType),
        tradeType: t.tradeType,
        state: t.state,
        refunds: t.refunds.map((r) => ({
          outRefundNo: r.outRefundNo,
          amount: formatMinor(r.refundFee, 'CNY'),
          status: r.status,
        })),
        qrDataUrl,
        ...(redirectUrl && isAbsoluteUrl(redirectUrl) ? { redirectUrl } : {}),
      }),
    );
  }

  async #cashierAction(
    outTradeNo: string,
    action: string,
    redirectUrl: string | null,
    res: ServerResponse,
  ): Promise<void> {
    const t = this.#trades.get(outTradeNo);
    if (!t) return this.#html(res, 404, renderResultPage('Not found', 'No such order.'));
    if (action === 'pay') {
      try {
        await this.pay(outTradeNo);
      } catch {
        return this.#html(
          res,
          409,
          renderResultPage('Payment refused', `This order is ${t.state} and cannot be paid.`),
        );
      }
    }
    // Abandon: the payer leaves the cashier; the trade stays NOTPAY, as at WeChat.
    if (redirectUrl && isAbsoluteUrl(redirectUrl)) {
      res.writeHead(303, { location: redirectUrl }).end();
      return;
    }
    this.#html(
      res,
      200,
      action === 'pay'
        ? renderResultPage('Payment complete', 'You paid. The merchant is being notified.')
        : renderResultPage('Payment abandoned', 'You left the cashier without paying.'),
    );
  }

  // ---- notifications ---------------------------------------------------------------------------------

  #deliver(t: TradeRecord, index: number): void {
    if (this.#closed) return;
    const run = (): void => {
      void this.#attempt(t, index + 1).then((acknowledged) => {
        const delay = this.#retryDelays[index];
        if (!acknowledged && delay !== undefined) this.#deliver(t, index + 1);
      });
    };
    if (index === 0) {
      this.#schedule(run, 0);
    } else {
      this.#schedule(run, this.#retryDelays[index - 1] ?? 0);
    }
  }

  #schedule(fn: () => void, ms: number): void {
    if (this.#closed) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    timer.unref();
    this.#timers.add(timer);
  }

  /** One delivery attempt; true when the merchant answered the SUCCESS XML. */
  async #attempt(t: TradeRecord, attempt: number): Promise<boolean> {
    if (this.#closed) return true;
    const log = (entry: Omit<WechatNotifyLogEntry, 'outTradeNo' | 'attempt' | 'at'>): void => {
      this.notifyLog.push({ outTradeNo: t.outTradeNo, attempt, at: this.#now(), ...entry });
    };
    if (this.#dropNotifies) {
      log({ outcome: 'dropped' });
      return false;
    }
    const fields: Fields = {
      return_code: 'SUCCESS',
      appid: this.appId,
      mch_id: this.mchId,
      nonce_str: randomBytes(16).toString('hex'),
      sign_type: t.signType,
      result_code: 'SUCCESS',
      openid: t.openid ?? simulatedOpenid(t.outTradeNo),
      is_subscribe: 'N',
      trade_type: t.tradeType,
      bank_type: 'CFT',
      total_fee: String(t.totalFee),
      fee_type: t.feeType,
      cash_fee: String(t.totalFee),
      transaction_id: t.transactionId,
      out_trade_no: t.outTradeNo,
      attach: t.attach,
      time_end: t.timeEnd,
    };
    fields['sign'] = simSign(fields, this.#apiKey, t.signType);
    const abort = new AbortController();
    this.#inflight.add(abort);
    const timeout = setTimeout(() => abort.abort(), 10_000);
    timeout.unref();
    try {
      const res = await fetch(t.notifyUrl, {
        method: 'POST',
        headers: { 'content-type': 'text/xml' },
        body: simXml(fields),
        signal: abort.signal,
      });
      const text = await res.text();
      const parsed = await simParseXml(text);
      const acknowledged = res.status === 200 && parsed?.['return_code'] === 'SUCCESS';
      log({ outcome: acknowledged ? 'acknowledged' : 'rejected', httpStatus: res.status, reply: text.slice(0, 200) });
      return acknowledged;
    } catch {
      if (this.#closed) return true;
      log({ outcome: 'error' });
      return false;
    } finally {
      clearTimeout(timeout);
      this.#inflight.delete(abort);
    }
  }

  // ---- helpers ---------------------------------------------------------------------------------------

  /** An unpaid trade past its time_expire is closed, as WeChat does. */
  #expire(t: TradeRecord): void {
    if (t.state === 'NOTPAY' && t.expiresAt && this.#now().getTime() > t.expiresAt.getTime()) t.state = 'CLOSED';
  }

  #xml(res: ServerResponse, fields: Fields): void {
    res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' }).end(simXml(fields));
  }

  #html(res: ServerResponse, status: number, html: string): void {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(html);
  }
}

export interface WechatPaySandboxOptions {
  /** Where the simulator will be mounted, e.g. `http://127.0.0.1:3000/sandbox/wechatpay`. */
  readonly baseUrl: string;
  readonly notifyRetryDelaysMs?: number[];
  readonly minCloseAgeMs?: number;
  readonly signType?: SimSignType;
}

/**
 * A simulator with fresh credentials, and the instance config `pays.myWechatPay` pointing at it
 * (`appId` = 'wx' + 16 hex, random 10-digit `mchId`, random 32-character `apiKey`).
 */
export function createWechatPaySandbox(opts: WechatPaySandboxOptions): {
  simulator: WechatPaySimulator;
  instance: ChannelInstanceConfig;
} {
  const baseUrl = opts.baseUrl.replace(/\/+$/, '');
  const appId = `wx${randomBytes(8).toString('hex')}`;
  const mchId = `1${randomDigits(9)}`;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const apiKey = Array.from({ length: 32 }, () => alphabet[randomInt(alphabet.length)]).join('');
  const simulator = new WechatPaySimulator({
    baseUrl,
    appId,
    mchId,
    apiKey,
    ...(opts.notifyRetryDelaysMs ? { notifyRetryDelaysMs: opts.notifyRetryDelaysMs } : {}),
    ...(opts.minCloseAgeMs !== undefined ? { minCloseAgeMs: opts.minCloseAgeMs } : {}),
  });
  const instance: ChannelInstanceConfig = {
    fullName: 'pays.myWechatPay',
    type: 'pays.WechatPayType',
    title: 'WeChat Pay (sandbox)',
    isDefault: true,
    sandbox: true,
    config: {
      appId,
      mchId,
      apiKey,
      baseUrl,
      ...(opts.signType ? { signType: opts.signType } : {}),
      // The channel keeps the same close rule as the simulator it talks to.
      ...(opts.minCloseAgeMs !== undefined ? { minCloseAgeSeconds: Math.floor(opts.minCloseAgeMs / 1000) } : {}),
    },
  };
  return { simulator, instance };
}

export interface WechatPaySecapiListener {
  /** `https://127.0.0.1:<port>`: where the channel sends /secapi/ calls. */
  readonly url: string;
  readonly server: HttpsServer;
  close(): void;
}

/**
 * The simulator plus its mutual-TLS listener for `/secapi/` (PROTOCOLS.md §2.8): an https server on a
 * loopback port with the sandbox server certificate, that demands a client certificate issued by the
 * sandbox CA (anything else fails the TLS handshake). The instance config gets the client certificate
 * the sandbox "issued" (`pfx` base64 PKCS#12, `pfxPassword`), `caCert` (to trust the sandbox server) and
 * `secapiBaseUrl` (the listener). All of it is sandbox-only fixture material (wechatpay.sandbox-certs.ts).
 */
export async function startWechatPaySandbox(opts: WechatPaySandboxOptions & { readonly tlsPort?: number }): Promise<{
  simulator: WechatPaySimulator;
  instance: ChannelInstanceConfig;
  secapi: WechatPaySecapiListener;
}> {
  const { simulator, instance } = createWechatPaySandbox(opts);
  const server = createHttpsServer(
    {
      cert: WECHAT_SANDBOX_SERVER_CERT_PEM,
      key: WECHAT_SANDBOX_SERVER_KEY_PEM,
      ca: WECHAT_SANDBOX_CA_PEM,
      requestCert: true,
      rejectUnauthorized: true,
    },
    simulator.listener,
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.tlsPort ?? 0, '127.0.0.1', () => resolve());
  });
  server.unref();
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    simulator,
    instance: {
      ...instance,
      config: {
        ...instance.config,
        pfx: WECHAT_SANDBOX_CLIENT_PFX_BASE64,
        pfxPassword: WECHAT_SANDBOX_CLIENT_PFX_PASSWORD,
        caCert: WECHAT_SANDBOX_CA_PEM,
        secapiBaseUrl: url,
      },
    },
    secapi: {
      url,
      server,
      close() {
        server.closeAllConnections();
        server.close();
      },
    },
  };
}

function rootXml(fields: Readonly<Record<string, string | undefined>>): string {
  const parts = Object.entries(fields)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `<${k}><![CDATA[${v}]]></${k}>`);
  return `<root>${parts.join('')}</root>`;
}

/** `yyyyMMddHHmmss` → `yyyy-MM-dd HH:mm:ss`. */
function dashed(compact: string): string {
  return `${compact.slice(0, 4)}-${compact.slice(4, 6)}-${compact.slice(6, 8)} ${compact.slice(8, 10)}:${compact.slice(10, 12)}:${compact.slice(12, 14)}`;
}

function randomDigits(n: number): string {
  return Array.from({ length: n }, () => String(randomInt(10))).join('');
}

function simulatedOpenid(outTradeNo: string): string {
  return `oSandbox${Buffer.from(outTradeNo).toString('hex').slice(0, 20)}`;
}

function isAbsoluteUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

function validSceneInfo(text: string): boolean {
  try {
    const v: unknown = JSON.parse(text);
    const h5 = (v as { h5_info?: { type?: unknown; wap_url?: unknown } } | null)?.h5_info;
    return h5?.type === 'Wap' && typeof h5.wap_url === 'string';
  } catch {
    return false;
  }
}

function parseCompact(text: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h - 8, mi, s));
  return gmt8Compact(date) === text ? date : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** The body as UTF-8 text; undefined when it exceeds MAX_BODY_BYTES. */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  // Mounted in an app whose body parsers ran first (Nest parses urlencoded forms): use what they read.
  const pre: unknown = (req as IncomingMessage & { body?: unknown }).body;
  if (req.readableEnded) {
    if (typeof pre === 'string') return Promise.resolve(pre);
    if (Buffer.isBuffer(pre)) return Promise.resolve(pre.toString('utf8'));
    if (pre !== null && typeof pre === 'object') {
      const entries = Object.entries(pre).filter((e): e is [string, string] => typeof e[1] === 'string');
      return Promise.resolve(new URLSearchParams(entries).toString());
    }
    return Promise.resolve('');
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
