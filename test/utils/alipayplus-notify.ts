import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChannelInstanceConfig } from '#channels';
import { AlipayPlusSimulator } from '#sandbox';

/**
 * Alipay+ notify helpers for the e2e suite (shared/design/PROTOCOLS.md §3.6, §3.8).
 *
 * The sandbox wallet of `bootApp()` (`pays.myWallet`) keeps its private key to itself and has no public
 * signing method, so a notify with another amount or currency cannot be signed genuinely for it. Instead
 * `startOwnWallet()` runs a second, real AlipayPlusSimulator on its own loopback server with keys this
 * file generates, and hands out the instance config (`pays.ownWallet`) that trusts it. Its notifies go
 * through exactly the same verification code as `pays.myWallet`'s; the only difference is that the test
 * holds the wallet's private key and can sign whatever body it likes.
 *
 * The signer below is written from PROTOCOLS.md §3.8, apart from both the channel's and the simulator's.
 */

export const NOTIFY_PATH = '/api/v1/notify/alipayplus';

/** `algorithm=RSA256,keyVersion=1,signature=<url-encoded base64 SHA256withRSA>` over §3.8's content. */
export function alipayPlusSignature(
  privateKey: KeyObject,
  clientId: string,
  method: string,
  uri: string,
  time: string,
  body: string,
): string {
  const content = `${method} ${uri}\n${clientId}.${time}.${body}`;
  const b64 = sign('sha256', Buffer.from(content, 'utf8'), privateKey).toString('base64');
  return `algorithm=RSA256,keyVersion=1,signature=${encodeURIComponent(b64)}`;
}

/** The signed headers of a notifyPayment POST to `path`, as a wallet sends them. */
export function signedNotifyHeaders(
  privateKey: KeyObject,
  clientId: string,
  body: string,
  path = NOTIFY_PATH,
  time = isoWithOffset(new Date()),
): Record<string, string> {
  return {
    'Content-Type': 'application/json; charset=UTF-8',
    'Client-Id': clientId,
    'Request-Time': time,
    Signature: alipayPlusSignature(privateKey, clientId, 'POST', path, time, body),
  };
}

export interface NotifyFields {
  readonly paymentRequestId: string;
  readonly paymentId: string;
  readonly currency: string;
  /** Minor units as a string, as on the wire ("1234" = 12.34 CNY). */
  readonly value: string;
  readonly resultStatus?: 'S' | 'F';
}

/** A compact notifyPayment body (§3.6). */
export function notifyBody(f: NotifyFields): string {
  const now = isoWithOffset(new Date());
  const paid = (f.resultStatus ?? 'S') === 'S';
  return JSON.stringify({
    paymentId: f.paymentId,
    paymentRequestId: f.paymentRequestId,
    paymentResult: paid
      ? { resultCode: 'SUCCESS', resultStatus: 'S', resultMessage: 'success' }
      : { resultCode: 'USER_CANCELLED', resultStatus: 'F', resultMessage: 'user_cancelled' },
    paymentAmount: { currency: f.currency, value: f.value },
    ...(paid ? { paymentTime: now } : {}),
    paymentCreateTime: now,
  });
}

/** notify_inbox.payload_sha256 of a request (NotifyService.record: sha256(body + "\n" + Signature)). */
export function inboxHash(body: string, signature: string): string {
  return createHash('sha256').update(body).update('\n').update(signature).digest('hex');
}

export interface OwnWallet {
  readonly simulator: AlipayPlusSimulator;
  readonly instance: ChannelInstanceConfig;
  readonly clientId: string;
  readonly walletPrivateKey: KeyObject;
  readonly merchantPrivateKey: KeyObject;
  /** Signed notify headers for `body`, as this wallet would send them. */
  signNotify(body: string, path?: string, time?: string): Record<string, string>;
  close(): Promise<void>;
}

/** A second Alipay+ wallet on its own loopback port, whose private key the test holds. */
export async function startOwnWallet(fullName = 'pays.ownWallet'): Promise<OwnWallet> {
  const merchant = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const wallet = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clientId = `OWN_${randomBytes(8).toString('hex').toUpperCase()}`;
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}/own-wallet`;
  const sim = new AlipayPlusSimulator({
    baseUrl,
    clientId,
    merchantPublicKey: merchant.publicKey,
    walletPrivateKey: wallet.privateKey,
    notifyRetryDelaysMs: [100, 200],
  });
  server.on('request', sim.listener); // a bare server: the simulator reads the full path itself
  const instance: ChannelInstanceConfig = {
    fullName,
    type: 'pays.AlipayPlusType',
    title: 'Alipay+ wallet (test-held keys)',
    isDefault: false,
    sandbox: true, // a simulator too: beside the sandbox's pays.myWallet, which stays the type's default
    config: {
      clientId,
      privateKey: merchant.privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'),
      walletPublicKey: wallet.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
      gatewayUrl: baseUrl,
    },
  };
  return {
    simulator: sim,
    instance,
    clientId,
    walletPrivateKey: wallet.privateKey,
    merchantPrivateKey: merchant.privateKey,
    signNotify: (body, path, time) => signedNotifyHeaders(wallet.privateKey, clientId, body, path, time),
    async close() {
      sim.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `2024-01-01T12:00:00+08:00`: the docs' Request-Time form. */
export function isoWithOffset(date: Date): string {
  const d = new Date(date.getTime() + 8 * 3600_000);
  return `${d.toISOString().slice(0, 19)}+08:00`;
}
