import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ChannelInstanceConfig } from '#channels';
import { createAlipaySandbox, type AlipaySimulator } from './alipay/alipay.simulator.js';
import { startWechatPaySandbox, type WechatPaySimulator } from './wechatpay/wechatpay.simulator.js';
import { createAlipayPlusSandbox, type AlipayPlusSimulator } from './alipayplus/alipayplus.simulator.js';
import { WebhookInbox } from './webhooks/webhook-inbox.js';

export interface SandboxMount {
  readonly path: string;
  readonly listener: (req: IncomingMessage, res: ServerResponse) => void;
}

export interface Sandbox {
  readonly instances: ChannelInstanceConfig[];
  readonly mounts: SandboxMount[];
  readonly alipay: AlipaySimulator;
  readonly wechatpay: WechatPaySimulator;
  readonly alipayplus: AlipayPlusSimulator;
  /** Where the WeChat simulator's mutual-TLS `/secapi/` listener runs (refunds), `https://127.0.0.1:<port>`. */
  readonly wechatSecapiUrl: string;
  readonly webhookInbox: WebhookInbox;
  /** Where the app delivers its events in sandbox mode (the inbox's receiver). */
  readonly webhookInboxUrl: string;
  close(): void;
}

export interface SandboxOptions {
  /** The public base URL of the api app that mounts the simulators under `/sandbox/...`. */
  readonly baseUrl: string;
  readonly notifyRetryDelaysMs?: number[];
  /** WeChat refuses closeorder in an order's first five minutes; tests shorten that. */
  readonly wechatMinCloseAgeMs?: number;
  /** The secrets the app signs webhooks with: the inbox verifies with them. */
  readonly webhookSecrets?: readonly string[];
}

/**
 * Sandbox mode (API.md §9): the three simulators with freshly generated keys, and the instances
 * `pays.aliPayment`, `pays.myWechatPay` and `pays.myWallet` configured against them. Async because the
 * WeChat simulator's refund API listens on its own loopback https port (mutual TLS with the client
 * certificate the sandbox issued to pays.myWechatPay).
 */
export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  if (process.env['NODE_ENV'] === 'production') throw new Error('the sandbox never runs with NODE_ENV=production');
  const base = opts.baseUrl.replace(/\/+$/, '');
  const retry = opts.notifyRetryDelaysMs ? { notifyRetryDelaysMs: opts.notifyRetryDelaysMs } : {};
  const alipay = createAlipaySandbox({ baseUrl: `${base}/sandbox/alipay`, ...retry });
  const wechatpay = await startWechatPaySandbox({
    baseUrl: `${base}/sandbox/wechatpay`,
    ...retry,
    ...(opts.wechatMinCloseAgeMs === undefined ? {} : { minCloseAgeMs: opts.wechatMinCloseAgeMs }),
  });
  const alipayplus = createAlipayPlusSandbox({ baseUrl: `${base}/sandbox/alipayplus`, ...retry });
  const webhookInbox = new WebhookInbox({ secrets: opts.webhookSecrets ?? [] });
  return {
    instances: [alipay.instance, wechatpay.instance, alipayplus.instance],
    mounts: [
      { path: '/sandbox/alipay', listener: alipay.simulator.listener },
      { path: '/sandbox/wechatpay', listener: wechatpay.simulator.listener },
      { path: '/sandbox/alipayplus', listener: alipayplus.simulator.listener },
      { path: '/sandbox/webhooks', listener: webhookInbox.listener },
    ],
    alipay: alipay.simulator,
    wechatpay: wechatpay.simulator,
    alipayplus: alipayplus.simulator,
    wechatSecapiUrl: wechatpay.secapi.url,
    webhookInbox,
    webhookInboxUrl: `${base}/sandbox/webhooks/receive`,
    close() {
      alipay.simulator.close();
      wechatpay.simulator.close();
      wechatpay.secapi.close();
      alipayplus.simulator.close();
    },
  };
}
