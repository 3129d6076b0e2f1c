import {
  createPrivateKey,
  createPublicKey,
  createSign,
  createVerify,
  generateKeyPairSync,
  randomInt,
  randomUUID,
  type KeyObject,
} from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import QRCode from 'qrcode';
import type { ChannelInstanceConfig } from '#channels';

/**
 * A loopback simulator of the Alipay OpenAPI v2 gateway and its cashier (PROTOCOLS.md §1.11), for tests
 * and demo mode. It deliberately shares no code with the client in libs/channels (its signing and
 * parsing are written again here), so that a bug on one side is not mirrored on the other.
 *
 * Routes, relative to where the listener is mounted:
 *   POST /gateway.do                 precreate, query, close, cancel (query + form-body params merged),
 *                                    and the browser form submission of page.pay / wap.pay
 *   GET  /gateway.do?…               page.pay / wap.pay in GET mode
 *   GET  /cashier/<out_trade_no>     the cashier page (opening it = scanning the QR)
 *   POST /cashier/<no>/pay           the buyer pays
 *   POST /cashier/<no>/abandon       the buyer walks away (the trade keeps waiting until it times out)
 *
 * Refunds (PROTOCOLS-REFUNDS-BILLS.md §1.12, §4): alipay.trade.refund is idempotent on out_request_no
 * (a repeat with the same amount answers fund_change=N with the same totals; another amount
 * ACQ.DISCORDANT_REPEAT_REQUEST), refuses more than the trade has left with ACQ.REFUND_AMT_NOT_EQUAL_TOTAL,
 * finishes at once (fund_change=Y) or after `setRefundDelayMs` (fund_change=N, REFUND_PROCESSING in the
 * query meanwhile; REFUND_PROCESSING is what async-refund products answer), and then notifies the
 * trade's notify_url (cumulative refund_fee, gmt_refund with milliseconds, out_biz_no; TRADE_CLOSED with
 * gmt_close once fully refunded, unless `setNotifyOnFullRefund(false)`). `failNextRefund` refuses the
 * next refund with a definite sub_code (test hook).
 */

export type AlipaySimTradeStatus = 'WAIT_BUYER_PAY' | 'TRADE_SUCCESS' | 'TRADE_CLOSED' | 'TRADE_FINISHED';

export interface AlipaySimRefund {
  readonly outRequestNo: string;
  /** As received, e.g. "5.00". */
  readonly refundAmount: string;
  readonly amountFen: bigint;
  readonly reason: string | undefined;
  readonly requestedAt: Date;
  status: 'REFUND_PROCESSING' | 'REFUND_SUCCESS';
  finishedAt: Date | undefined;
}

export interface AlipaySimTrade {
  readonly outTradeNo: string;
  readonly method: string;
  readonly productCode: string | undefined;
  readonly subject: string;
  readonly body: string | undefined;
  /** As received, e.g. "88.88". */
  readonly totalAmount: string;
  /** totalAmount in fen; used for every comparison (never a float). */
  readonly totalFen: bigint;
  readonly notifyUrl: string | undefined;
  readonly returnUrl: string | undefined;
  readonly quitUrl: string | undefined;
  readonly passbackParams: string | undefined;
  readonly createdAt: Date;
  readonly expiresAt: Date | undefined;
  /** Precreate trades exist at Alipay only once scanned (§1.7); page/wap trades once the form is posted. */
  scanned: boolean;
  status: AlipaySimTradeStatus;
  tradeNo: string | undefined;
  gmtPayment: Date | undefined;
  gmtClose: Date | undefined;
  abandoned: boolean;
  buyerId: string | undefined;
  /** Refunds in the order they were asked for (pending ones count against what is refundable). */
  refunds: AlipaySimRefund[];
}

export interface AlipayNotifyAttempt {
  readonly outTradeNo: string;
  readonly notifyId: string;
  readonly attempt: number;
  readonly at: Date;
  readonly url: string;
  readonly tradeStatus: string;
  /** HTTP status of the reply, when one came. */
  readonly status?: number;
  /** The reply body (first 200 characters), when one came. */
  readonly reply?: string;
  readonly error?: string;
  readonly acknowledged: boolean;
}

export interface AlipaySimulatorOptions {
  /** Public URL where the listener is mounted, e.g. http://127.0.0.1:3000/sandbox/alipay (no trailing slash). */
  readonly baseUrl: string;
  readonly appId: string;
  /** The app's public key: requests are verified with it. */
  readonly appPublicKey: string | KeyObject;
  /** The simulator's own ("Alipay's") private key: responses and notifies are signed with it. */
  readonly alipayPrivateKey: string | KeyObject;
  readonly sellerId?: string;
  /** Delays between notify deliveries; default [1000, 2000, 5000, 10000, 30000] (scaled down from §1.9). */
  readonly notifyRetryDelaysMs?: readonly number[];
  readonly now?: () => Date;
}

const DEFAULT_RETRY_DELAYS_MS = [1000, 2000, 5000, 10000, 30000];
const MAX_BODY_BYTES = 1 << 20;
const NOTIFY_TIMEOUT_MS = 10_000;
const JSON_TYPE = 'application/json;charset=utf-8';
const HTML_TYPE = 'text/html; charset=utf-8';

const METHOD = {
  precreate: 'alipay.trade.precreate',
  pagePay: 'alipay.trade.page.pay',
  wapPay: 'alipay.trade.wap.pay',
  query: 'alipay.trade.query',
  close: 'alipay.trade.close',
  cancel: 'alipay.trade.cancel',
  refund: 'alipay.trade.refund',
  refundQuery: 'alipay.trade.fastpay.refund.query',
} as const;

const PRODUCT_CODE: Readonly<Record<string, string>> = {
  [METHOD.pagePay]: 'FAST_INSTANT_TRADE_PAY',
  [METHOD.wapPay]: 'QUICK_WAP_WAY',
};

type Node = Record<string, string>;

/** A gateway failure, answered as `{code, msg, sub_code, sub_msg}` (§1.8, §1.10). */
class GatewayFailure extends Error {
  constructor(
    readonly code: '20000' | '40001' | '40002' | '40004',
    readonly subCode: string,
    readonly subMsg: string,
  ) {
    super(subMsg);
  }

