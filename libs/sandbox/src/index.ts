export * from './sandbox.js';
export * from './alipay/alipay.simulator.js';
export * from './wechatpay/wechatpay.simulator.js';
export * from './alipayplus/alipayplus.simulator.js';
export * from './webhooks/webhook-inbox.js';
