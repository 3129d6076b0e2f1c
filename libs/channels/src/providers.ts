import type { ChannelProvider } from './channel.interface.js';
import { AlipayProvider } from './alipay/alipay.provider.js';
import { AlipayPlusProvider } from './alipayplus/alipayplus.provider.js';
import { WechatPayProvider } from './wechatpay/wechatpay.provider.js';

/** The providers the app registers under PAYMENT_CHANNELS: one per channel type. */
export function channelProviders(): ChannelProvider[] {
  return [new AlipayProvider(), new WechatPayProvider(), new AlipayPlusProvider()];
}

export { AlipayProvider, AlipayPlusProvider, WechatPayProvider };
