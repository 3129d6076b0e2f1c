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
});
