import type { AdminOrderDetail, AuditView, OrderView, StatsView } from '#payments';
import { Layout, type PageContext, StatusBadge, When } from './layout.js';
import { DailyCharts } from './charts.js';

export function LoginPage(props: { ctx: PageContext; error?: string }) {
  const { t } = props.ctx;
  return (
    <Layout ctx={props.ctx} title={t('Sign in')}>
      <div class="card login">
        <h1>{t('Sign in')}</h1>
        <p class="muted">{t('Sign in with an API key of role viewer, operator or admin.')}</p>
        {props.error && (
          <p class="flash error" role="alert">
            {props.error}
          </p>
        )}
        <form method="post" action="/admin/login">
          <label>
            {t('API key')}
            <input type="password" name="key" autoComplete="off" required autoFocus />
          </label>
          <p>
            <button type="submit">{t('Sign in')}</button>
          </p>
        </form>
      </div>
    </Layout>
  );
}

export function MessagePage(props: { ctx: PageContext; title: string; message: string }) {
  return (
    <Layout ctx={props.ctx} title={props.title}>
      <div class="card">
        <h1>{props.title}</h1>
        <p>{props.message}</p>
        <a href="/admin/orders">{props.ctx.t('Orders')}</a>
      </div>
    </Layout>
  );
}

export interface OrderFilters {
  status?: string;
  channel?: string;
  q?: string;
  from?: string;
  to?: string;
  minAmount?: string;
  maxAmount?: string;
}