  get msg(): string {
    switch (this.code) {
      case '20000':
        return 'Service Currently Unavailable';
      case '40001':
        return 'Missing Required Arguments';
      case '40002':
        return 'Invalid Arguments';
      case '40004':
        return 'Business Failed';
    }
  }
}

const bad = (subCode: string, subMsg: string) => new GatewayFailure('40004', subCode, subMsg);

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;',
  );
}

/** `yyyy-MM-dd HH:mm:ss` in GMT+8. */
function gmt8(date: Date): string {
  return new Date(date.getTime() + 8 * 3600_000).toISOString().slice(0, 19).replace('T', ' ');
}

/** Parses `yyyy-MM-dd HH:mm[:ss]` (GMT+8); undefined if malformed. */
function parseGmt8(text: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2})(?::(\d{2}))?$/.exec(text);
  if (!m) return undefined;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? '00'}+08:00`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Parses a yuan amount as Alipay does: up to 2 decimals, within [0.01, 100000000]; fen as bigint. */
function parseYuan(text: string): bigint | undefined {
  const m = /^(0|[1-9]\d{0,8})(?:\.(\d{1,2}))?$/.exec(text);
  if (!m) return undefined;
  const fen = BigInt(m[1] ?? '0') * 100n + BigInt((m[2] ?? '').padEnd(2, '0'));
  return fen >= 1n && fen <= 10_000_000_000n ? fen : undefined;
}

function fenToYuan(fen: bigint): string {
  const s = fen.toString().padStart(3, '0');
  return `${s.slice(0, -2)}.${s.slice(-2)}`;
}

/** `timeout_express` (`90m`, `2h`, `1d`, `1c`) in milliseconds from `from`. */
function expiryOf(timeoutExpress: string, from: Date): Date | undefined {
  const m = /^([1-9]\d{0,4})([mhd])$/.exec(timeoutExpress);
  if (timeoutExpress === '1c') {
    const local = new Date(from.getTime() + 8 * 3600_000);
    const nextMidnight = Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate() + 1) - 8 * 3600_000;
    return new Date(nextMidnight);
  }
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] === 'm' ? 60_000 : m[2] === 'h' ? 3600_000 : 86_400_000;
  if (n * unit > 15 * 86_400_000) return undefined;
  return new Date(from.getTime() + n * unit);
}

function sortedContent(params: Readonly<Record<string, string>>, exclude: readonly string[]): string {
  return Object.keys(params)
    .filter((k) => !exclude.includes(k) && params[k] !== '')
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => `${k}=${params[k] as string}`)
    .join('&');
}

/** JSON as Alipay writes it: `/` escaped as `\/` (so clients must verify the raw bytes). */
function alipayJson(node: Readonly<Record<string, string>>): string {
  return JSON.stringify(node).replace(/\//g, '\\/');
}

function keyOf(key: string | KeyObject, kind: 'private' | 'public'): KeyObject {
  if (typeof key !== 'string') return key;
  const text = key.trim();
  if (text.startsWith('-----')) return kind === 'private' ? createPrivateKey(text) : createPublicKey(text);
  const der = Buffer.from(text.replace(/\s+/g, ''), 'base64');
  if (kind === 'public') return createPublicKey({ key: der, format: 'der', type: 'spki' });
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs1' });
  }
}

function digits(n: number): string {
  let s = '';
  for (let i = 0; i < n; i += 1) s += randomInt(0, 10).toString();
  return s;
}

export class AlipaySimulator {
  readonly baseUrl: string;
  readonly appId: string;
  readonly sellerId: string;
  /** Every notify delivery attempt, in order, with the reply it got. */
  readonly notifyLog: AlipayNotifyAttempt[] = [];
  /** Every signature-checked gateway call (test hook: e.g. that no trade is closed twice). */
  readonly callLog: { readonly method: string; readonly outTradeNo: string | undefined; readonly at: Date }[] = [];
  /** Bound request listener; mount it anywhere (Express `app.use(prefix, listener)` or `http.createServer`). */
  readonly listener: (req: IncomingMessage, res: ServerResponse) => void;

  readonly #appPublicKey: KeyObject;
  readonly #privateKey: KeyObject;
  readonly #retryDelays: readonly number[];
  readonly #now: () => Date;
  readonly #trades = new Map<string, AlipaySimTrade>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #injected = new Map<string, GatewayFailure[]>();
  #down = false;
  #latencyMs = 0;
  #dropNotifies = false;
  #closed = false;
  #refundDelayMs = 0;
  #notifyOnFullRefund = true;

  constructor(options: AlipaySimulatorOptions) {
    if (process.env['NODE_ENV'] === 'production') {
      throw new Error('the Alipay sandbox never runs in production (NODE_ENV=production)');
    }
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.appId = options.appId;
    this.sellerId = options.sellerId ?? `2088${digits(12)}`;
    this.#appPublicKey = keyOf(options.appPublicKey, 'public');
    this.#privateKey = keyOf(options.alipayPrivateKey, 'private');
    this.#retryDelays = options.notifyRetryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    this.#now = options.now ?? (() => new Date());
    this.listener = (req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        }
        res.end(`simulator error: ${err instanceof Error ? err.message : String(err)}`);
      });
    };
  }

  // ---------------------------------------------------------------- test hooks

  /** The buyer scans the QR of a precreated trade: from now on it exists for query/close. */
  scan(outTradeNo: string): void {
    const trade = this.#trades.get(outTradeNo);
    if (!trade) throw new Error(`no trade ${outTradeNo}`);
    this.#expire(trade);
    if (!trade.scanned && trade.status === 'WAIT_BUYER_PAY') {
      trade.scanned = true;
      trade.tradeNo ??= this.#newTradeNo();
    }
  }

  /** The buyer pays (the cashier's Pay button): TRADE_SUCCESS, then the notify (first attempt awaited). */
  async pay(outTradeNo: string): Promise<void> {
    const trade = this.#trades.get(outTradeNo);
    if (!trade) throw new Error(`no trade ${outTradeNo}`);
    this.scan(outTradeNo);
    if (trade.status !== 'WAIT_BUYER_PAY') throw new Error(`trade ${outTradeNo} is ${trade.status}, not payable`);
    trade.status = 'TRADE_SUCCESS';
    trade.gmtPayment = this.#now();
    trade.buyerId = `2088${digits(12)}`;
    if (!this.#dropNotifies) await this.#notify(trade);
  }

  /** A copy of a trade's state (including an unscanned precreate), or undefined. */
  trade(outTradeNo: string): Readonly<AlipaySimTrade> | undefined {
    const trade = this.#trades.get(outTradeNo);
    if (!trade) return undefined;
    this.#expire(trade);
    return { ...trade, refunds: trade.refunds.map((r) => ({ ...r })) };
  }

  /** Refunds finish this long after they are accepted (0, the default: at once, fund_change=Y). */
  setRefundDelayMs(ms: number): void {
    this.#refundDelayMs = Math.max(0, ms);
  }

  /** Test hook: the next alipay.trade.refund is refused with this definite sub_code (code 40004). */
  failNextRefund(subCode = 'ACQ.SELLER_BALANCE_NOT_ENOUGH', subMsg = '卖家余额不足'): void {
    this.failNext(METHOD.refund, '40004', subCode, subMsg);
  }

  /** Whether the TRADE_CLOSED notify of a full refund is sent (the sources conflict, §1.12); default true. */
  setNotifyOnFullRefund(send: boolean): void {
    this.#notifyOnFullRefund = send;
  }

  /** While down, every gateway call is answered 503. */
  setDown(down: boolean): void {
    this.#down = down;
  }

  /** Delay before each gateway answer. */
  setLatencyMs(ms: number): void {
    this.#latencyMs = ms;
  }

  /** While set, pay() sends no notify (a lost notification; only query finds the payment). */
  setDropNotifies(drop: boolean): void {
    this.#dropNotifies = drop;
  }

  /** The next call of `method` fails with this code (e.g. '20000' / 'ACQ.SYSTEM_ERROR'); stackable. */
  failNext(method: string, code: '20000' | '40004', subCode: string, subMsg = 'injected failure'): void {
    const queue = this.#injected.get(method) ?? [];
    queue.push(new GatewayFailure(code, subCode, subMsg));
    this.#injected.set(method, queue);
  }

  /** Resolves once no notify delivery is running (scheduled retries are not waited for). */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  /** Stops every scheduled notify retry; the simulator sends nothing more. */
  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  // ---------------------------------------------------------------- HTTP

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = (req.method ?? 'GET').toUpperCase();

    if (path === '/gateway.do') {
      if (method !== 'GET' && method !== 'POST') return this.#text(res, 405, 'method not allowed');
      const bodyParams = method === 'POST' ? await this.#readForm(req) : {};
      if (this.#latencyMs > 0) await new Promise((r) => setTimeout(r, this.#latencyMs));
      if (this.#down) return this.#text(res, 503, 'Service Unavailable');
      const params: Record<string, string> = Object.fromEntries(url.searchParams);
      for (const [k, v] of Object.entries(bodyParams)) params[k] = v;
      return await this.#gateway(params, res);
    }

    const cashier = /^\/cashier\/([^/]+)(?:\/(pay|abandon))?$/.exec(path);
    if (cashier) {
      const outTradeNo = decodeURIComponent(cashier[1] ?? '');
      const action = cashier[2];
      if (!action && method === 'GET') return this.#cashierPage(res, outTradeNo);
      if (action && method === 'POST') {
        await this.#readForm(req);
        return action === 'pay' ? this.#cashierPay(res, outTradeNo) : this.#cashierAbandon(res, outTradeNo);
      }
      return this.#text(res, 405, 'method not allowed');
    }
    return this.#text(res, 404, 'not found');
  }

  /**
   * Reads an urlencoded body. When an Express body parser got there first (the stream is consumed), its
   * result is used instead: a raw Buffer/string, or the parsed object of express.urlencoded.
   */
  async #readForm(req: IncomingMessage): Promise<Record<string, string>> {
    const parsed = (req as IncomingMessage & { body?: unknown }).body;
    if (req.readableEnded || (req as unknown as { _body?: boolean })._body === true) {
      if (Buffer.isBuffer(parsed) || typeof parsed === 'string')
        return Object.fromEntries(new URLSearchParams(parsed.toString()));
      if (parsed && typeof parsed === 'object') {
        return Object.fromEntries(
          Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'),
        );
      }
      return {};
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > MAX_BODY_BYTES) throw new Error('body too large');
      chunks.push(b);
    }
    return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
  }

  #text(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(body);
  }

  #html(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'content-type': HTML_TYPE });
    res.end(body);
  }

  /** `{"<key>":<inner>,"sign":"…"}`, signed over the exact inner bytes emitted (§1.11). */
  #respond(res: ServerResponse, responseKey: string, node: Node, signed = true): void {
    const inner = alipayJson(node);
    const body = signed ? `{"${responseKey}":${inner},"sign":"${this.#sign(inner)}"}` : `{"${responseKey}":${inner}}`;
    res.writeHead(200, { 'content-type': JSON_TYPE });
    res.end(body);
  }

  #sign(text: string): string {
    return createSign('RSA-SHA256').update(text, 'utf8').sign(this.#privateKey, 'base64');
  }

  // ---------------------------------------------------------------- gateway

  async #gateway(params: Record<string, string>, res: ServerResponse): Promise<void> {
    const method = params['method'];
    const isPage = method === METHOD.pagePay || method === METHOD.wapPay;
    const responseKey = method && !isPage ? `${method.replace(/\./g, '_')}_response` : 'error_response';
    try {
      this.#checkCommon(params);
      const m = method as string;
      const injected = this.#injected.get(m)?.shift();
      if (injected) throw injected;
      const biz = this.#bizOf(params);
      const outTradeNo = typeof biz['out_trade_no'] === 'string' ? biz['out_trade_no'] : undefined;
      this.callLog.push({ method: m, outTradeNo, at: this.#now() });
      switch (m) {
        case METHOD.precreate:
          return this.#respond(res, responseKey, this.#precreate(params, biz));
        case METHOD.query:
          return this.#respond(res, responseKey, this.#query(biz));
        case METHOD.close:
          return this.#respond(res, responseKey, this.#close(biz));
        case METHOD.cancel:
          return this.#respond(res, responseKey, this.#cancel(biz));
        case METHOD.refund:
          return this.#respond(res, responseKey, this.#refund(biz));
        case METHOD.refundQuery:
          return this.#respond(res, responseKey, this.#refundQuery(biz));
        case METHOD.pagePay:
        case METHOD.wapPay: {
          const trade = this.#pagePay(m, params, biz);
          return await this.#renderCashier(res, trade);
        }
        default:
          // Checked in #checkCommon; unreachable.
          throw new GatewayFailure('40002', 'isv.invalid-method', 'unsupported method');
      }
    } catch (err) {
      if (!(err instanceof GatewayFailure)) throw err;
      const node: Node = { code: err.code, msg: err.msg, sub_code: err.subCode, sub_msg: err.subMsg };
      if (isPage) {
        return this.#html(
          res,
          400,
          page(
            'Alipay sandbox: request refused',
            `<p>${escapeHtml(`${err.code} ${err.subCode}`)}</p><p>${escapeHtml(err.subMsg)}</p>`,
          ),
        );
      }
      // Answers without a usable method or app come unsigned under error_response, as Alipay does.
      const known = responseKey !== 'error_response' && params['app_id'] === this.appId;
      return this.#respond(res, known ? responseKey : 'error_response', node, known);
    }
  }

  #checkCommon(params: Record<string, string>): void {
    const method = params['method'];
    if (!method) throw new GatewayFailure('40001', 'isv.missing-method', '缺少方法名参数');
    if (!Object.values(METHOD).includes(method as (typeof METHOD)[keyof typeof METHOD])) {
      throw new GatewayFailure('40002', 'isv.invalid-method', '不存在的方法名');
    }
    if (!params['app_id']) throw new GatewayFailure('40001', 'isv.missing-app-id', '缺少AppID参数');
    if (params['app_id'] !== this.appId) throw new GatewayFailure('40002', 'isv.invalid-app-id', '无效的AppID参数');
    if (!params['sign']) throw new GatewayFailure('40001', 'isv.missing-signature', '缺少签名参数');
    if (!params['sign_type']) throw new GatewayFailure('40001', 'isv.missing-signature-type', '缺少签名类型');
    if (params['sign_type'] !== 'RSA2') {
      throw new GatewayFailure('40002', 'isv.invalid-signature-type', '无效签名类型');
    }
    const timestamp = params['timestamp'];
    if (!timestamp) throw new GatewayFailure('40001', 'isv.missing-timestamp', '缺少时间戳参数');
    if (!/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(timestamp) || !parseGmt8(timestamp)) {
      throw new GatewayFailure('40002', 'isv.invalid-timestamp', '非法的时间戳参数');
    }
    if (!params['version']) throw new GatewayFailure('40001', 'isv.missing-version', '缺少版本参数');
    if (params['version'] !== '1.0') throw new GatewayFailure('40002', 'isv.invalid-parameter', '版本号错误');
    const charset = params['charset'];
    if (charset && charset.toLowerCase() !== 'utf-8') {
      throw new GatewayFailure('40002', 'isv.invalid-charset', '字符集错误');
    }
    const content = sortedContent(params, ['sign']);
    const verified = createVerify('RSA-SHA256')
      .update(content, 'utf8')
      .verify(this.#appPublicKey, params['sign'] ?? '', 'base64');
    if (!verified) {
      throw new GatewayFailure(
        '40002',
        'isv.invalid-signature',
        `验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：${content.replace(/&/g, '&amp;')}`,
      );
    }
  }

  #bizOf(params: Record<string, string>): Record<string, unknown> {
    const text = params['biz_content'];
    if (!text) throw new GatewayFailure('40001', 'isv.missing-biz-content', '缺少biz_content参数');
    let biz: unknown;
    try {
      biz = JSON.parse(text);
    } catch {
      throw bad('ACQ.INVALID_PARAMETER', 'biz_content is not JSON');
    }
    if (!biz || typeof biz !== 'object' || Array.isArray(biz))
      throw bad('ACQ.INVALID_PARAMETER', 'biz_content is not an object');
    return biz as Record<string, unknown>;
  }

  /** Validates the fields every trade-creating call shares and builds the trade (not stored yet). */
  #newTrade(method: string, params: Record<string, string>, biz: Record<string, unknown>): AlipaySimTrade {
    const text = (k: string): string | undefined => {
      const v = biz[k];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'string') throw bad('ACQ.INVALID_PARAMETER', `${k} must be a string`);
      return v;
    };
    const outTradeNo = text('out_trade_no');
    if (!outTradeNo || !/^[A-Za-z0-9_-]{1,64}$/.test(outTradeNo)) {
      throw bad('ACQ.INVALID_PARAMETER', 'out_trade_no is missing or malformed');
    }
    const totalAmount = text('total_amount');
    const totalFen = totalAmount === undefined ? undefined : parseYuan(totalAmount);
    if (totalAmount === undefined || totalFen === undefined) {
      throw bad('ACQ.INVALID_PARAMETER', 'total_amount must be yuan with at most 2 decimals, 0.01 to 100000000');
    }
    const subject = text('subject');
    if (!subject || subject.length > 256) throw bad('ACQ.INVALID_PARAMETER', 'subject is missing or too long');
    const productCode = text('product_code');
    const expected = PRODUCT_CODE[method];
    if (expected !== undefined && productCode !== expected) {
      throw bad('ACQ.INVALID_PARAMETER', `product_code must be ${expected}`);
    }
    const now = this.#now();
    let expiresAt: Date | undefined;
    const timeoutExpress = text('timeout_express');
    if (timeoutExpress !== undefined) {
      expiresAt = expiryOf(timeoutExpress, now);
      if (!expiresAt) throw bad('ACQ.INVALID_PARAMETER', 'timeout_express is malformed');
    }
    const timeExpire = text('time_expire');
    if (timeExpire !== undefined) {
      const at = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?$/.test(timeExpire) ? parseGmt8(timeExpire) : undefined;
      if (!at) throw bad('ACQ.INVALID_PARAMETER', 'time_expire must be yyyy-MM-dd HH:mm');
      if (!expiresAt || at < expiresAt) expiresAt = at;
    }
    if (expiresAt && expiresAt.getTime() <= now.getTime())
      throw bad('ACQ.INVALID_PARAMETER', 'the trade has already expired');
    return {
      outTradeNo,
      method,
      productCode,
      subject,
      body: text('body'),
      totalAmount,
      totalFen,
      notifyUrl: params['notify_url'] || undefined,
      returnUrl: params['return_url'] || undefined,
      quitUrl: text('quit_url'),
      passbackParams: text('passback_params'),
      createdAt: now,
      expiresAt,
      scanned: false,
      status: 'WAIT_BUYER_PAY',
      tradeNo: undefined,
      gmtPayment: undefined,
      gmtClose: undefined,
      abandoned: false,
      buyerId: undefined,
      refunds: [],
    };
  }

  /** An out_trade_no seen again: same amount and still waiting → the same trade; otherwise refused. */
  #existing(candidate: AlipaySimTrade): AlipaySimTrade | undefined {
    const prior = this.#trades.get(candidate.outTradeNo);
    if (!prior) return undefined;
    this.#expire(prior);
    if (prior.totalFen !== candidate.totalFen || prior.subject !== candidate.subject) {
      throw bad('ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改');
    }
    if (prior.status === 'TRADE_SUCCESS' || prior.status === 'TRADE_FINISHED')
      throw bad('ACQ.TRADE_HAS_SUCCESS', '交易已被支付');
    if (prior.status === 'TRADE_CLOSED') throw bad('ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
    return prior;
  }

  #precreate(params: Record<string, string>, biz: Record<string, unknown>): Node {
    const candidate = this.#newTrade(METHOD.precreate, params, biz);
    const trade = this.#existing(candidate) ?? candidate;
    this.#trades.set(trade.outTradeNo, trade);
    return {
      code: '10000',
      msg: 'Success',
      out_trade_no: trade.outTradeNo,
      qr_code: this.#cashierUrl(trade.outTradeNo),
    };
  }

  #pagePay(method: string, params: Record<string, string>, biz: Record<string, unknown>): AlipaySimTrade {
    const candidate = this.#newTrade(method, params, biz);
    const trade = this.#existing(candidate) ?? candidate;
    this.#trades.set(trade.outTradeNo, trade);
    trade.scanned = true; // the buyer is on the cashier now
    trade.tradeNo ??= this.#newTradeNo();
    return trade;
  }

  /** The trade a query/close/cancel names, if it exists at "Alipay" (a precreate only once scanned). */
  #visible(biz: Record<string, unknown>): AlipaySimTrade {
    const tradeNo = typeof biz['trade_no'] === 'string' ? biz['trade_no'] : undefined;
    const outTradeNo = typeof biz['out_trade_no'] === 'string' ? biz['out_trade_no'] : undefined;
    if (!tradeNo && !outTradeNo) throw bad('ACQ.INVALID_PARAMETER', 'out_trade_no or trade_no is required');
    const trade = tradeNo
      ? [...this.#trades.values()].find((t) => t.tradeNo === tradeNo)
      : this.#trades.get(outTradeNo as string);
    if (!trade || !trade.scanned) throw bad('ACQ.TRADE_NOT_EXIST', '交易不存在');
    this.#expire(trade);
    return trade;
  }

  #query(biz: Record<string, unknown>): Node {
    const trade = this.#visible(biz);
    const paid =
      trade.status === 'TRADE_SUCCESS' || trade.status === 'TRADE_FINISHED' || trade.gmtPayment !== undefined;
    const node: Node = {
      code: '10000',
      msg: 'Success',
      trade_no: trade.tradeNo ?? '',
      out_trade_no: trade.outTradeNo,
      trade_status: trade.status,
      total_amount: trade.totalAmount,
    };
    if (paid && trade.gmtPayment) {
      node['buyer_logon_id'] = 'sim***@example.com';
      node['buyer_user_id'] = trade.buyerId ?? '';
      node['buyer_pay_amount'] = fenToYuan(trade.totalFen);
      node['receipt_amount'] = fenToYuan(trade.totalFen);
      node['invoice_amount'] = fenToYuan(trade.totalFen);
      node['point_amount'] = '0.00';
      node['send_pay_date'] = gmt8(trade.gmtPayment);
    }
    return node;
  }

  #close(biz: Record<string, unknown>): Node {
    const trade = this.#visible(biz);
    if (trade.status !== 'WAIT_BUYER_PAY') throw bad('ACQ.TRADE_STATUS_ERROR', '交易状态不合法');
    trade.status = 'TRADE_CLOSED';
    trade.gmtClose = this.#now();
    return { code: '10000', msg: 'Success', trade_no: trade.tradeNo ?? '', out_trade_no: trade.outTradeNo };
  }

  /** Cancel: an unpaid trade is closed (action=close); a paid one is refunded in full and closed (action=refund). */
  #cancel(biz: Record<string, unknown>): Node {
    const trade = this.#visible(biz);
    let action: string;
    switch (trade.status) {
      case 'WAIT_BUYER_PAY':
        action = 'close';
        break;
      case 'TRADE_SUCCESS':
        action = 'refund';
        break;
      case 'TRADE_CLOSED':
        action = trade.gmtPayment ? 'refund' : 'close';
        break;
      case 'TRADE_FINISHED':
        throw bad('ACQ.CANCEL_NOT_ALLOWED', '交易不允许撤销');
    }
    trade.status = 'TRADE_CLOSED';
    trade.gmtClose ??= this.#now();
    return {
      code: '10000',
      msg: 'Success',
      trade_no: trade.tradeNo ?? '',
      out_trade_no: trade.outTradeNo,
      retry_flag: 'N',
      action,
    };
  }

  // ---------------------------------------------------------------- refunds

  #refund(biz: Record<string, unknown>): Node {
    const trade = this.#visible(biz);
    const text = (k: string): string | undefined => (typeof biz[k] === 'string' ? biz[k] : undefined);
    const refundAmount = text('refund_amount');
    const fen = refundAmount === undefined ? undefined : parseYuan(refundAmount);
    if (refundAmount === undefined || fen === undefined) {
      throw bad('ACQ.INVALID_PARAMETER', 'refund_amount must be yuan with at most 2 decimals');
    }
    const outRequestNo = text('out_request_no') ?? trade.outTradeNo;
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(outRequestNo)) throw bad('ACQ.INVALID_PARAMETER', 'out_request_no is malformed');
    const prior = trade.refunds.find((r) => r.outRequestNo === outRequestNo);
    if (prior) {
      // Same out_request_no: the same refund, never a second one (§4); another amount is refused.
      if (prior.amountFen !== fen) throw bad('ACQ.DISCORDANT_REPEAT_REQUEST', '请求信息不一致');
      return this.#refundAnswer(trade, prior, 'N');
    }
    switch (trade.status) {
      case 'WAIT_BUYER_PAY':
        throw bad('ACQ.TRADE_STATUS_ERROR', '交易状态不合法');
      case 'TRADE_FINISHED':
        throw bad('ACQ.TRADE_HAS_FINISHED', '交易已完结');
      case 'TRADE_CLOSED':
        throw bad('ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
      case 'TRADE_SUCCESS':
        break;
    }
    if (text('out_request_no') === undefined && fen !== trade.totalFen) {
      throw bad('ACQ.INVALID_PARAMETER', 'out_request_no is required for a partial refund');
    }
    const committed = trade.refunds.reduce((sum, r) => sum + r.amountFen, 0n);
    if (committed + fen > trade.totalFen) throw bad('ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', '退款金额超限');
    const refund: AlipaySimRefund = {
      outRequestNo,
      refundAmount,
      amountFen: fen,
      reason: text('refund_reason'),
      requestedAt: this.#now(),
      status: 'REFUND_PROCESSING',
      finishedAt: undefined,
    };
    trade.refunds.push(refund);
    if (this.#refundDelayMs === 0) {
      this.#finishRefund(trade, refund);
      return this.#refundAnswer(trade, refund, 'Y');
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#finishRefund(trade, refund);
    }, this.#refundDelayMs);
    timer.unref();
    this.#timers.add(timer);
    return this.#refundAnswer(trade, refund, 'N');
  }

  #refundedFen(trade: AlipaySimTrade): bigint {
    return trade.refunds.reduce((sum, r) => (r.status === 'REFUND_SUCCESS' ? sum + r.amountFen : sum), 0n);
  }

  #refundAnswer(trade: AlipaySimTrade, refund: AlipaySimRefund, fundChange: 'Y' | 'N'): Node {
    const node: Node = {
      code: '10000',
      msg: 'Success',
      trade_no: trade.tradeNo ?? '',
      out_trade_no: trade.outTradeNo,
      buyer_logon_id: 'sim***@example.com',
      fund_change: fundChange,
      refund_fee: fenToYuan(this.#refundedFen(trade)),
      buyer_user_id: trade.buyerId ?? '',
    };
    if (fundChange === 'Y' && refund.finishedAt) {
      node['gmt_refund_pay'] = gmt8(refund.finishedAt);
      node['send_back_fee'] = refund.refundAmount;
    }
    return node;
  }

  /** The refund is done: money back, the trade closed once fully refunded, and the notify (§1.12). */
  #finishRefund(trade: AlipaySimTrade, refund: AlipaySimRefund): void {
    if (this.#closed || refund.status === 'REFUND_SUCCESS') return;
    const now = this.#now();
    refund.status = 'REFUND_SUCCESS';
    refund.finishedAt = now;
    const full = this.#refundedFen(trade) === trade.totalFen;
    if (full) {
      trade.status = 'TRADE_CLOSED';
      trade.gmtClose = now;
    }
    if (this.#dropNotifies || !trade.notifyUrl || (full && !this.#notifyOnFullRefund)) return;
    const yuan = fenToYuan(trade.totalFen);
    const ms = String(now.getTime() % 1000).padStart(3, '0');
    const fields: Record<string, string> = {
      notify_time: gmt8(now),
      notify_type: 'trade_status_sync',
      notify_id: `${gmt8(now).replace(/\D/g, '')}${randomUUID().replace(/-/g, '')}`,
      app_id: this.appId,
      auth_app_id: this.appId,
      charset: 'utf-8',
      version: '1.0',
      trade_no: trade.tradeNo ?? '',
      out_trade_no: trade.outTradeNo,
      out_biz_no: refund.outRequestNo,
      buyer_id: trade.buyerId ?? '',
      buyer_logon_id: 'sim***@example.com',
      seller_id: this.sellerId,
      seller_email: 'sandbox-seller@example.com',
      trade_status: trade.status,
      total_amount: trade.totalAmount,
      receipt_amount: yuan,
      invoice_amount: yuan,
      buyer_pay_amount: yuan,
      point_amount: '0.00',
      refund_fee: fenToYuan(this.#refundedFen(trade)),
      send_back_fee: refund.refundAmount,
      subject: trade.subject,
      gmt_create: gmt8(trade.createdAt),
      gmt_payment: gmt8(trade.gmtPayment ?? trade.createdAt),
      gmt_refund: `${gmt8(now)}.${ms}`,
      ...(full ? { gmt_close: gmt8(now) } : {}),
    };
    for (const [k, v] of Object.entries(fields)) if (v === '') delete fields[k];
    const body = this.signNotifyBody(fields);
    void this.#deliver(trade, trade.notifyUrl, body, fields['notify_id'] as string, `${trade.status} refund`, 1);
  }

  #refundQuery(biz: Record<string, unknown>): Node {
    const trade = this.#visible(biz);
    const outRequestNo = typeof biz['out_request_no'] === 'string' ? biz['out_request_no'] : trade.outTradeNo;
    const refund = trade.refunds.find((r) => r.outRequestNo === outRequestNo);
    const node: Node = { code: '10000', msg: 'Success', trade_no: trade.tradeNo ?? '', out_trade_no: trade.outTradeNo };
    // A refund Alipay never got: code 10000 without refund_amount/refund_status (§1.7).
    if (!refund) return node;
    node['out_request_no'] = refund.outRequestNo;
    node['total_amount'] = trade.totalAmount;
    node['refund_amount'] = refund.refundAmount;
    node['refund_status'] = refund.status;
    if (refund.reason) node['refund_reason'] = refund.reason;
    const options = Array.isArray(biz['query_options']) ? (biz['query_options'] as unknown[]) : [];
    if (refund.finishedAt && options.includes('gmt_refund_pay')) node['gmt_refund_pay'] = gmt8(refund.finishedAt);
    return node;
  }

  /** WAIT_BUYER_PAY past its expiry → TRADE_CLOSED (§1.11). */
  #expire(trade: AlipaySimTrade): void {
    if (trade.status === 'WAIT_BUYER_PAY' && trade.expiresAt && this.#now() >= trade.expiresAt) {
      trade.status = 'TRADE_CLOSED';
      trade.gmtClose = trade.expiresAt;
    }
  }

  #newTradeNo(): string {
    return `${gmt8(this.#now()).replace(/\D/g, '').slice(0, 8)}2200${digits(16)}`;
  }

  #cashierUrl(outTradeNo: string): string {
    return `${this.baseUrl}/cashier/${encodeURIComponent(outTradeNo)}`;
  }

  // ---------------------------------------------------------------- cashier

  async #cashierPage(res: ServerResponse, outTradeNo: string): Promise<void> {
    const trade = this.#trades.get(outTradeNo);
    if (!trade) return this.#html(res, 404, page('Alipay sandbox', '<p>No such trade.</p>'));
    if (trade.status === 'WAIT_BUYER_PAY') this.scan(outTradeNo);
    return this.#renderCashier(res, trade);
  }

  async #renderCashier(res: ServerResponse, trade: AlipaySimTrade): Promise<void> {
    this.#expire(trade);
    const ownUrl = this.#cashierUrl(trade.outTradeNo);
    const qr = await QRCode.toDataURL(ownUrl, { margin: 1, width: 220 });
    const waiting = trade.status === 'WAIT_BUYER_PAY';
    const buttons = waiting
      ? `<form method="post" action="${escapeHtml(`${ownUrl}/pay`)}"><button type="submit" id="pay">Pay ¥${escapeHtml(trade.totalAmount)}</button></form>` +
        `<form method="post" action="${escapeHtml(`${ownUrl}/abandon`)}"><button type="submit" id="abandon">Abandon</button></form>`
      : `<p id="status">This trade is ${escapeHtml(trade.status)}.</p>`;
    const body =
      `<h1>Alipay sandbox cashier</h1>` +
      `<dl><dt>Subject</dt><dd id="subject">${escapeHtml(trade.subject)}</dd>` +
      `<dt>Amount</dt><dd id="amount">¥${escapeHtml(trade.totalAmount)}</dd>` +
      `<dt>Order</dt><dd id="out-trade-no">${escapeHtml(trade.outTradeNo)}</dd>` +
      `<dt>Status</dt><dd id="trade-status">${escapeHtml(trade.status)}</dd></dl>` +
      `<img id="qr" alt="${escapeHtml(ownUrl)}" src="${escapeHtml(qr)}" />${buttons}${refundList(trade.refunds)}`;
    this.#html(res, 200, page('Alipay sandbox cashier', body));
  }

  async #cashierPay(res: ServerResponse, outTradeNo: string): Promise<void> {
    const trade = this.#trades.get(outTradeNo);
    if (!trade) return this.#html(res, 404, page('Alipay sandbox', '<p>No such trade.</p>'));
    this.#expire(trade);
    if (trade.status !== 'WAIT_BUYER_PAY') {
      return this.#html(res, 409, page('Alipay sandbox', `<p>This trade is ${escapeHtml(trade.status)}.</p>`));
    }
    await this.pay(outTradeNo);
    if (trade.returnUrl) {
      res.writeHead(303, { location: this.#returnUrl(trade, trade.returnUrl) });
      res.end();
      return;
    }
    this.#html(res, 200, page('Alipay sandbox', `<p id="status">Paid ¥${escapeHtml(trade.totalAmount)}.</p>`));
  }

  #cashierAbandon(res: ServerResponse, outTradeNo: string): void {
    const trade = this.#trades.get(outTradeNo);
    if (!trade) return this.#html(res, 404, page('Alipay sandbox', '<p>No such trade.</p>'));
    trade.abandoned = true;
    const back = trade.quitUrl ?? trade.returnUrl;
    if (back && /^https?:\/\//.test(back)) {
      res.writeHead(303, { location: back });
      res.end();
      return;
    }
    this.#html(
      res,
      200,
      page('Alipay sandbox', '<p id="status">You left the cashier; the trade waits until it times out.</p>'),
    );
  }

  /** The browser's return after paying: signed like a notify, never authoritative (§1.7). */
  #returnUrl(trade: AlipaySimTrade, returnUrl: string): string {
    const params: Record<string, string> = {
      app_id: this.appId,
      method: `${trade.method}.return`,
      charset: 'utf-8',
      version: '1.0',
      timestamp: gmt8(this.#now()),
      out_trade_no: trade.outTradeNo,
      trade_no: trade.tradeNo ?? '',
      total_amount: trade.totalAmount,
      seller_id: this.sellerId,
      auth_app_id: this.appId,
    };
    const sign = this.#sign(sortedContent(params, ['sign', 'sign_type']));
    const url = new URL(returnUrl);
    for (const [k, v] of Object.entries({ ...params, sign, sign_type: 'RSA2' })) url.searchParams.set(k, v);
    return url.toString();
  }

  // ---------------------------------------------------------------- notify

  /** Builds the notify once (one notify_id), delivers it, retries on the schedule until `success`. */
  /**
   * The form body of a notify with these fields, signed with the simulator's Alipay key exactly as its
   * own notifies are (§1.9: signed without sign and sign_type; sign_type=RSA2 travels in the body).
   * Tests use it to send genuinely signed notifies with chosen contents.
   */
  signNotifyBody(fields: Readonly<Record<string, string>>): string {
    const sign = this.#sign(sortedContent(fields, ['sign', 'sign_type']));
    return new URLSearchParams({ ...fields, sign_type: 'RSA2', sign }).toString();
  }

  async #notify(trade: AlipaySimTrade): Promise<void> {
    const url = trade.notifyUrl;
    if (!url || this.#closed) return;
    const paidAt = trade.gmtPayment ?? this.#now();
    const yuan = fenToYuan(trade.totalFen);
    const fields: Record<string, string> = {
      notify_time: gmt8(this.#now()),
      notify_type: 'trade_status_sync',
      notify_id: `${gmt8(paidAt).replace(/\D/g, '')}${randomUUID().replace(/-/g, '')}`,
      app_id: this.appId,
      auth_app_id: this.appId,
      charset: 'utf-8',
      version: '1.0',
      trade_no: trade.tradeNo ?? '',
      out_trade_no: trade.outTradeNo,
      buyer_id: trade.buyerId ?? '',
      buyer_logon_id: 'sim***@example.com',
      seller_id: this.sellerId,
      seller_email: 'sandbox-seller@example.com',
      trade_status: trade.status,
      total_amount: trade.totalAmount,
      receipt_amount: yuan,
      invoice_amount: yuan,
      buyer_pay_amount: yuan,
      point_amount: '0.00',
      subject: trade.subject,
      gmt_create: gmt8(trade.createdAt),
      gmt_payment: gmt8(paidAt),
      fund_bill_list: JSON.stringify([{ amount: yuan, fundChannel: 'ALIPAYACCOUNT' }]),
    };
    if (trade.body) fields['body'] = trade.body;
    if (trade.passbackParams) fields['passback_params'] = trade.passbackParams;
    for (const [k, v] of Object.entries(fields)) if (v === '') delete fields[k];
    const body = this.signNotifyBody(fields);
    await this.#deliver(trade, url, body, fields['notify_id'] as string, fields['trade_status'] as string, 1);
  }

  #deliver(
    trade: AlipaySimTrade,
    url: string,
    body: string,
    notifyId: string,
    tradeStatus: string,
    attempt: number,
  ): Promise<void> {
    const run = (async () => {
      if (this.#closed) return;
      let entry: AlipayNotifyAttempt;
      const base = { outTradeNo: trade.outTradeNo, notifyId, attempt, at: this.#now(), url, tradeStatus };
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
          body,
          signal: AbortSignal.timeout(NOTIFY_TIMEOUT_MS),
        });
        const reply = await res.text();
        // Only the exact 7 characters `success` acknowledge (§1.9).
        entry = { ...base, status: res.status, reply: reply.slice(0, 200), acknowledged: reply === 'success' };
      } catch (err) {
        entry = { ...base, error: err instanceof Error ? err.message : String(err), acknowledged: false };
      }
      this.notifyLog.push(entry);
      if (entry.acknowledged || this.#closed) return;
      const delay = this.#retryDelays[attempt - 1];
      if (delay === undefined) return;
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        void this.#deliver(trade, url, body, notifyId, tradeStatus, attempt + 1);
      }, delay);
      this.#timers.add(timer);
    })();
    this.#inflight.add(run);
    return run.finally(() => this.#inflight.delete(run));
  }
}

