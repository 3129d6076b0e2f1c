/** Public face of the Alipay+ channel (re-exported by libs/channels/src/index.ts). */
export * from './alipayplus.signer.js';
export * from './alipayplus.tokens.js';
export * from './alipayplus.channel.js';
export * from './alipayplus.provider.js';
export {
  ALIPAYPLUS_PATHS,
  ALIPAYPLUS_PAY_TYPES,
  alipayPlusNotifyReply,
  clientResultNextStep,
  resolveAlipayPlusPayType,
  type AlipayPlusPayType,
  type ClientNextStep,
  type ClientResultStep,
} from './alipayplus.mapper.js';
