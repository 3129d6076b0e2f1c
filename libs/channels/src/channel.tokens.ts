/** Injection token for the ChannelProvider[] the registry is built from. */
export const PAYMENT_CHANNELS = Symbol('PAYMENT_CHANNELS');
/** Injection token for the loaded channel instance configs (ChannelInstanceConfig[]). */
export const CHANNEL_INSTANCES = Symbol('CHANNEL_INSTANCES');
/** Injection token for the AlipayPlusTokenStore the registry lends Alipay+ instances (optional). */
export const ALIPAYPLUS_TOKEN_STORE = Symbol('ALIPAYPLUS_TOKEN_STORE');