function refundList(refunds: readonly AlipaySimRefund[]): string {
  if (refunds.length === 0) return '';
  const items = refunds
    .map(
      (r) =>
        `<li class="refund"><code>${escapeHtml(r.outRequestNo)}</code> ¥${escapeHtml(r.refundAmount)} ` +
        `<span class="refund-status">${escapeHtml(r.status)}</span></li>`,
    )
    .join('');
  return `<h2>Refunds</h2><ul id="refunds">${items}</ul>`;
}

function page(title: string, body: string): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>${body}</body></html>`
  );
}

export interface AlipaySandboxOptions {
  /** Public URL where the simulator's listener is mounted, e.g. http://127.0.0.1:3000/sandbox/alipay. */
  readonly baseUrl: string;
  readonly notifyRetryDelaysMs?: number[];
}

export interface AlipaySandbox {
  readonly simulator: AlipaySimulator;
  /** A ready `pays.aliPayment` instance pointing at the simulator, with freshly generated keys. */
  readonly instance: ChannelInstanceConfig;
}

/**
 * A simulator plus the channel instance config that talks to it. Two fresh RSA-2048 pairs: the app's
 * (its private half goes to the instance, its public half to the simulator) and the simulator's own
 * "Alipay" pair (private half signs answers and notifies, public half goes to the instance). Keys are
 * handed over as bare base64, the way the Alipay console shows them.
 */
export function createAlipaySandbox(opts: AlipaySandboxOptions): AlipaySandbox {
  const baseUrl = opts.baseUrl.replace(/\/+$/, '');
  const app = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const alipay = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const appId = `2021${digits(12)}`;
  const simulator = new AlipaySimulator({
    baseUrl,
    appId,
    appPublicKey: app.publicKey,
    alipayPrivateKey: alipay.privateKey,
    ...(opts.notifyRetryDelaysMs ? { notifyRetryDelaysMs: opts.notifyRetryDelaysMs } : {}),
  });
  const instance: ChannelInstanceConfig = {
    fullName: 'pays.aliPayment',
    type: 'pays.AliPayType',
    title: 'Alipay (sandbox)',
    isDefault: true,
    sandbox: true,
    config: {
      appId,
      privateKey: app.privateKey.export({ type: 'pkcs1', format: 'der' }).toString('base64'),
      publicKey: alipay.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
      gatewayUrl: `${baseUrl}/gateway.do`,
    },
  };
  return { simulator, instance };
}
