import request from 'supertest';
import { auth, bootApp, type TestApp, uniqueOrderId, until } from '../utils/test-app.js';

describe('smoke', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await bootApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it.each([['pays.AliPayType'], ['pays.WechatPayType']])('pays an order through %s', async (channel) => {
    const http = request(t.app.getHttpServer());
    const orderId = uniqueOrderId();
    await http.post('/api/v1/orders').set(auth()).send({ orderId, subject: 'Smoke', amount: '1.23' }).expect(201);
    const pay = await http.post(`/api/v1/orders/${orderId}/pay`).set(auth()).send({ channel, payType: 'pc' });
    expect(pay.status).toBe(200);
    expect(pay.body.qrCode).toMatch(/^data:image\/png;base64,/);
    if (channel === 'pays.AliPayType') {
      t.sandbox!.alipay.scan(orderId);
      await t.sandbox!.alipay.pay(orderId);
    } else await t.sandbox!.wechatpay.pay(orderId);
    const paid = await until(async () => {
      const r = await http.get(`/api/v1/orders/${orderId}`).set(auth());
      return r.body.status === 'success' ? r.body : undefined;
    });
    expect(paid.channel).toMatch(/^pays\./);
  });

  it('serves getPayUrl and check through the seed facade, with the seeds argument names', async () => {
    const http = request(t.app.getHttpServer());
    const base = `/api/${t.config.appName}/pays/services/PaySvc`;
    const orderId = uniqueOrderId();
    await http.post(`${base}/create`).set(auth()).send({ orderId, subject: 'Facade pay', amount: '2.34' }).expect(200);
    const bad = await http
      .post(`${base}/getPayUrl`)
      .set(auth())
      .send({ orderId, fullName: 'pays.AliPayType', payType: 'pc', extra: 1 });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('INVALID_PARAMS');
    const missing = await http.post(`${base}/getPayUrl`).set(auth()).send({ orderId, fullName: 'pays.AliPayType' });
    expect(missing.status).toBe(400);
    const info = await http
      .post(`${base}/getPayUrl`)
      .set(auth())
      .send({ orderId, fullName: 'pays.AliPayType', payType: 'pc' });
    expect(info.status).toBe(200);
    expect(info.body).toMatchObject({ orderId, channel: 'pays.aliPayment', payType: 'PRE_PAY' });
    t.sandbox!.alipay.scan(orderId);
    t.sandbox!.alipay.setDropNotifies(true);
    try {
      await t.sandbox!.alipay.pay(orderId);
      const checked = await http.post(`${base}/check`).set(auth()).send({ orderId, fullName: 'pays.aliPayment' });
      expect(checked.status).toBe(200);
      expect(checked.body.status).toBe('success');
    } finally {
      t.sandbox!.alipay.setDropNotifies(false);
    }
  });
});
