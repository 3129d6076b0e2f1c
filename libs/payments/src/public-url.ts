import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '#config';
import type { ChannelType } from '#channels';

/**
 * The base URL channels are told to send notifies to: PUBLIC_BASE_URL, or (in development and tests)
 * the address the server ended up listening on, set once it listens.
 */
@Injectable()
export class PublicUrl {
  private listening: string | undefined;

  constructor(@Inject(APP_CONFIG) private readonly cfg: AppConfig) {}

  setListeningUrl(url: string): void {
    this.listening = url.replace(/\/+$/, '');
  }

  get(): string {
    const url = this.cfg.publicBaseUrl ?? this.listening;
    if (!url) throw new Error('PUBLIC_BASE_URL is not set and the server is not listening yet');
    return url;
  }

  /** Where a channel type sends payment notifies (API.md §6). */
  notifyUrl(type: ChannelType): string {
    switch (type) {
      case 'pays.AliPayType':
        return `${this.get()}/api/v1/notify/alipay`;
      case 'pays.WechatPayType':
        return `${this.get()}/api/v1/notify/wechatpay`;
      case 'pays.AlipayPlusType':
        return `${this.get()}/api/v1/notify/alipayplus`;
    }
  }

  /** Where a channel type sends refund news: WeChat on a route of its own, the others with payments. */
  refundNotifyUrl(type: ChannelType): string {
    return type === 'pays.WechatPayType' ? `${this.get()}/api/v1/notify/wechatpay/refund` : this.notifyUrl(type);
  }
}
