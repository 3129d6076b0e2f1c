import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  randomInt,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ChannelInstanceConfig } from '#channels';
import { formatMinor, isSupportedCurrency } from '#common';

/**
 * A loopback Alipay+ wallet (shared/design/PROTOCOLS.md §3, checklist §3.10) for tests and demo mode.
 * It speaks the real wire protocol at the real paths, checks every request signature with the merchant's
 * public key and signs every answer and notifyPayment with its own key. Its signing code is written
 * apart from the channel's (libs/channels/src/alipayplus) on purpose: a bug shared by both sides would
 * otherwise pass unseen.
 *
 * Mount `listener` anywhere: paths are read relative to the mount (Express `app.use(prefix, listener)`
 * strips the prefix from `req.url`), while the signed URI is the full path the client sent
 * (`req.originalUrl` under Express, `req.url` on a bare http server). Mount it before any body parser,
 * or have the parser keep the raw bytes in `req.rawBody`: signatures are over the exact bytes.
 *
 * Choices where the protocol is UNVERIFIED (PROTOCOLS.md §4), made here and nowhere else:
 * - a cashier pay answers `A`/`ACCEPT` with `redirectActionForm.redirectUrl`;
 * - an unknown, used or expired auth code answers `F`/`EXPIRED_CODE` (the only code-related result code
 *   §3.3 lists); an unknown, used or expired refresh token `F`/`USED_REFRESH_TOKEN`;
 * - a bad request signature `F`/`INVALID_SIGNATURE`, a wrong Client-Id `F`/`ACCESS_DENIED`;
 * - cancel of a paid or failed payment `F`/`ORDER_STATUS_INVALID`;
 * - an unpaid payment past paymentExpiryTime becomes `FAIL` with paymentResultCode `ORDER_IS_CLOSED`
 *   (no notify is sent for it);
 * - "Abandon" on the cashier fails the payment (`F`/`USER_CANCELLED`) and notifies it, so tests can
 *   drive the failure path;
 * - notifyPayment is retried on `notifyRetryDelaysMs` until the reply's `result.resultStatus` is `S`.
 *
 * Refunds (PROTOCOLS-REFUNDS-BILLS.md §3.11–§3.13, checklist §4), at `/v2/payments/refund` and
 * `/v2/payments/inquiryRefund` (v1 too):
 * - idempotent on refundRequestId: the same parameters give the same answer, others
 *   `F/REPEAT_REQ_INCONSISTENT`; the sum of refunds may not pass the payment (`F/REFUND_AMOUNT_EXCEED`);
 *   an unknown payment is `F/ORDER_NOT_EXIST`, an unpaid one `F/ORDER_STATUS_INVALID`, another currency
 *   `F/CURRENCY_NOT_SUPPORT`;
 * - a refund finishes at once (`S`) or, after `setRefundDelayMs`, answers `U/REFUND_IN_PROCESS` and shows
 *   PROCESSING in inquiryRefund until it is SUCCESS (the choice of U for an async wallet is ours);
 * - notifyRefund (Antom's `notifyType=REFUND_RESULT`, signed like notifyPayment) goes to the request's
 *   `refundNotifyUrl` once the refund is final; retried until the reply is `S`;
 * - test hooks: `failNextRefund(code)` refuses the next refund with F/code; `unknownNextRefund()` answers
 *   the next one `U/UNKNOWN_EXCEPTION` WITHOUT taking it (inquiryRefund then says REFUND_NOT_EXIST).
 */

export type AlipayPlusSimPaymentStatus = 'PROCESSING' | 'SUCCESS' | 'FAIL' | 'CANCELLED';

export interface AlipayPlusSimAmount {
  readonly currency: string;
  readonly value: string;
}

/** A payment as the simulated wallet holds it (a copy is handed out by `payment()`). */
export interface AlipayPlusSimPayment {
  readonly paymentId: string;
  readonly paymentRequestId: string;
  readonly amount: AlipayPlusSimAmount;
  readonly orderDescription: string;
  readonly referenceOrderId?: string;
  readonly customerId?: string;
  readonly paymentNotifyUrl: string;
  readonly paymentRedirectUrl?: string;
  readonly expiresAt?: Date;
  readonly createdAt: Date;
  readonly status: AlipayPlusSimPaymentStatus;
  readonly resultCode: string;
  readonly paidAt?: Date;
  readonly cancelledAt?: Date;
  /** Whether the merchant has acknowledged a notify of the current outcome with resultStatus S. */
  readonly notifyAcknowledged: boolean;
}

export interface AlipayPlusNotifyLogEntry {
  readonly paymentRequestId: string;
  readonly paymentId: string;
  /** 1 for the first delivery, 2 for the first retry, ... */
  readonly attempt: number;
  readonly at: Date;
  readonly url: string;
  /** The outcome the notify carried: S (paid) or F (failed). */
  readonly resultStatus: 'S' | 'F';
  readonly outcome: 'acknowledged' | 'not_acknowledged' | 'error' | 'dropped';
  readonly httpStatus?: number;
  /** `result.resultStatus` of the merchant's reply, when it had one. */
  readonly replyStatus?: string;
}

export interface AlipayPlusSimulatorOptions {
  /** Public URL of the mount, e.g. `http://127.0.0.1:3000/sandbox/alipayplus` (cashier links use it). */
  readonly baseUrl: string;
  /** The merchant's Client-Id. */
  readonly clientId: string;
  /** The merchant's public key (verifies requests): PEM, bare base64 SPKI, or a KeyObject. */
  readonly merchantPublicKey: string | KeyObject;
  /** The wallet's private key (signs answers and notifies): PEM, bare base64 PKCS#8, or a KeyObject. */
  readonly walletPrivateKey: string | KeyObject;
  /** Delays between notify deliveries, default [1000, 2000, 5000, 10000, 30000] (then it gives up). */
  readonly notifyRetryDelaysMs?: readonly number[];
  readonly accessTokenTtlMs?: number;
  readonly refreshTokenTtlMs?: number;
  readonly authCodeTtlMs?: number;
  /** Time source (tests). */
  readonly now?: () => Date;
}

