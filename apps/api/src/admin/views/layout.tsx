import type { ComponentChildren } from 'preact';
import type { Lang, T } from './i18n.js';

export interface PageContext {
  readonly lang: Lang;
  readonly t: T;
  /** Signed-in key's name and role; undefined on the sign-in page. */
  readonly who?: { readonly name: string; readonly role: string };
  readonly csrf?: string;
  /** The path and query of this page, for the language switch. */
  readonly here: string;
}

export function Layout(props: {
  ctx: PageContext;
  title: string;
  active?: 'orders' | 'dashboard' | 'audit';
  children: ComponentChildren;
}) {
  const { ctx, title, active } = props;
  const { t, who } = ctx;
  const other = ctx.lang === 'zh' ? 'en' : 'zh';
  const sep = ctx.here.includes('?') ? '&' : '?';
  return (
    <html lang={ctx.lang === 'zh' ? 'zh-CN' : 'en'}>
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}' />
        <title>{`${title} · ${t('PayBridge console')}`}</title>
        <link rel="stylesheet" href="/admin/assets/admin.css" />
        <script src="/admin/assets/htmx.min.js" defer></script>
        <script src="/admin/assets/admin.js" defer></script>
      </head>
      <body>
        <header class="top">
          <span class="brand">{t('PayBridge console')}</span>
          {who && (
            <>
              <a href="/admin/orders" aria-current={active === 'orders' ? 'page' : undefined}>
                {t('Orders')}
              </a>
              <a href="/admin/dashboard" aria-current={active === 'dashboard' ? 'page' : undefined}>
                {t('Dashboard')}
              </a>
              {who.role === 'admin' && (
                <a href="/admin/audit" aria-current={active === 'audit' ? 'page' : undefined}>
                  {t('Audit log')}
                </a>
              )}
              <span class="muted" data-testid="who">
                {who.name} ({who.role})
              </span>
              <form method="post" action="/admin/logout">
                <input type="hidden" name="_csrf" value={ctx.csrf} />
                <button type="submit">{t('Sign out')}</button>
              </form>
            </>
          )}
          <a class="lang" href={`${ctx.here}${sep}lang=${other}`} lang={other === 'zh' ? 'zh-CN' : 'en'}>
            {other === 'zh' ? '中文' : 'English'}
          </a>
        </header>
        <main>
          <div id="flash" class="flash error" hidden></div>
          {props.children}
        </main>
      </body>
    </html>
  );
}

export function StatusBadge(props: { status: string; t: T }) {
  return <span class={`badge s-${props.status}`}>{props.status}</span>;
}

/** A time in UTC, short and unambiguous. */
export function When(props: { at: string | null }) {
  if (!props.at) return <span class="muted">—</span>;
  return <time dateTime={props.at}>{props.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>;
}
