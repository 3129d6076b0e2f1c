import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { escapeHtml } from '../wechatpay/wechatpay.wire.js';

export type SignatureVerdict = 'valid' | 'bad signature' | 'too old' | 'unsigned';

export interface ReceivedWebhook {
  readonly eventId: string;
  readonly type: string;
  readonly orderId: string;
  readonly receivedAt: Date;
  readonly verdict: SignatureVerdict;
  readonly body: string;
}

export interface WebhookInboxOptions {
  /** The secrets the app signs with (WEBHOOK_SECRETS, or the one the sandbox generated). */
  readonly secrets: readonly string[];
  /** Events kept for the page, newest first. */
  readonly keep?: number;
  readonly now?: () => Date;
}

const MAX_BODY = 256 * 1024;
const TOLERANCE_SECONDS = 300;

/**
 * Checks `PayBridge-Signature` as a merchant would (docs/webhooks.md), written from the contract and
 * not from the app's signer: `t` within 300 s, one `v1` equal to HMAC-SHA256(secret, t + "." + body).
 */
export function verifyWebhookSignature(
  header: string | undefined,
  body: string,
  secrets: readonly string[],
  nowSeconds: number,
): SignatureVerdict {
  if (!header) return 'unsigned';
  const fields = header.split(',').map((p) => p.trim().split('='));
  const t = Number(fields.find(([k]) => k === 't')?.[1]);
  const given = fields.filter(([k, v]) => k === 'v1' && v && /^[0-9a-f]{64}$/.test(v)).map(([, v]) => v as string);
  if (!Number.isSafeInteger(t) || given.length === 0) return 'bad signature';
  const ok = secrets.some((secret) => {
    const want = createHmac('sha256', secret).update(`${t}.${body}`).digest();
    return given.some((v) => timingSafeEqual(Buffer.from(v, 'hex'), want));
  });
  if (!ok) return 'bad signature';
  return Math.abs(nowSeconds - t) > TOLERANCE_SECONDS ? 'too old' : 'valid';
}

/**
 * The sandbox's webhook inbox (`/sandbox/webhooks`): the app delivers its own events to `/receive` (added
 * as an endpoint in sandbox mode), and the page lists them with their signature verdict, so a new user
 * sees what a merchant's endpoint will get.
 */
export class WebhookInbox {
  private readonly received: ReceivedWebhook[] = [];
  private readonly keep: number;
  private readonly now: () => Date;

  constructor(private readonly opts: WebhookInboxOptions) {
    this.keep = opts.keep ?? 200;
    this.now = opts.now ?? (() => new Date());
  }

  get events(): readonly ReceivedWebhook[] {
    return this.received;
  }

  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'POST' && path === '/receive') {
      this.receive(req, res);
      return;
    }
    if (req.method === 'GET' && (path === '/' || path === '')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(this.page());
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
  };

  private receive(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        res.writeHead(413).end();
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      const body = Buffer.concat(chunks).toString('utf8');
      const header = req.headers['paybridge-signature'];
      const verdict = verifyWebhookSignature(
        Array.isArray(header) ? header[0] : header,
        body,
        this.opts.secrets,
        Math.floor(this.now().getTime() / 1000),
      );
      let parsed: { id?: unknown; type?: unknown; data?: { order?: { orderId?: unknown } } } = {};
      try {
        parsed = JSON.parse(body) as typeof parsed;
      } catch {
        /* shown as it came */
      }
      const text = (v: unknown): string => (typeof v === 'string' ? v : '?');
      this.received.unshift({
        eventId: text(parsed.id ?? req.headers['paybridge-event-id']),
        type: text(parsed.type),
        orderId: text(parsed.data?.order?.orderId),
        receivedAt: this.now(),
        verdict,
        body,
      });
      this.received.length = Math.min(this.received.length, this.keep);
      // A merchant answers 2xx only for what it could verify; the sandbox does the same.
      res.writeHead(verdict === 'valid' ? 200 : 400, { 'Content-Type': 'text/plain' }).end(verdict);
    });
  }

  private page(): string {
    const rows = this.received
      .map(
        (e) =>
          `<tr><td>${escapeHtml(e.receivedAt.toISOString())}</td><td><code>${escapeHtml(e.eventId)}</code></td>` +
          `<td>${escapeHtml(e.type)}</td><td>${escapeHtml(e.orderId)}</td>` +
          `<td class="${e.verdict === 'valid' ? 'ok' : 'bad'}">${escapeHtml(e.verdict)}</td>` +
          `<td><details><summary>body</summary><pre>${escapeHtml(e.body)}</pre></details></td></tr>`,
      )
      .join('');
    return (
      `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">` +
      `<title>Webhook inbox</title><style>body{font-family:sans-serif;margin:2rem}td,th{padding:.3rem .6rem;text-align:left;vertical-align:top}` +
      `.ok{color:#070}.bad{color:#b00}pre{white-space:pre-wrap;max-width:40rem}</style></head><body>` +
      `<p class="bad">PayBridge sandbox: the app's own webhooks, as a merchant endpoint receives them.</p>` +
      `<h1>Webhook inbox</h1><p>${this.received.length} received (newest first; this page refreshes every 5 s).</p>` +
      `<table id="events"><tr><th>received</th><th>event</th><th>type</th><th>order</th><th>signature</th><th></th></tr>${rows}</table>` +
      `</body></html>`
    );
  }
}