const DEFAULT_RETRY_DELAYS_MS = [1000, 2000, 5000, 10000, 30000] as const;
const NOTIFY_TIMEOUT_MS = 5000;

export interface AlipayPlusSimRefund {
  readonly refundId: string;
  readonly refundRequestId: string;
  readonly amount: AlipayPlusSimAmount;
  readonly reason?: string;
  readonly notifyUrl?: string;
  readonly createdAt: Date;
  status: 'PROCESSING' | 'SUCCESS' | 'FAIL';
  finishedAt?: Date;
}

export interface AlipayPlusRefundNotifyLogEntry {
  readonly refundRequestId: string;
  readonly attempt: number;
  readonly url: string;
  readonly refundStatus: string;
  readonly outcome: 'acknowledged' | 'not_acknowledged' | 'error' | 'dropped';
}

interface MutableRefund extends AlipayPlusSimRefund {
  readonly fingerprint: string;
  readonly paymentRequestId: string;
}

interface MutablePayment {
  paymentId: string;
  paymentRequestId: string;
  amount: AlipayPlusSimAmount;
  orderDescription: string;
  referenceOrderId?: string;
  customerId?: string;
  paymentNotifyUrl: string;
  paymentRedirectUrl?: string;
  expiresAt?: Date;
  createdAt: Date;
  status: AlipayPlusSimPaymentStatus;
  resultCode: string;
  paidAt?: Date;
  cancelledAt?: Date;
  fingerprint: string;
  answer: Record<string, unknown>;
  notifyAcknowledged: boolean;
  /** Bumped on every outcome change, so that stale retry timers stop. */
  notifyGeneration: number;
  refunds: MutableRefund[];
}

interface Grant {
  readonly customerId: string;
  readonly expiresAt: Date;
  used: boolean;
}

type Json = Record<string, unknown>;
type Answer = { status: number; body: Json };

export class AlipayPlusSimulator {
  readonly listener: (req: IncomingMessage, res: ServerResponse) => void;
  readonly #baseUrl: string;
  readonly #basePath: string;
  readonly #clientId: string;
  readonly #merchantKey: KeyObject;
  readonly #walletKey: KeyObject;
  readonly #retryDelays: readonly number[];
  readonly #accessTtl: number;
  readonly #refreshTtl: number;
  readonly #codeTtl: number;
  readonly #now: () => Date;

  readonly #payments = new Map<string, MutablePayment>(); // by paymentRequestId
  readonly #byPaymentId = new Map<string, MutablePayment>();
  readonly #authCodes = new Map<string, Grant>();
  readonly #accessTokens = new Map<string, Grant>();
  readonly #refreshTokens = new Map<string, Grant>();
  readonly #customers = new Set<string>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #notifyLog: AlipayPlusNotifyLogEntry[] = [];
  readonly #refundNotifyLog: AlipayPlusRefundNotifyLogEntry[] = [];
  readonly #refundsByRequestId = new Map<string, MutableRefund>();
  #refundDelayMs = 0;
  readonly #refundFaults: { readonly status: 'F' | 'U'; readonly code: string }[] = [];
  #down = false;
  #latencyMs = 0;
  #dropNotifies = false;
  #closed = false;

