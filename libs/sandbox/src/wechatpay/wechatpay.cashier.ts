import { escapeHtml } from './wechatpay.wire.js';

/** HTML of the simulated WeChat cashier (NATIVE code_url and MWEB mweb_url both land here). */

export interface CashierView {
  readonly outTradeNo: string;
  readonly subject: string;
  /** Already formatted, e.g. `12.34`. */
  readonly amount: string;
  readonly tradeType: string;
  readonly state: string;
  /** PNG data URL of the QR code of code_url. */
  readonly qrDataUrl: string;
  readonly refunds?: readonly { readonly outRefundNo: string; readonly amount: string; readonly status: string }[];
  /** MWEB redirect_url, carried through the forms. */
  readonly redirectUrl?: string;
}

const STYLE =
  'body{font-family:sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}' +
  '.amount{font-size:2rem;font-weight:bold}form{display:inline-block;margin-right:1rem}' +
  'button{font-size:1rem;padding:.5rem 1.5rem}.sandbox{color:#b00}';

function page(title: string, body: string): string {
  return (
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>` +
    `<p class="sandbox">WeChat Pay sandbox: no real money moves.</p>${body}</body></html>`
  );
}

export function renderCashierPage(v: CashierView): string {
  const no = encodeURIComponent(v.outTradeNo);
  const hidden = v.redirectUrl ? `<input type="hidden" name="redirect_url" value="${escapeHtml(v.redirectUrl)}">` : '';
  const forms =
    v.state === 'NOTPAY'
      ? `<form method="post" action="./${no}/pay">${hidden}<button type="submit" id="pay">Pay</button></form>` +
        `<form method="post" action="./${no}/abandon">${hidden}<button type="submit" id="abandon">Abandon</button></form>`
      : `<p id="state">This order is ${escapeHtml(v.state)}.</p>`;
  return page(
    'WeChat Pay cashier',
    `<h1 id="subject">${escapeHtml(v.subject)}</h1>` +
      `<p class="amount" id="amount">&yen;${escapeHtml(v.amount)}</p>` +
      `<p>Order <code id="out-trade-no">${escapeHtml(v.outTradeNo)}</code> (${escapeHtml(v.tradeType)})</p>` +
      `<img id="qr" alt="QR code" width="200" height="200" src="${escapeHtml(v.qrDataUrl)}">` +
      forms +
      (v.refunds && v.refunds.length > 0
        ? `<h2>Refunds</h2><ul id="refunds">${v.refunds
            .map(
              (r) =>
                `<li class="refund"><code>${escapeHtml(r.outRefundNo)}</code> &yen;${escapeHtml(r.amount)} ` +
                `<span class="refund-status">${escapeHtml(r.status)}</span></li>`,
            )
            .join('')}</ul>`
        : ''),
  );
}

export function renderResultPage(title: string, message: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1><p id="result">${escapeHtml(message)}</p>`);
}
