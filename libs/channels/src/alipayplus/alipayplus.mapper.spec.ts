import { PayError } from '#common';
import {
  alipayPlusNotifyReply,
  classifyPayAnswer,
  clientResultNextStep,
  fromWireAmount,
  headerOf,
  isoWithOffset,
  isRefundNotifyBody,
  mapInquiry,
  mapInquiryRefund,
  mapRefundAnswer,
  notifyDedupeKey,
  parseIsoTime,
  parsePaymentNotify,
  parseRefundNotify,
  readRedirectUrl,
  resolveAlipayPlusPayType,
  toWireAmount,
} from './alipayplus.mapper.js';

describe('Alipay+ amounts are integer minor units as strings', () => {
  it.each([
    // [minor units, currency, wire value, what it is]
    [9999, 'CNY', '9999', '99.99 CNY'],
    [1, 'CNY', '1', '0.01 CNY'],
    [500, 'JPY', '500', '500 JPY (0 decimals)'],
    [12000, 'KRW', '12000', '12000 KRW (0 decimals)'],
    [1234, 'IQD', '1234', '1.234 IQD (3 decimals)'],
    [10000, 'USD', '10000', '100.00 USD'],
    [10_000_000_000, 'CNY', '10000000000', '100,000,000.00 CNY'],
  ])('%d %s -> "%s" (%s) and back', (minor, currency, value) => {
    expect(toWireAmount({ minor, currency })).toEqual({ currency, value });
    expect(fromWireAmount({ currency, value })).toEqual({ minor, currency });
  });

  it('refuses non-integers, zero, negatives and unknown currencies on the way out', () => {
    expect(() => toWireAmount({ minor: 1.5, currency: 'CNY' })).toThrow(RangeError);
    expect(() => toWireAmount({ minor: 0, currency: 'CNY' })).toThrow(RangeError);
    expect(() => toWireAmount({ minor: -1, currency: 'USD' })).toThrow(RangeError);
    expect(() => toWireAmount({ minor: 100, currency: 'XXX' })).toThrow(PayError);
  });

  it.each([
    [{ currency: 'USD', value: '10.00' }],
    [{ currency: 'USD', value: '1e3' }],
    [{ currency: 'USD', value: '-5' }],
    [{ currency: 'USD', value: '007' }],
    [{ currency: 'USD', value: 100 }],
    [{ currency: 'XXX', value: '100' }],
    [{ value: '100' }],
    ['100'],
    [null],
  ])('reads %p as no amount', (node) => {
    expect(fromWireAmount(node)).toBeUndefined();
  });
});

describe('Alipay+ times', () => {
  it('writes ISO 8601 with +08:00 and reads offsets back', () => {
    const d = new Date('2020-06-08T04:12:12.345Z');
    expect(isoWithOffset(d)).toBe('2020-06-08T12:12:12+08:00');
    expect(isoWithOffset(d, 0)).toBe('2020-06-08T04:12:12+00:00');
    expect(isoWithOffset(d, -330)).toBe('2020-06-07T22:42:12-05:30');
    expect(parseIsoTime('2020-06-08T12:12:12+08:00')?.toISOString()).toBe('2020-06-08T04:12:12.000Z');
    expect(parseIsoTime('2020-06-08T04:12:12.5Z')?.toISOString()).toBe('2020-06-08T04:12:12.500Z');
    expect(parseIsoTime('2020-06-08 12:12:12')).toBeUndefined();
    expect(parseIsoTime('2020-06-08T12:12:12')).toBeUndefined(); // no offset: ambiguous
    expect(parseIsoTime(1591589532000)).toBeUndefined();
  });
});