export function OrdersPage(props: {
  ctx: PageContext;
  filters: OrderFilters;
  channels: string[];
  items: OrderView[];
  nextCursor: string | null;
  cursor?: string;
  error?: string;
}) {
  const { t } = props.ctx;
  const f = props.filters;
  const qs = (extra: Record<string, string>) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...f, ...extra })) if (v) p.set(k, v);
    return `/admin/orders?${p.toString()}`;
  };
  const swap = { 'hx-target': '#results', 'hx-select': '#results', 'hx-swap': 'outerHTML', 'hx-push-url': 'true' };
  return (
    <Layout ctx={props.ctx} title={t('Orders')} active="orders">
      <h1>{t('Orders')}</h1>
      <form
        class="card filters"
        method="get"
        action="/admin/orders"
        hx-get="/admin/orders"
        hx-trigger="submit, change"
        {...swap}
      >
        <label class="wide">
          {t('Search')}
          <input type="search" name="q" value={f.q ?? ''} placeholder={t('Order ID, subject or trade number')} />
        </label>
        <label>
          {t('Status')}
          <select name="status">
            <option value="">{t('Any')}</option>
            {['wait', 'success', 'close', 'timeout'].map((s) => (
              <option value={s} selected={f.status === s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('Channel')}
          <select name="channel">
            <option value="">{t('Any')}</option>
            {props.channels.map((c) => (
              <option value={c} selected={f.channel === c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('From')}
          <input type="date" name="from" value={f.from ?? ''} />
        </label>
        <label>
          {t('To')}
          <input type="date" name="to" value={f.to ?? ''} />
        </label>
        <label>
          {t('Min amount')}
          <input name="minAmount" inputMode="decimal" value={f.minAmount ?? ''} size={8} />
        </label>
        <label>
          {t('Max amount')}
          <input name="maxAmount" inputMode="decimal" value={f.maxAmount ?? ''} size={8} />
        </label>
        <div>
          <button type="submit">{t('Filter')}</button> <a href="/admin/orders">{t('Clear')}</a>
        </div>
      </form>
      <section id="results">
        {props.error && <p class="flash error">{props.error}</p>}
        <div class="table-wrap">
          <table data-testid="orders">
            <thead>
              <tr>
                <th>{t('Order ID')}</th>
                <th>{t('Subject')}</th>
                <th class="num">{t('Amount')}</th>
                <th>{t('Status')}</th>
                <th class="hide-narrow">{t('Channel')}</th>
                <th class="hide-narrow">{t('Created')}</th>
              </tr>
            </thead>
            <tbody>
              {props.items.map((o) => (
                <tr>
                  <td class="mono">
                    <a href={`/admin/orders/${encodeURIComponent(o.orderId)}`}>{o.orderId}</a>
                  </td>
                  <td class="subject">{o.subject}</td>
                  <td class="num">
                    {o.amount} {o.currency}
                    {o.refundedAmount !== '0.00' && o.refundStatus !== 'none' && (
                      <div class="muted">−{o.refundedAmount}</div>
                    )}
                  </td>
                  <td>
                    <StatusBadge status={o.status} t={t} />
                  </td>
                  <td class="hide-narrow">{o.channel ?? ''}</td>
                  <td class="hide-narrow">
                    <When at={o.createdAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {props.items.length === 0 && <p class="muted">{t('No orders match.')}</p>}
        <nav class="paging">
          {props.cursor && (
            <a href={qs({})} hx-get={qs({})} {...swap}>
              {t('First page')}
            </a>
          )}
          {props.nextCursor && (
            <a href={qs({ cursor: props.nextCursor })} hx-get={qs({ cursor: props.nextCursor })} {...swap} rel="next">
              {t('Next page')} →
            </a>
          )}
        </nav>
      </section>
    </Layout>
  );
}

export type ConfirmAction =
  | { kind: 'check' }
  | { kind: 'cancel' }
  | { kind: 'refund'; amount: string; reason: string; refundId: string }
  | { kind: 'resend'; eventId: string };

export function OrderPage(props: {
  ctx: PageContext;
  order: AdminOrderDetail;
  canAct: boolean;
  confirm?: ConfirmAction;
  flash?: { ok: boolean; text: string };
}) {
  const { ctx, order: o, canAct } = props;
  const { t } = ctx;
  const base = `/admin/orders/${encodeURIComponent(o.orderId)}`;
  const panel = { 'hx-target': '#action-panel', 'hx-select': '#action-panel', 'hx-swap': 'outerHTML' };
  return (
    <Layout ctx={ctx} title={o.orderId} active="orders">
      <h1>
        <span class="mono">{o.orderId}</span> <StatusBadge status={o.status} t={t} />
      </h1>
      {props.flash && (
        <p class={props.flash.ok ? 'flash' : 'flash error'} role="status" data-testid="flash">
          {props.flash.text}
        </p>
      )}
      <div class="card">
        <dl class="kv">
          <dt>{t('Subject')}</dt>
          <dd data-testid="subject">{o.subject}</dd>
          <dt>{t('Amount')}</dt>
          <dd>
            {o.amount} {o.currency}
          </dd>
          <dt>{t('Refunded')}</dt>
          <dd>
            {o.refundedAmount} {o.currency} ({o.refundStatus})
          </dd>
          <dt>{t('Left to refund')}</dt>
          <dd data-testid="refundable">
            {o.refundableAmount} {o.currency}
          </dd>
          <dt>{t('Channel')}</dt>
          <dd>{o.channel ?? '—'}</dd>
          <dt>{t('Created')}</dt>
          <dd>
            <When at={o.createdAt} />
          </dd>
          <dt>{t('Paid at')}</dt>
          <dd>
            <When at={o.payTime} />
          </dd>
          {o.metadata && (
            <>
              <dt>metadata</dt>
              <dd>
                <pre>{JSON.stringify(o.metadata, null, 2)}</pre>
              </dd>
            </>
          )}
        </dl>
      </div>

      {canAct && (
        <section id="action-panel" class={props.confirm ? 'card confirm' : 'card'}>
          <h2>{t('Actions')}</h2>
          {props.confirm ? (
            <form method="post" action={`${base}/act`} data-testid="confirm-form">
              <input type="hidden" name="_csrf" value={ctx.csrf} />
              <input type="hidden" name="action" value={props.confirm.kind} />
              {props.confirm.kind === 'refund' && (
                <>
                  <input type="hidden" name="amount" value={props.confirm.amount} />
                  <input type="hidden" name="reason" value={props.confirm.reason} />
                  <input type="hidden" name="refundId" value={props.confirm.refundId} />
                </>
              )}
              {props.confirm.kind === 'resend' && <input type="hidden" name="eventId" value={props.confirm.eventId} />}
              <p>
                <strong>{t('Are you sure?')}</strong> {describe(props.confirm, o, t)}
              </p>
              <div class="actions">
                <button type="submit" class={props.confirm.kind === 'check' ? '' : 'danger'} data-autofocus>
                  {t('Confirm')}
                </button>
                <a class="button secondary" href={base}>
                  {t('Back')}
                </a>
              </div>
            </form>
          ) : (
            <div class="actions">
              <form method="get" action={`${base}/confirm`} hx-get={`${base}/confirm`} {...panel}>
                <input type="hidden" name="action" value="check" />
                <button type="submit" class="secondary">
                  {t('Check with the channel')}
                </button>
              </form>
              {o.status === 'wait' && (
                <form method="get" action={`${base}/confirm`} hx-get={`${base}/confirm`} {...panel}>
                  <input type="hidden" name="action" value="cancel" />
                  <button type="submit" class="danger">
                    {t('Cancel order')}
                  </button>
                </form>
              )}
              {o.status === 'success' && o.refundableAmount !== '0.00' && !/^0\.0*$/.test(o.refundableAmount) && (
                <form
                  method="get"
                  action={`${base}/confirm`}
                  hx-get={`${base}/confirm`}
                  {...panel}
                  data-testid="refund-form"
                >
                  <input type="hidden" name="action" value="refund" />
                  <label>
                    {t('Refund')} ({t('Left to refund')}: {o.refundableAmount} {o.currency})
                    <input name="amount" inputMode="decimal" value={o.refundableAmount} required size={10} />
                  </label>
                  <label>
                    {t('Reason')}
                    <input name="reason" maxLength={256} />
                  </label>
                  <button type="submit" class="danger">
                    {t('Refund')}
                  </button>
                </form>
              )}
            </div>
          )}
        </section>
      )}

      <Timeline order={o} ctx={ctx} />

      <h2>{t('Attempts')}</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>{t('Channel')}</th>
              <th>payType</th>
              <th>{t('Status')}</th>
              <th class="num">{t('Amount')}</th>
              <th>trade no</th>
              <th>{t('Created')}</th>
            </tr>
          </thead>
          <tbody>
            {o.attempts.map((a) => (
              <tr>
                <td>{a.channel}</td>
                <td>{a.payType}</td>
                <td>
                  <StatusBadge status={a.status} t={t} />
                </td>
                <td class="num">{a.amount}</td>
                <td class="mono">{a.channelTradeNo ?? '—'}</td>
                <td>
                  <When at={a.createdAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      {o.refunds.length > 0 && (
        <>
          <h2>{t('Refunds')}</h2>
          <div class="table-wrap">
            <table data-testid="refunds">
              <thead>
                <tr>
                  <th>refundId</th>
                  <th class="num">{t('Amount')}</th>
                  <th>{t('Status')}</th>
                  <th>source</th>
                  <th>{t('Reason')}</th>
                  <th>{t('Created')}</th>
                </tr>
              </thead>
              <tbody>
                {o.refunds.map((r) => (
                  <tr>
                    <td class="mono">{r.refundId}</td>
                    <td class="num">{r.amount}</td>
                    <td>
                      <StatusBadge status={r.status} t={t} />
                    </td>
                    <td>{r.source}</td>
                    <td class="subject">{r.reason ?? ''}</td>
                    <td>
                      <When at={r.createdAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}

      <h2>{t('Received notifies')}</h2>
      {o.notifies.map((n) => (
        <details class="card">
          <summary>
            <When at={n.firstReceivedAt} /> {n.channel ?? n.channelType}:{' '}
            <span class={n.verdict === 'accepted' || n.verdict === 'applied' ? 'v-ok' : ''}>{n.verdict}</span>
            {n.receiveCount > 1 && <span class="muted"> ×{n.receiveCount}</span>}
          </summary>
          {n.verdictDetail && <p class="muted">{n.verdictDetail}</p>}
          <pre>{n.body}</pre>
        </details>
      ))}

      <h2>{t('Events')}</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>{t('Time')}</th>
              <th>type</th>
              <th>{t('Deliveries')}</th>
              {canAct && <th></th>}
            </tr>
          </thead>
          <tbody>
            {o.events.map((e) => (
              <tr>
                <td>
                  <When at={e.createdAt} />
                </td>
                <td>
                  {e.type}
                  <div class="muted mono">{e.id}</div>
                </td>
                <td>
                  {(e.deliveries ?? []).map((d) => (
                    <div>
                      <span
                        class={`badge s-${d.status === 'delivered' ? 'success' : d.status === 'failed' ? 'failed' : 'wait'}`}
                      >
                        {d.status}
                      </span>{' '}
                      <span class="mono">{d.endpoint}</span> <span class="muted">×{d.attempts}</span>
                    </div>
                  ))}
                </td>
                {canAct && (
                  <td>
                    <form method="get" action={`${base}/confirm`} hx-get={`${base}/confirm`} {...panel}>
                      <input type="hidden" name="action" value="resend" />
                      <input type="hidden" name="eventId" value={e.id} />
                      <button type="submit" class="secondary">
                        {t('Resend event')}
                      </button>
                    </form>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Layout>
  );
}

function describe(c: ConfirmAction, o: AdminOrderDetail, t: (s: string) => string): string {
  switch (c.kind) {
    case 'check':
      return `${t('Check with the channel')}: ${o.orderId}`;
    case 'cancel':
      return `${t('Cancel order')}: ${o.orderId}`;
    case 'refund':
      return `${t('Refund of')} ${c.amount} ${o.currency} (${t('Left to refund')}: ${o.refundableAmount} ${o.currency})${c.reason ? ` — ${c.reason}` : ''}`;
    case 'resend':
      return `${t('Resend event')}: ${c.eventId}`;
  }
}

/** The timeline; it reloads itself every few seconds (htmx), so refunds and notifies appear as they land. */
export function Timeline(props: { order: AdminOrderDetail; ctx: PageContext }) {
  const { order: o, ctx } = props;
  const url = `/admin/orders/${encodeURIComponent(o.orderId)}`;
  return (
    <section
      id="timeline"
      class="card"
      hx-get={url}
      hx-select="#timeline"
      hx-target="#timeline"
      hx-swap="outerHTML"
      hx-trigger="every 3s"
    >
      <h2>{ctx.t('Timeline')}</h2>
      <ol class="timeline" data-testid="timeline">
        {o.timeline.map((i) => (
          <li class={`k-${i.kind}`}>
            <When at={i.at} /> <strong>{i.title}</strong>
            {i.detail && <div class="muted subject">{i.detail}</div>}
          </li>
        ))}
      </ol>
    </section>
  );
}

export function DashboardPage(props: { ctx: PageContext; stats: StatsView; currency: string }) {
  const { ctx, stats } = props;
  const { t } = ctx;
  return (
    <Layout ctx={ctx} title={t('Dashboard')} active="dashboard">
      <h1>{t('Dashboard')}</h1>
      <form class="card filters" method="get" action="/admin/dashboard">
        <label>
          {t('From')}
          <input type="date" name="from" value={stats.from.slice(0, 10)} />
        </label>
        <label>
          {t('To')}
          <input type="date" name="to" value={stats.to.slice(0, 10)} />
        </label>
        <label>
          tz
          <input name="tz" value={stats.timeZone} />
        </label>
        <div>
          <button type="submit">{t('Filter')}</button>
        </div>
      </form>
      {stats.items.length === 0 ? (
        <p class="muted">{t('No data in this period.')}</p>
      ) : (
        <DailyCharts stats={stats} currency={props.currency} t={t} />
      )}
      <h2>{t('Orders')}</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>{t('Day')}</th>
              <th>{t('Channel')}</th>
              <th class="num">{t('created')}</th>
              <th class="num">{t('paid')}</th>
              <th class="num">{t('closed')}</th>
              <th class="num">{t('timed out')}</th>
              <th class="num">{t('Amount')}</th>
              <th class="num">{t('Refunded')}</th>
              <th class="num">{t('Conversion rate')}</th>
            </tr>
          </thead>
          <tbody>
            {stats.items.map((r) => (
              <tr>
                <td>{r.bucket.slice(0, stats.bucket === 'day' ? 10 : 16).replace('T', ' ')}</td>
                <td>{r.channel || '—'}</td>
                <td class="num">{r.created}</td>
                <td class="num">{r.paid}</td>
                <td class="num">{r.closed}</td>
                <td class="num">{r.timedOut}</td>
                <td class="num">
                  {r.paidAmount} {r.currency}
                </td>
                <td class="num">{r.refundedAmount}</td>
                <td class="num">{percent(r.conversionRate)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Layout>
  );
}

/** "0.4231" → "42.31%" by moving the point (no float). */
export function percent(rate: string): string {
  const [i = '0', f = ''] = rate.split('.');
  const digits = `${i}${f.padEnd(4, '0')}`.replace(/^0+(?=\d{3})/, '');
  return `${digits.slice(0, -2)}.${digits.slice(-2)}%`;
}

export function AuditPage(props: {
  ctx: PageContext;
  items: AuditView[];
  nextCursor: string | null;
  actor?: string;
  orderId?: string;
}) {
  const { ctx } = props;
  const { t } = ctx;
  const p = new URLSearchParams();
  if (props.actor) p.set('actor', props.actor);
  if (props.orderId) p.set('orderId', props.orderId);
  return (
    <Layout ctx={ctx} title={t('Audit log')} active="audit">
      <h1>{t('Audit log')}</h1>
      <form class="card filters" method="get" action="/admin/audit">
        <label>
          {t('Who')}
          <input name="actor" value={props.actor ?? ''} />
        </label>
        <label>
          {t('Order ID')}
          <input name="orderId" value={props.orderId ?? ''} />
        </label>
        <div>
          <button type="submit">{t('Filter')}</button>
        </div>
      </form>
      <div class="table-wrap">
        <table data-testid="audit">
          <thead>
            <tr>
              <th>{t('Time')}</th>
              <th>{t('Who')}</th>
              <th>{t('What')}</th>
              <th>{t('Order ID')}</th>
              <th>{t('Outcome')}</th>
              <th>{t('Request id')}</th>
              <th>
                {t('Before')} / {t('After')}
              </th>
            </tr>
          </thead>
          <tbody>
            {props.items.map((e) => (
              <tr>
                <td>
                  <When at={e.createdAt} />
                </td>
                <td>
                  {e.actor} <span class="muted">({e.role})</span>
                </td>
                <td>
                  {e.action}
                  {e.target && <div class="muted mono">{e.target}</div>}
                </td>
                <td class="mono">
                  {e.orderId && <a href={`/admin/orders/${encodeURIComponent(e.orderId)}`}>{e.orderId}</a>}
                </td>
                <td>{e.outcome}</td>
                <td class="mono">{e.requestId}</td>
                <td>
                  <details>
                    <summary>JSON</summary>
                    <pre>{JSON.stringify({ before: e.before, after: e.after }, null, 2)}</pre>
                  </details>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {props.nextCursor && (
        <nav class="paging">
          <a href={`/admin/audit?${p.toString()}${p.size ? '&' : ''}cursor=${encodeURIComponent(props.nextCursor)}`}>
            {t('Next page')} →
          </a>
        </nav>
      )}
    </Layout>
  );
}
