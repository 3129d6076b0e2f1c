export * from './channel.interface.js';
export * from './channel.tokens.js';
export * from './channel-registry.js';
export * from './http.js';
export * from './providers.js';
export { clientResultNextStep, type ClientNextStep, type ClientResultStep } from './alipayplus/index.js';
export {
  type AlipayPlusAuthorization,
  type AlipayPlusTokenStore,
  InMemoryAlipayPlusTokenStore,
} from './alipayplus/index.js';