describe('Alipay+ pay answers (§3.4, both variants)', () => {
  const url = 'https://wallet.example/cashier/P1';
  it.each([
    [
      'A/ACCEPT + redirectActionForm.redirectUrl',
      {
        result: { resultStatus: 'A', resultCode: 'ACCEPT' },
        paymentId: 'P1',
        redirectActionForm: { method: 'GET', redirectUrl: url },
      },
    ],
    [
      'U/PAYMENT_IN_PROCESS + redirectUrl',
      {
        result: { resultStatus: 'U', resultCode: 'PAYMENT_IN_PROCESS' },
        paymentId: 'P1',
        redirectActionForm: { redirectUrl: url },
      },
    ],
    [
      'A/ACCEPT + redirectionUrl (Rebell, Qi)',
      {
        result: { resultStatus: 'A', resultCode: 'ACCEPT' },
        paymentId: 'P1',
        redirectActionForm: { redirectionUrl: url },
      },
    ],
    [
      'S + redirectUrl',
      {
        result: { resultStatus: 'S', resultCode: 'SUCCESS' },
        paymentId: 'P1',
        redirectActionForm: { redirectUrl: url },
      },
    ],
    [
      'U + Antom top-level normalUrl',
      { result: { resultStatus: 'U', resultCode: 'PAYMENT_IN_PROCESS' }, paymentId: 'P1', normalUrl: url },
    ],
  ])('%s -> go to the cashier', (_label, body) => {
    expect(classifyPayAnswer(body)).toEqual({ kind: 'cashier', url, paymentId: 'P1' });
  });

  it('prefers redirectUrl over redirectionUrl and ignores non-http URLs', () => {
    expect(readRedirectUrl({ redirectActionForm: { redirectUrl: url, redirectionUrl: 'https://other' } })).toBe(url);
    expect(readRedirectUrl({ redirectActionForm: { redirectUrl: 'javascript:alert(1)' } })).toBeUndefined();
  });

  it('S without a URL is paid; F is failed even with a URL; U/A without a URL or no result is unknown', () => {
    expect(classifyPayAnswer({ result: { resultStatus: 'S', resultCode: 'SUCCESS' }, paymentId: 'P1' })).toEqual({
      kind: 'paid',
      paymentId: 'P1',
    });
    expect(
      classifyPayAnswer({
        result: { resultStatus: 'F', resultCode: 'REPEAT_REQ_INCONSISTENT' },
        redirectActionForm: { redirectUrl: url },
      }).kind,
    ).toBe('failed');
    expect(classifyPayAnswer({ result: { resultStatus: 'U', resultCode: 'UNKNOWN_EXCEPTION' } }).kind).toBe('unknown');
    expect(classifyPayAnswer({ result: { resultStatus: 'A', resultCode: 'ACCEPT' } }).kind).toBe('unknown');
    expect(classifyPayAnswer({}).kind).toBe('unknown');
  });
});

describe('Alipay+ inquiryPayment (§3.7)', () => {
  const ok = { resultStatus: 'S', resultCode: 'SUCCESS' };
  it.each([
    ['SUCCESS', 'paid'],
    ['FAIL', 'failed'],
    ['PROCESSING', 'pending'],
    ['PENDING', 'pending'],
    ['CANCELLED', 'closed'],
    ['SOMETHING_NEW', 'pending'],
  ])('paymentStatus %s -> %s', (paymentStatus, status) => {
    expect(mapInquiry({ result: ok, paymentStatus })).toEqual({ kind: 'found', status, raw: paymentStatus });
  });

  it.each([
    ['S', 'paid'],
    ['F', 'failed'],
    ['U', 'pending'],
    ['A', 'pending'],
  ])('v2 variant paymentResult.resultStatus %s -> %s', (resultStatus, status) => {
    const answer = mapInquiry({ result: ok, paymentResult: { resultStatus, resultCode: 'X' } });
    expect(answer).toMatchObject({ kind: 'found', status });
  });

  it('ORDER_NOT_EXIST is not_found; other F, U and no result are errors (result is the call, not the payment)', () => {
    expect(mapInquiry({ result: { resultStatus: 'F', resultCode: 'ORDER_NOT_EXIST' } })).toEqual({ kind: 'not_found' });
    expect(
      mapInquiry({ result: { resultStatus: 'F', resultCode: 'INVALID_SIGNATURE' }, paymentStatus: 'SUCCESS' }).kind,
    ).toBe('error');
    expect(
      mapInquiry({ result: { resultStatus: 'U', resultCode: 'UNKNOWN_EXCEPTION' }, paymentStatus: 'SUCCESS' }).kind,
    ).toBe('error');
    expect(mapInquiry({ paymentStatus: 'SUCCESS' }).kind).toBe('error');
    expect(mapInquiry({ result: ok })).toEqual({ kind: 'found', status: 'pending', raw: 'UNKNOWN' });
  });
});

