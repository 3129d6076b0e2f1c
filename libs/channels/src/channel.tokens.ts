/** Injection token for the ChannelProvider[] the registry is built from. */
export const PAYMENT_CHANNELS = Symbol('PAYMENT_CHANNELS');
/** Injection token for the loaded channel instance configs (ChannelInstanceConfig[]). */
export const CHANNEL_INSTANCES = Symbol('CHANNEL_INSTANCES');
