export * from './wechatpay.signer.js';
export * from './wechatpay.xml.js';
export * from './wechatpay.mapper.js';
export * from './wechatpay.channel.js';
export * from './wechatpay.provider.js';