describe('Alipay+ notifyPayment bodies (§3.6)', () => {
  const base = {
    paymentId: 'W123',
    paymentRequestId: 'att-1',
    paymentAmount: { currency: 'JPY', value: '500' },
    paymentTime: '2024-01-01T12:00:05+08:00',
  };

  it('S/SUCCESS is paid, with the amount and time', () => {
    const n = parsePaymentNotify({
      ...base,
      paymentResult: { resultCode: 'SUCCESS', resultStatus: 'S', resultMessage: 'success' },
    });
    expect(n).toEqual({
      paymentRequestId: 'att-1',
      paymentId: 'W123',
      resultStatus: 'S',
      resultCode: 'SUCCESS',
      status: 'paid',
      amount: { minor: 500, currency: 'JPY' },
      paidAt: new Date('2024-01-01T04:00:05Z'),
    });
    expect(notifyDedupeKey(n)).toBe('W123:S');
  });

  it('F is failed; U is pending; the dedupe key falls back to the request id', () => {
    const f = parsePaymentNotify({
      paymentRequestId: 'att-1',
      paymentResult: { resultCode: 'USER_CANCEL', resultStatus: 'F' },
    });
    expect(f.status).toBe('failed');
    expect(notifyDedupeKey(f)).toBe('req:att-1:F');
    expect(parsePaymentNotify({ ...base, paymentResult: { resultStatus: 'U', resultCode: 'X' } }).status).toBe(
      'pending',
    );
  });

  it('reads the v1/TNG paymentStatus variant', () => {
    expect(parsePaymentNotify({ ...base, paymentStatus: 'SUCCESS' }).status).toBe('paid');
    expect(parsePaymentNotify({ ...base, paymentStatus: 'FAIL' }).status).toBe('failed');
  });

  it('refuses a missing request id, a missing result, a paid notify without amount, a malformed amount', () => {
    const result = { resultStatus: 'S', resultCode: 'SUCCESS' };
    expect(() => parsePaymentNotify({ paymentResult: result })).toThrow('paymentRequestId');
    expect(() => parsePaymentNotify({ paymentRequestId: 'a' })).toThrow('paymentResult');
    expect(() => parsePaymentNotify({ paymentRequestId: 'a', paymentResult: result })).toThrow('paymentAmount');
    expect(() =>
      parsePaymentNotify({ ...base, paymentAmount: { currency: 'JPY', value: '5.00' }, paymentResult: result }),
    ).toThrow('paymentAmount');
  });

  it('replies with the §3.6 JSON', () => {
    const ok = alipayPlusNotifyReply('accepted');
    expect(ok).toEqual({
      status: 200,
      contentType: 'application/json',
      body: '{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}',
    });
    const ko = alipayPlusNotifyReply('rejected');
    expect(ko.contentType).toBe('application/json');
    expect(ko.status).toBe(500);
    expect(JSON.parse(ko.body)).toEqual({
      result: { resultCode: 'PROCESS_FAIL', resultStatus: 'F', resultMessage: 'notification not accepted' },
    });
  });
});

describe('Alipay+ small readers', () => {
  it('maps pc and mobile to CASHIER', () => {
    expect(resolveAlipayPlusPayType('pc')).toBe('CASHIER');
    expect(resolveAlipayPlusPayType('mobile')).toBe('CASHIER');
    expect(resolveAlipayPlusPayType('CASHIER')).toBe('CASHIER');
    expect(resolveAlipayPlusPayType('JSAPI')).toBeUndefined();
  });

  it('reads headers case-insensitively', () => {
    expect(headerOf({ 'client-id': 'a' }, 'Client-Id')).toBe('a');
    expect(headerOf({ 'CLIENT-ID': 'b' }, 'client-id')).toBe('b');
    expect(headerOf({}, 'client-id')).toBeUndefined();
  });
});

describe('clientResultNextStep: a client result never marks an order paid', () => {
  it.each([
    // my.tradePay (§3.5)
    ['9000', 'poll', true],
    ['8000', 'poll', false],
    ['4000', 'choose_again', true],
    ['6001', 'retry', false],
    ['6002', 'poll', false],
    ['6004', 'poll', false],
    // PaymentService SPI (§3.9)
    ['1000', 'choose_again', true],
    ['1001', 'retry', false],
    ['1002', 'choose_again', true],
    ['1003', 'poll', false],
    ['1005', 'choose_again', true],
    ['2001', 'authorize_again', false],
  ])('%s -> next %s, checkFirst %s', (code, next, checkFirst) => {
    const step = clientResultNextStep(code);
    expect(step).toMatchObject({ next, checkFirst });
    expect(step?.meaning.length).toBeGreaterThan(0);
    expect(step?.next).not.toBe('done');
  });

  it.each(['', '99', '4', '9001', 'constructor', 'toString', '__proto__', ' 9000'])(
    'unknown code %p -> undefined',
    (code) => {
      expect(clientResultNextStep(code)).toBeUndefined();
    },
  );
});