  constructor(options: AlipayPlusSimulatorOptions) {
    if (process.env['NODE_ENV'] === 'production') {
      throw new Error('the Alipay+ wallet simulator refuses to run with NODE_ENV=production');
    }
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#basePath = new URL(this.#baseUrl).pathname.replace(/\/+$/, '');
    this.#clientId = options.clientId;
    this.#merchantKey = toPublicKey(options.merchantPublicKey);
    this.#walletKey = toPrivateKey(options.walletPrivateKey);
    this.#retryDelays = options.notifyRetryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    this.#accessTtl = options.accessTokenTtlMs ?? 3600_000;
    this.#refreshTtl = options.refreshTokenTtlMs ?? 30 * 24 * 3600_000;
    this.#codeTtl = options.authCodeTtlMs ?? 5 * 60_000;
    this.#now = options.now ?? ((): Date => new Date());
    this.listener = (req, res): void => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        }
        res.end('simulator error');
      });
    };
  }

  // -------------------------------------------------------------------------------------------------
  // Test hooks

  /** What my.getAuthCode would hand the mini program: a fresh single-use code for this customer. */
  issueAuthCode(customerId?: string): string {
    const customer =
      customerId ??
      `2188${randomInt(0, 1e9).toString().padStart(9, '0')}${randomInt(0, 1e3).toString().padStart(3, '0')}`;
    const code = `AUTH_${randomBytes(12).toString('hex')}`;
    this.#authCodes.set(code, {
      customerId: customer,
      expiresAt: new Date(this.#now().getTime() + this.#codeTtl),
      used: false,
    });
    return code;
  }

  /**
   * The user pays at the cashier: the payment becomes SUCCESS and a signed notifyPayment goes out. Resolves
   * after the first delivery attempt (retries run on timers). Paying a paid payment again is a no-op;
   * an unknown, expired, failed or cancelled one throws.
   */
  async pay(paymentRequestId: string): Promise<void> {
    const p = this.#payments.get(paymentRequestId);
    if (!p) throw new Error(`no such payment: ${paymentRequestId}`);
    this.#expire(p);
    if (p.status === 'SUCCESS') return;
    if (p.status !== 'PROCESSING') throw new Error(`payment ${paymentRequestId} is ${p.status} (${p.resultCode})`);
    p.status = 'SUCCESS';
    p.resultCode = 'SUCCESS';
    p.paidAt = this.#now();
    await this.#startNotify(p);
  }

  /** The user abandons the cashier: the payment fails (USER_CANCELLED) and a failure notify goes out. */
  async abandon(paymentRequestId: string): Promise<void> {
    const p = this.#payments.get(paymentRequestId);
    if (!p) throw new Error(`no such payment: ${paymentRequestId}`);
    this.#expire(p);
    if (p.status !== 'PROCESSING') throw new Error(`payment ${paymentRequestId} is ${p.status} (${p.resultCode})`);
    p.status = 'FAIL';
    p.resultCode = 'USER_CANCELLED';
    await this.#startNotify(p);
  }

  payment(paymentRequestId: string): AlipayPlusSimPayment | undefined {
    const p = this.#payments.get(paymentRequestId);
    if (!p) return undefined;
    this.#expire(p);
    return snapshot(p);
  }

  /** While down, every endpoint answers HTTP 503 without a signature. */
  setDown(down: boolean): void {
    this.#down = down;
  }

  setLatencyMs(ms: number): void {
    this.#latencyMs = Math.max(0, ms);
  }

  /** While set, notify deliveries are lost on the way (logged as `dropped`); retries keep being scheduled. */
  setDropNotifies(drop: boolean): void {
    this.#dropNotifies = drop;
  }

  get notifyLog(): readonly AlipayPlusNotifyLogEntry[] {
    return this.#notifyLog;
  }

  /** Resolves true once the merchant acknowledged this payment's notify (S), false on timeout. */
  async whenAcknowledged(paymentRequestId: string, timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#payments.get(paymentRequestId)?.notifyAcknowledged) return true;
      if (Date.now() >= deadline || this.#closed) return false;
      await sleep(10);
    }
  }

  /** Refunds finish this long after they are taken (0, the default: at once, `S`). */
  setRefundDelayMs(ms: number): void {
    this.#refundDelayMs = Math.max(0, ms);
  }

  /** Test hook: the next refund is refused `F/<code>` (nothing refunded). */
  failNextRefund(code = 'PROCESS_FAIL'): void {
    this.#refundFaults.push({ status: 'F', code });
  }

  /** Test hook: the next refund is answered `U/UNKNOWN_EXCEPTION` and never taken (like a lost request). */
  unknownNextRefund(): void {
    this.#refundFaults.push({ status: 'U', code: 'UNKNOWN_EXCEPTION' });
  }

  /** Copies of a payment's refunds, oldest first. */
  refundsOf(paymentRequestId: string): AlipayPlusSimRefund[] {
    return (this.#payments.get(paymentRequestId)?.refunds ?? []).map(refundSnapshot);
  }

  get refundNotifyLog(): readonly AlipayPlusRefundNotifyLogEntry[] {
    return this.#refundNotifyLog;
  }

  /** Stops all pending notify retries. */
  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  // -------------------------------------------------------------------------------------------------
  // HTTP

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const path = stripBase(rawUrl.split('?')[0] ?? '/', this.#basePath);
    if (this.#latencyMs > 0) await sleep(this.#latencyMs);
    if (this.#down) {
      res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('service unavailable');
      return;
    }
    const cashier = /^\/cashier\/([A-Za-z0-9_-]{1,64})(?:\/(pay|abandon))?\/?$/.exec(path);
    if (cashier) {
      await this.#cashier(req, res, cashier[1] ?? '', cashier[2]);
      return;
    }
    if (path === '/test/auth-code' && req.method === 'POST') {
      // Stands in for my.getAuthCode in a mini program, so a person can try the flow with curl.
      const authCode = this.issueAuthCode();
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ authCode }));
      return;
    }
    const api =
      /^\/v[12]\/(authorizations\/applyToken|payments\/pay|payments\/inquiryPayment|payments\/cancel|payments\/refund|payments\/inquiryRefund)$/.exec(
        path,
      );
    if (!api) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('not found');
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { Allow: 'POST', 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('method not allowed');
      return;
    }
    const signedUri = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? rawUrl;
    const body = await readBody(req);
    const answer = this.#api(api[1] ?? '', path.startsWith('/v2/'), req, signedUri, body);
    this.#reply(res, signedUri, answer);
  }

  #api(name: string, v2: boolean, req: IncomingMessage, signedUri: string, body: Buffer | undefined): Answer {
    const clientId = headerValue(req, 'client-id');
    const time = headerValue(req, 'request-time');
    const signature = headerValue(req, 'signature');
    if (clientId !== this.#clientId) return fail('ACCESS_DENIED', 'unknown Client-Id');
    if (body === undefined) return fail('PARAM_ILLEGAL', 'the request body was consumed before the simulator');
    if (!time || !signature || !this.#verifyRequest(signedUri, clientId, time, body, signature)) {
      return fail('INVALID_SIGNATURE', 'the request signature is invalid');
    }
    let payload: Json;
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      payload = parsed as Json;
    } catch {
      return fail('PARAM_ILLEGAL', 'the body is not a JSON object');
    }
    switch (name) {
      case 'authorizations/applyToken':
        return this.#applyToken(payload);
      case 'payments/pay':
        return this.#createPayment(payload);
      case 'payments/inquiryPayment':
        return this.#inquiry(payload, v2);
      case 'payments/cancel':
        return this.#cancel(payload);
      case 'payments/refund':
        return this.#refund(payload);
      case 'payments/inquiryRefund':
        return this.#inquiryRefund(payload);
      default:
        return fail('PARAM_ILLEGAL', 'unknown API');
    }
  }

  #applyToken(req: Json): Answer {
    const authClientId = req['authClientId'];
    if (authClientId !== undefined && authClientId !== this.#clientId)
      return fail('INVALID_AUTH_CLIENT', 'authClientId mismatch');
    const now = this.#now();
    let customerId: string;
    if (req['grantType'] === 'AUTHORIZATION_CODE') {
      const code = typeof req['authCode'] === 'string' ? req['authCode'] : '';
      const grant = this.#authCodes.get(code);
      if (!grant) return fail('EXPIRED_CODE', 'the auth code was not issued');
      if (grant.used) return fail('EXPIRED_CODE', 'the auth code was already used');
      grant.used = true;
      if (grant.expiresAt <= now) return fail('EXPIRED_CODE', 'the auth code has expired');
      customerId = grant.customerId;
    } else if (req['grantType'] === 'REFRESH_TOKEN') {
      const token = typeof req['refreshToken'] === 'string' ? req['refreshToken'] : '';
      const grant = this.#refreshTokens.get(token);
      if (!grant || grant.used) return fail('USED_REFRESH_TOKEN', 'the refresh token is unknown or used');
      grant.used = true;
      if (grant.expiresAt <= now) return fail('USED_REFRESH_TOKEN', 'the refresh token has expired');
      customerId = grant.customerId;
    } else {
      return fail('PARAM_ILLEGAL', 'grantType must be AUTHORIZATION_CODE or REFRESH_TOKEN');
    }
    this.#customers.add(customerId);
    const accessToken = `AT_${randomBytes(16).toString('hex')}`;
    const refreshToken = `RT_${randomBytes(16).toString('hex')}`;
    const accessExpiry = new Date(now.getTime() + this.#accessTtl);
    const refreshExpiry = new Date(now.getTime() + this.#refreshTtl);
    this.#accessTokens.set(accessToken, { customerId, expiresAt: accessExpiry, used: false });
    this.#refreshTokens.set(refreshToken, { customerId, expiresAt: refreshExpiry, used: false });
    return ok({
      accessToken,
      accessTokenExpiryTime: isoWithOffset(accessExpiry),
      refreshToken,
      refreshTokenExpiryTime: isoWithOffset(refreshExpiry),
      customerId,
    });
  }

  #createPayment(req: Json): Answer {
    const paymentRequestId = req['paymentRequestId'];
    if (typeof paymentRequestId !== 'string' || !/^[\x21-\x7e]{1,64}$/.test(paymentRequestId)) {
      return fail('PARAM_ILLEGAL', 'paymentRequestId is missing or too long');
    }
    const amount = wireAmount(req['paymentAmount']);
    if (!amount) return fail('PARAM_ILLEGAL', 'paymentAmount must be {currency, value: "<minor units>"}');
    const notifyUrl = req['paymentNotifyUrl'];
    if (typeof notifyUrl !== 'string' || !/^https?:\/\//.test(notifyUrl) || notifyUrl.length > 1024) {
      return fail('PARAM_ILLEGAL', 'paymentNotifyUrl is missing or invalid');
    }
    const order = asJson(req['order']);
    const orderDescription = typeof order?.['orderDescription'] === 'string' ? order['orderDescription'] : '';
    const referenceOrderId = typeof order?.['referenceOrderId'] === 'string' ? order['referenceOrderId'] : undefined;
    const buyer = asJson(order?.['buyer']);
    const customerId = typeof buyer?.['referenceBuyerId'] === 'string' ? buyer['referenceBuyerId'] : undefined;
    const redirect = typeof req['paymentRedirectUrl'] === 'string' ? req['paymentRedirectUrl'] : undefined;
    let expiresAt: Date | undefined;
    if (req['paymentExpiryTime'] !== undefined) {
      const t = typeof req['paymentExpiryTime'] === 'string' ? Date.parse(req['paymentExpiryTime']) : NaN;
      if (Number.isNaN(t)) return fail('PARAM_ILLEGAL', 'paymentExpiryTime is not ISO 8601');
      expiresAt = new Date(t);
    }
    const fingerprint = JSON.stringify([
      amount.currency,
      amount.value,
      req['productCode'] ?? null,
      notifyUrl,
      expiresAt?.getTime() ?? null,
      referenceOrderId ?? null,
      orderDescription,
      customerId ?? null,
    ]);
    const existing = this.#payments.get(paymentRequestId);
    if (existing) {
      if (existing.fingerprint !== fingerprint) {
        return fail('REPEAT_REQ_INCONSISTENT', 'the same paymentRequestId was used with other parameters');
      }
      return { status: 200, body: existing.answer };
    }
    if (customerId !== undefined && !this.#customers.has(customerId)) return fail('USER_NOT_EXIST', 'unknown customer');
    const now = this.#now();
    if (expiresAt && expiresAt <= now) return fail('PARAM_ILLEGAL', 'paymentExpiryTime is in the past');
    const paymentId = `${compactTime(now)}${randomInt(0, 1e9).toString().padStart(9, '0')}${randomInt(0, 1e3).toString().padStart(3, '0')}`;
    const answer: Json = {
      result: { resultCode: 'ACCEPT', resultStatus: 'A', resultMessage: 'accepted' },
      paymentId,
      paymentRequestId,
      paymentAmount: amount,
      redirectActionForm: { method: 'GET', redirectUrl: `${this.#baseUrl}/cashier/${paymentId}` },
    };
    const p: MutablePayment = {
      paymentId,
      paymentRequestId,
      amount,
      orderDescription,
      ...(referenceOrderId !== undefined ? { referenceOrderId } : {}),
      ...(customerId !== undefined ? { customerId } : {}),
      paymentNotifyUrl: notifyUrl,
      ...(redirect !== undefined ? { paymentRedirectUrl: redirect } : {}),
      ...(expiresAt ? { expiresAt } : {}),
      createdAt: now,
      status: 'PROCESSING',
      resultCode: 'PAYMENT_IN_PROCESS',
      fingerprint,
      answer,
      notifyAcknowledged: false,
      notifyGeneration: 0,
      refunds: [],
    };
    this.#payments.set(paymentRequestId, p);
    this.#byPaymentId.set(paymentId, p);
    return { status: 200, body: answer };
  }

  #find(req: Json): MutablePayment | undefined {
    const byId = typeof req['paymentId'] === 'string' ? this.#byPaymentId.get(req['paymentId']) : undefined;
    if (req['paymentId'] !== undefined) return byId; // paymentId wins when both are given (§3.7)
    return typeof req['paymentRequestId'] === 'string' ? this.#payments.get(req['paymentRequestId']) : undefined;
  }

  #inquiry(req: Json, v2: boolean): Answer {
    const p = this.#find(req);
    if (!p) return fail('ORDER_NOT_EXIST', 'no such payment');
    this.#expire(p);
    const common: Json = {
      paymentId: p.paymentId,
      paymentRequestId: p.paymentRequestId,
      paymentAmount: p.amount,
      ...(p.paidAt ? { paymentTime: isoWithOffset(p.paidAt) } : {}),
    };
    if (v2) {
      const resultStatus = p.status === 'SUCCESS' ? 'S' : p.status === 'PROCESSING' ? 'U' : 'F';
      return ok({
        ...common,
        paymentResult: { resultStatus, resultCode: p.resultCode, resultMessage: p.resultCode.toLowerCase() },
      });
    }
    return ok({
      ...common,
      paymentStatus: p.status,
      paymentResultCode: p.resultCode,
      paymentResultMessage: p.resultCode.toLowerCase(),
    });
  }

  #cancel(req: Json): Answer {
    const p = this.#find(req);
    if (!p) return fail('ORDER_NOT_EXIST', 'no such payment');
    this.#expire(p);
    if (p.status === 'PROCESSING') {
      p.status = 'CANCELLED';
      p.resultCode = 'ORDER_IS_CLOSED';
      p.cancelledAt = this.#now();
      p.notifyGeneration += 1; // nothing to notify any more
    }
    if (p.status === 'CANCELLED') {
      return ok({
        paymentId: p.paymentId,
        paymentRequestId: p.paymentRequestId,
        cancelTime: isoWithOffset(p.cancelledAt ?? this.#now()),
      });
    }
    return fail(
      'ORDER_STATUS_INVALID',
      p.status === 'SUCCESS' ? 'the payment is already paid' : 'the payment has failed',
    );
  }

  // -------------------------------------------------------------------------------------------------
  // refund / inquiryRefund / notifyRefund

  #refund(req: Json): Answer {
    const refundRequestId = req['refundRequestId'];
    if (typeof refundRequestId !== 'string' || !/^[\x21-\x7e]{1,64}$/.test(refundRequestId)) {
      return fail('PARAM_ILLEGAL', 'refundRequestId is missing or too long');
    }
    const amount = wireAmount(req['refundAmount']);
    if (!amount) return fail('PARAM_ILLEGAL', 'refundAmount must be {currency, value: "<minor units>"}');
    const notifyUrl = typeof req['refundNotifyUrl'] === 'string' ? req['refundNotifyUrl'] : undefined;
    if (notifyUrl !== undefined && (!/^https?:\/\//.test(notifyUrl) || notifyUrl.length > 1024)) {
      return fail('PARAM_ILLEGAL', 'refundNotifyUrl is invalid');
    }
    const reason = typeof req['refundReason'] === 'string' ? req['refundReason'] : undefined;
    const p = this.#find(req);
    const fingerprint = JSON.stringify([p?.paymentRequestId ?? null, amount.currency, amount.value]);
    const prior = this.#refundsByRequestId.get(refundRequestId);
    if (prior) {
      if (prior.fingerprint !== fingerprint) {
        return fail('REPEAT_REQ_INCONSISTENT', 'the same refundRequestId was used with other parameters');
      }
      return this.#refundAnswer(prior);
    }
    const fault = this.#refundFaults.shift();
    if (fault) {
      return {
        status: 200,
        body: {
          result: { resultCode: fault.code, resultStatus: fault.status, resultMessage: 'injected by the sandbox' },
        },
      };
    }
    if (!p) return fail('ORDER_NOT_EXIST', 'no such payment');
    this.#expire(p);
    if (p.status !== 'SUCCESS') return fail('ORDER_STATUS_INVALID', 'the payment is not paid');
    if (amount.currency !== p.amount.currency)
      return fail('CURRENCY_NOT_SUPPORT', 'the currency differs from the payment');
    const taken = p.refunds.reduce((sum, r) => (r.status === 'FAIL' ? sum : sum + BigInt(r.amount.value)), 0n);
    if (taken + BigInt(amount.value) > BigInt(p.amount.value)) {
      return fail('REFUND_AMOUNT_EXCEED', 'the refunds would exceed the paid amount');
    }
    const now = this.#now();
    const refund: MutableRefund = {
      refundId: `${compactTime(now)}R${randomInt(0, 1e9).toString().padStart(9, '0')}${randomInt(0, 1e3).toString().padStart(3, '0')}`,
      refundRequestId,
      paymentRequestId: p.paymentRequestId,
      amount,
      ...(reason !== undefined ? { reason } : {}),
      ...(notifyUrl !== undefined ? { notifyUrl } : {}),
      createdAt: now,
      status: 'PROCESSING',
      fingerprint,
    };
    p.refunds.push(refund);
    this.#refundsByRequestId.set(refundRequestId, refund);
    if (this.#refundDelayMs === 0) {
      this.#finishRefund(refund);
    } else {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.#finishRefund(refund);
      }, this.#refundDelayMs);
      timer.unref();
      this.#timers.add(timer);
    }
    return this.#refundAnswer(refund);
  }

  #refundAnswer(r: MutableRefund): Answer {
    const common: Json = {
      refundId: r.refundId,
      refundRequestId: r.refundRequestId,
      paymentRequestId: r.paymentRequestId,
      refundAmount: r.amount,
    };
    if (r.status === 'PROCESSING') {
      return {
        status: 200,
        body: {
          result: { resultCode: 'REFUND_IN_PROCESS', resultStatus: 'U', resultMessage: 'refund in process' },
          ...common,
        },
      };
    }
    return ok({ ...common, refundTime: isoWithOffset(r.finishedAt ?? r.createdAt) });
  }

  #finishRefund(r: MutableRefund): void {
    if (this.#closed || r.status !== 'PROCESSING') return;
    r.status = 'SUCCESS';
    r.finishedAt = this.#now();
    if (r.notifyUrl !== undefined) void this.#deliverRefund(r, r.notifyUrl, 1);
  }

  #inquiryRefund(req: Json): Answer {
    const byId =
      typeof req['refundId'] === 'string'
        ? [...this.#refundsByRequestId.values()].find((r) => r.refundId === req['refundId'])
        : undefined;
    const r =
      req['refundId'] !== undefined
        ? byId // refundId wins when both are given (§3.12)
        : typeof req['refundRequestId'] === 'string'
          ? this.#refundsByRequestId.get(req['refundRequestId'])
          : undefined;
    if (!r) return fail('REFUND_NOT_EXIST', 'refund not yet accepted or does not exist');
    return ok({
      refundId: r.refundId,
      refundRequestId: r.refundRequestId,
      refundAmount: r.amount,
      ...(r.reason !== undefined ? { refundReason: r.reason } : {}),
      refundStatus: r.status,
      ...(r.finishedAt ? { refundTime: isoWithOffset(r.finishedAt) } : {}),
    });
  }

  async #deliverRefund(r: MutableRefund, notifyUrl: string, attempt: number): Promise<void> {
    if (this.#closed) return;
    const base = { refundRequestId: r.refundRequestId, attempt, url: notifyUrl, refundStatus: r.status } as const;
    let outcome: AlipayPlusRefundNotifyLogEntry['outcome'];
    if (this.#dropNotifies) {
      outcome = 'dropped';
    } else {
      const body = JSON.stringify({
        notifyType: 'REFUND_RESULT',
        result: { resultCode: 'SUCCESS', resultStatus: 'S', resultMessage: 'success' },
        refundStatus: r.status,
        refundRequestId: r.refundRequestId,
        refundId: r.refundId,
        paymentRequestId: r.paymentRequestId,
        refundAmount: r.amount,
        ...(r.finishedAt ? { refundTime: isoWithOffset(r.finishedAt) } : {}),
      });
      const url = new URL(notifyUrl);
      const time = isoWithOffset(this.#now());
      try {
        const res = await fetch(url, {
          method: 'POST',
          body,
          headers: {
            'Content-Type': 'application/json; charset=UTF-8',
            'Client-Id': this.#clientId,
            'Request-Time': time,
            Signature: this.#signature('POST', `${url.pathname}${url.search}`, time, Buffer.from(body, 'utf8')),
          },
          signal: AbortSignal.timeout(NOTIFY_TIMEOUT_MS),
        });
        const text = await res.text();
        let replyStatus: unknown;
        try {
          replyStatus = asJson(asJson(JSON.parse(text))?.['result'])?.['resultStatus'];
        } catch {
          replyStatus = undefined;
        }
        outcome = replyStatus === 'S' ? 'acknowledged' : 'not_acknowledged';
      } catch {
        outcome = 'error';
      }
    }
    this.#refundNotifyLog.push({ ...base, outcome });
    if (outcome === 'acknowledged') return;
    const delay = this.#retryDelays[attempt - 1];
    if (delay === undefined || this.#closed) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void this.#deliverRefund(r, notifyUrl, attempt + 1);
    }, delay);
    timer.unref();
    this.#timers.add(timer);
  }

  #expire(p: MutablePayment): void {
    if (p.status === 'PROCESSING' && p.expiresAt && p.expiresAt <= this.#now()) {
      p.status = 'FAIL';
      p.resultCode = 'ORDER_IS_CLOSED';
    }
  }

  #reply(res: ServerResponse, signedUri: string, answer: Answer): void {
    const body = JSON.stringify(answer.body);
    const time = isoWithOffset(this.#now());
    res.writeHead(answer.status, {
      'Content-Type': 'application/json; charset=UTF-8',
      'client-id': this.#clientId,
      'response-time': time,
      signature: this.#signature('POST', signedUri, time, Buffer.from(body, 'utf8')),
    });
    res.end(body);
  }

  // -------------------------------------------------------------------------------------------------
  // Cashier page

  async #cashier(
    req: IncomingMessage,
    res: ServerResponse,
    paymentId: string,
    action: string | undefined,
  ): Promise<void> {
    const p = this.#byPaymentId.get(paymentId);
    if (!p) {
      html(res, 404, page('Payment not found', '<p>This payment does not exist.</p>'));
      return;
    }
    this.#expire(p);
    if (action === undefined) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        html(res, 405, page('Method not allowed', ''));
        return;
      }
      html(res, 200, this.#cashierPage(p));
      return;
    }
    if (req.method !== 'POST') {
      html(res, 405, page('Method not allowed', ''));
      return;
    }
    await readBody(req); // the form has no fields that matter
    try {
      if (action === 'pay') await this.pay(p.paymentRequestId);
      else await this.abandon(p.paymentRequestId);
    } catch {
      html(res, 409, this.#cashierPage(p));
      return;
    }
    html(res, 200, this.#cashierPage(p));
  }

  #cashierPage(p: MutablePayment): string {
    const amount = `${formatMinor(Number(p.amount.value), p.amount.currency)} ${p.amount.currency}`;
    const rows =
      `<dl><dt>Order</dt><dd>${escapeHtml(p.orderDescription || '-')}</dd>` +
      `<dt>Amount</dt><dd class="amount">${escapeHtml(amount)}</dd>` +
      `<dt>Payment</dt><dd>${escapeHtml(p.paymentId)}</dd>` +
      (p.expiresAt ? `<dt>Pay before</dt><dd>${escapeHtml(isoWithOffset(p.expiresAt))}</dd>` : '') +
      `<dt>Status</dt><dd class="status">${escapeHtml(p.status)}</dd></dl>` +
      refundList(p.refunds);
    const back =
      p.paymentRedirectUrl && /^https?:\/\//.test(p.paymentRedirectUrl)
        ? `<p><a href="${escapeHtml(p.paymentRedirectUrl)}">Back to the merchant</a></p>`
        : '';
    if (p.status !== 'PROCESSING') {
      const word = p.status === 'SUCCESS' ? 'Paid' : p.status === 'CANCELLED' ? 'Cancelled' : 'Not paid';
      return page(`Alipay+ sandbox wallet: ${word}`, `${rows}${back}`);
    }
    const base = `${this.#basePath}/cashier/${encodeURIComponent(p.paymentId)}`;
    const forms =
      `<form method="post" action="${escapeHtml(`${base}/pay`)}"><button type="submit">Pay ${escapeHtml(amount)}</button></form>` +
      `<form method="post" action="${escapeHtml(`${base}/abandon`)}"><button type="submit">Abandon</button></form>`;
    return page('Alipay+ sandbox wallet', `${rows}${forms}`);
  }

  // -------------------------------------------------------------------------------------------------
  // notifyPayment

  async #startNotify(p: MutablePayment): Promise<void> {
    p.notifyGeneration += 1;
    p.notifyAcknowledged = false;
    await this.#deliver(p, p.notifyGeneration, 1);
  }

  async #deliver(p: MutablePayment, generation: number, attempt: number): Promise<void> {
    if (this.#closed || generation !== p.notifyGeneration) return;
    const resultStatus = p.status === 'SUCCESS' ? 'S' : 'F';
    const base = {
      paymentRequestId: p.paymentRequestId,
      paymentId: p.paymentId,
      attempt,
      at: this.#now(),
      url: p.paymentNotifyUrl,
      resultStatus,
    } as const;
    let entry: AlipayPlusNotifyLogEntry;
    if (this.#dropNotifies) {
      entry = { ...base, outcome: 'dropped' };
    } else {
      const body = JSON.stringify({
        paymentId: p.paymentId,
        paymentRequestId: p.paymentRequestId,
        paymentResult:
          resultStatus === 'S'
            ? { resultCode: 'SUCCESS', resultStatus: 'S', resultMessage: 'success' }
            : { resultCode: p.resultCode, resultStatus: 'F', resultMessage: p.resultCode.toLowerCase() },
        paymentAmount: p.amount,
        ...(p.paidAt ? { paymentTime: isoWithOffset(p.paidAt) } : {}),
        paymentCreateTime: isoWithOffset(p.createdAt),
      });
      const url = new URL(p.paymentNotifyUrl);
      const time = isoWithOffset(this.#now());
      try {
        const res = await fetch(url, {
          method: 'POST',
          body,
          headers: {
            'Content-Type': 'application/json; charset=UTF-8',
            'Client-Id': this.#clientId,
            'Request-Time': time,
            Signature: this.#signature('POST', `${url.pathname}${url.search}`, time, Buffer.from(body, 'utf8')),
          },
          signal: AbortSignal.timeout(NOTIFY_TIMEOUT_MS),
        });
        const text = await res.text();
        let replyStatus: string | undefined;
        try {
          const r = asJson(asJson(JSON.parse(text))?.['result']);
          replyStatus = typeof r?.['resultStatus'] === 'string' ? r['resultStatus'] : undefined;
        } catch {
          replyStatus = undefined;
        }
        entry = {
          ...base,
          outcome: replyStatus === 'S' ? 'acknowledged' : 'not_acknowledged',
          httpStatus: res.status,
          ...(replyStatus !== undefined ? { replyStatus } : {}),
        };
      } catch {
        entry = { ...base, outcome: 'error' };
      }
    }
    this.#notifyLog.push(entry);
    if (generation !== p.notifyGeneration) return;
    if (entry.outcome === 'acknowledged') {
      p.notifyAcknowledged = true;
      return;
    }
    const delay = this.#retryDelays[attempt - 1];
    if (delay === undefined || this.#closed) return; // gave up: the merchant has to inquire
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void this.#deliver(p, generation, attempt + 1);
    }, delay);
    timer.unref();
    this.#timers.add(timer);
  }

  // -------------------------------------------------------------------------------------------------
  // Signatures (written apart from the channel's signer on purpose)

  #signature(method: string, uri: string, time: string, body: Buffer): string {
    const content = Buffer.concat([Buffer.from(`${method} ${uri}\n${this.#clientId}.${time}.`, 'utf8'), body]);
    const b64 = sign('sha256', content, this.#walletKey).toString('base64');
    return `algorithm=RSA256,keyVersion=1,signature=${encodeURIComponent(b64)}`;
  }

  #verifyRequest(uri: string, clientId: string, time: string, body: Buffer, header: string): boolean {
    // As the SDK's WebhookTool: everything after `signature=` up to a comma, URL-decoded when encoded.
    const at = header.indexOf('signature=');
    if (at < 0) return false;
    let value =
      header
        .slice(at + 'signature='.length)
        .split(',')[0]
        ?.trim() ?? '';
    try {
      if (value.includes('%')) value = decodeURIComponent(value);
    } catch {
      return false;
    }
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return false;
    const content = Buffer.concat([Buffer.from(`POST ${uri}\n${clientId}.${time}.`, 'utf8'), body]);
    try {
      return verify('sha256', content, this.#merchantKey, Buffer.from(value, 'base64'));
    } catch {
      return false;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Sandbox factory

export interface AlipayPlusSandboxOptions {
  /** Public URL of the simulator's mount, e.g. `http://127.0.0.1:3000/sandbox/alipayplus`. */
  readonly baseUrl: string;
  readonly notifyRetryDelaysMs?: number[];
}

/**
 * A simulator plus the channel instance config that talks to it (`pays.myWallet`, the default
 * `pays.AlipayPlusType`), with two fresh RSA-2048 pairs: the merchant's and the wallet's. Keys are bare
 * base64 (PKCS#8 private, SPKI public), the form an Alipay+ console hands out.
 */
export function createAlipayPlusSandbox(opts: AlipayPlusSandboxOptions): {
  simulator: AlipayPlusSimulator;
  instance: ChannelInstanceConfig;
} {
  const merchant = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const wallet = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clientId = `SANDBOX_${randomBytes(8).toString('hex').toUpperCase()}`;
  const simulator = new AlipayPlusSimulator({
    baseUrl: opts.baseUrl,
    clientId,
    merchantPublicKey: merchant.publicKey,
    walletPrivateKey: wallet.privateKey,
    ...(opts.notifyRetryDelaysMs ? { notifyRetryDelaysMs: opts.notifyRetryDelaysMs } : {}),
  });
  const instance: ChannelInstanceConfig = {
    fullName: 'pays.myWallet',
    type: 'pays.AlipayPlusType',
    title: 'Alipay+ wallet (sandbox)',
    isDefault: true,
    sandbox: true,
    config: {
      clientId,
      privateKey: merchant.privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'),
      walletPublicKey: wallet.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
      gatewayUrl: opts.baseUrl.replace(/\/+$/, ''),
    },
  };
  return { simulator, instance };
}

// ---------------------------------------------------------------------------------------------------
// Helpers

function ok(fields: Json): Answer {
  return {
    status: 200,
    body: { result: { resultCode: 'SUCCESS', resultStatus: 'S', resultMessage: 'success' }, ...fields },
  };
}

function fail(resultCode: string, resultMessage: string): Answer {
  return { status: 200, body: { result: { resultCode, resultStatus: 'F', resultMessage } } };
}

function asJson(value: unknown): Json | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

function wireAmount(value: unknown): AlipayPlusSimAmount | undefined {
  const o = asJson(value);
  const currency = o?.['currency'];
  const v = o?.['value'];
  if (typeof currency !== 'string' || typeof v !== 'string') return undefined;
  if (!isSupportedCurrency(currency) || !/^[1-9]\d{0,15}$/.test(v) || !Number.isSafeInteger(Number(v)))
    return undefined;
  return { currency, value: v };
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const pre = (req as IncomingMessage & { rawBody?: unknown }).rawBody;
  if (Buffer.isBuffer(pre)) return pre;
  if (req.readableEnded) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += b.length;
    if (size > 1_048_576) throw new Error('body too large');
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

function stripBase(path: string, basePath: string): string {
  // Under Express the mount is already stripped; on a bare server the full path arrives.
  if (basePath !== '' && (path === basePath || path.startsWith(`${basePath}/`)))
    return path.slice(basePath.length) || '/';
  return path;
}

function toPublicKey(key: string | KeyObject): KeyObject {
  if (typeof key !== 'string') return key.type === 'private' ? createPublicKey(key) : key;
  if (key.includes('-----BEGIN')) return createPublicKey(key);
  return createPublicKey({ key: Buffer.from(key.replace(/\s+/g, ''), 'base64'), format: 'der', type: 'spki' });
}

function toPrivateKey(key: string | KeyObject): KeyObject {
  if (typeof key !== 'string') return key;
  if (key.includes('-----BEGIN')) return createPrivateKey(key);
  return createPrivateKey({ key: Buffer.from(key.replace(/\s+/g, ''), 'base64'), format: 'der', type: 'pkcs8' });
}

function isoWithOffset(date: Date): string {
  const d = new Date(date.getTime() + 8 * 3600_000);
  return `${d.toISOString().slice(0, 19)}+08:00`;
}

function compactTime(date: Date): string {
  return new Date(date.getTime() + 8 * 3600_000).toISOString().slice(0, 19).replace(/\D/g, '');
}

function snapshot(p: MutablePayment): AlipayPlusSimPayment {
  const { fingerprint: _f, answer: _a, notifyGeneration: _g, refunds: _r, ...rest } = p;
  return { ...rest };
}

function refundSnapshot(r: MutableRefund): AlipayPlusSimRefund {
  const { fingerprint: _f, paymentRequestId: _p, ...rest } = r;
  return { ...rest };
}

function refundList(refunds: readonly MutableRefund[]): string {
  if (refunds.length === 0) return '';
  const items = refunds
    .map(
      (r) =>
        `<li class="refund"><code>${escapeHtml(r.refundRequestId)}</code> ` +
        `${escapeHtml(`${formatMinor(Number(r.amount.value), r.amount.currency)} ${r.amount.currency}`)} ` +
        `<span class="refund-status">${escapeHtml(r.status)}</span></li>`,
    )
    .join('');
  return `<h2>Refunds</h2><ul id="refunds">${items}</ul>`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, content: string): string {
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    `<title>${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1>${content}` +
    '<p><small>Sandbox: no real money moves.</small></p></body></html>'
  );
}

function html(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': "default-src 'none'; form-action 'self'",
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}