describe('refund mapping (PROTOCOLS-REFUNDS-BILLS.md §3.11–§3.13)', () => {
  const r = (resultStatus: string, resultCode: string): Record<string, unknown> => ({
    result: { resultStatus, resultCode, resultMessage: 'x' },
  });

  it('refund: S = success with refundId/refundTime (offset without a colon); F = failed; U and no result = pending', () => {
    expect(mapRefundAnswer({ ...r('S', 'SUCCESS'), refundId: 'RID', refundTime: '2019-08-27T14:12:27+0800' })).toEqual({
      kind: 'snapshot',
      snapshot: {
        status: 'success',
        raw: 'S/SUCCESS',
        channelRefundNo: 'RID',
        finishedAt: new Date('2019-08-27T06:12:27Z'),
      },
    });
    expect(mapRefundAnswer(r('F', 'REFUND_AMOUNT_EXCEED'))).toEqual({
      kind: 'snapshot',
      snapshot: { status: 'failed', failureCode: 'REFUND_AMOUNT_EXCEED', raw: 'F/REFUND_AMOUNT_EXCEED' },
    });
    expect(mapRefundAnswer(r('U', 'UNKNOWN_EXCEPTION'))).toMatchObject({ snapshot: { status: 'pending' } });
    expect(mapRefundAnswer({})).toMatchObject({ snapshot: { status: 'pending', raw: 'no result' } });
    expect(mapRefundAnswer(r('X', 'NEW'))).toMatchObject({ snapshot: { status: 'pending' } });
    expect(mapRefundAnswer(r('F', 'INVALID_SIGNATURE')).kind).toBe('error');
  });

  it('inquiryRefund: REFUND_NOT_EXIST = not_found; refundStatus SUCCESS/FAIL/other; other F and U are errors', () => {
    expect(mapInquiryRefund(r('F', 'REFUND_NOT_EXIST'))).toMatchObject({ snapshot: { status: 'not_found' } });
    expect(mapInquiryRefund(r('U', 'UNKNOWN_EXCEPTION')).kind).toBe('error');
    expect(mapInquiryRefund(r('F', 'PARAM_ILLEGAL')).kind).toBe('error');
    expect(
      mapInquiryRefund({
        ...r('S', 'SUCCESS'),
        refundStatus: 'SUCCESS',
        refundAmount: { currency: 'USD', value: '100' },
      }),
    ).toMatchObject({ snapshot: { status: 'success', amount: { minor: 100, currency: 'USD' } } });
    expect(
      mapInquiryRefund({ ...r('S', 'SUCCESS'), refundStatus: 'FAIL', refundFailReason: 'NO_MONEY' }),
    ).toMatchObject({
      snapshot: { status: 'failed', failureCode: 'NO_MONEY' },
    });
    expect(mapInquiryRefund({ ...r('S', 'SUCCESS'), refundStatus: 'CANCELLED_MAYBE' })).toMatchObject({
      snapshot: { status: 'pending', raw: 'CANCELLED_MAYBE' },
    });
  });

  it('notifyRefund: recognised by notifyType or a refund id without paymentResult; parsed strictly', () => {
    expect(isRefundNotifyBody({ notifyType: 'REFUND_RESULT' })).toBe(true);
    expect(isRefundNotifyBody({ refundRequestId: 'R1', refundStatus: 'SUCCESS' })).toBe(true);
    expect(isRefundNotifyBody({ paymentRequestId: 'P', paymentResult: { resultStatus: 'S' } })).toBe(false);
    const ok = parseRefundNotify({
      notifyType: 'REFUND_RESULT',
      refundStatus: 'FAIL',
      refundRequestId: 'R1',
      refundId: 'W1',
      refundFailReason: 'REFUND_WINDOW_EXCEED',
      refundAmount: { currency: 'USD', value: '100' },
    });
    expect(ok.news).toEqual({
      refundId: 'R1',
      status: 'failed',
      failureCode: 'REFUND_WINDOW_EXCEED',
      channelRefundNo: 'W1',
      amount: { minor: 100, currency: 'USD' },
    });
    expect(ok.dedupeKey).toBe('refund:W1:FAIL');
    expect(() => parseRefundNotify({ refundRequestId: 'R1', refundStatus: 'WHATEVER' })).toThrow('refundStatus');
    expect(() => parseRefundNotify({ refundStatus: 'SUCCESS' })).toThrow('refundRequestId');
    expect(() =>
      parseRefundNotify({
        refundRequestId: 'R1',
        refundStatus: 'SUCCESS',
        refundAmount: { currency: 'USD', value: '1.5' },
      }),
    ).toThrow('refundAmount');
  });
});
