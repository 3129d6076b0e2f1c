import { randomBytes } from 'node:crypto';
import { Controller, Get, Inject, Param, Post, Req, Res, applyDecorators } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiOkResponse, ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply as Response, FastifyRequest as Request } from 'fastify';
import type { VNode } from 'preact';
import { render } from 'preact-render-to-string';
import { PayError } from '#common';
import { APP_CONFIG, type AppConfig } from '#config';
import { type Actor, AdminService } from '#payments';
import { requestIdOf } from '../http/request-id.js';
import { ADMIN_CSS, ADMIN_JS, HTMX_JS } from './admin-assets.js';
import { type AdminSession, AdminSessions, cookieOf, sameOrigin } from './admin-session.js';
import { type Lang, langOf, translator } from './views/i18n.js';
import type { PageContext } from './views/layout.js';
import {
  AuditPage,
  type ConfirmAction,
  DashboardPage,
  LoginPage,
  MessagePage,
  type OrderFilters,
  OrderPage,
  OrdersPage,
} from './views/pages.js';

const LANG_COOKIE = 'pb_lang';
const HTML = { type: 'string' };
/** An HTML form post (urlencoded) with these string fields: `required` ones and `optional` ones. */
const ApiForm = (required: string[], optional: string[] = []): MethodDecorator =>
  applyDecorators(
    ApiConsumes('application/x-www-form-urlencoded'),
    ApiBody({
      schema: {
        type: 'object',
        required,
        properties: Object.fromEntries([...required, ...optional].map((f) => [f, { type: 'string' }])),
      },
    }),
  );
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v.slice(0, 256) : undefined);

/** Messages for the result of an action (by code: nothing from the request is echoed). */
const DONE: Record<string, string> = {
  check: 'Checked with the channel.',
  cancel: 'Order cancelled.',
  refund: 'Refund requested.',
  resend: 'Event queued for delivery again.',
};

/**
 * The console's web page (/admin): server-rendered TSX, htmx from node_modules, no inline script.
 * Every POST needs a session, the session's CSRF token and a same-origin Origin/Referer; the cookie is
 * SameSite=Strict on top. Actions go through AdminService, so they are audited like the API's.
 */
@ApiTags('admin-console')
@ApiProduces('text/html')
@Controller('admin')
export class AdminWebController {
  constructor(
    private readonly admin: AdminService,
    private readonly sessions: AdminSessions,
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
  ) {}

  @Get('assets/htmx.min.js')
  @ApiOperation({ summary: 'htmx, served from node_modules' })
  @ApiProduces('application/javascript')
  @ApiOkResponse({ description: 'htmx, served from node_modules', schema: { type: 'string' } })
  htmx(@Res() res: Response): void {
    void res.type('application/javascript').header('Cache-Control', 'public, max-age=86400').send(HTMX_JS);
  }

  @Get('assets/admin.js')
  @ApiOperation({ summary: 'The console script' })
  @ApiProduces('application/javascript')
  @ApiOkResponse({ description: 'The console script', schema: { type: 'string' } })
  js(@Res() res: Response): void {
    void res.type('application/javascript').header('Cache-Control', 'public, max-age=3600').send(ADMIN_JS);
  }

  @Get('assets/admin.css')
  @ApiOperation({ summary: 'The console styles' })
  @ApiProduces('text/css')
  @ApiOkResponse({ description: 'The console styles', schema: { type: 'string' } })
  css(@Res() res: Response): void {
    void res.type('text/css').header('Cache-Control', 'public, max-age=3600').send(ADMIN_CSS);
  }

  @Get()
  @ApiOperation({ summary: 'To the order list, or to the sign-in page without a session' })
  @ApiResponse({ status: 303, description: 'To /admin/orders or /admin/login' })
  home(@Req() req: Request, @Res() res: Response): void {
    void res.redirect(this.sessions.read(req) ? '/admin/orders' : '/admin/login', 303);
  }

  @Get('login')
  @ApiOperation({ summary: 'Sign-in page (an API key of role viewer, operator or admin)' })
  @ApiOkResponse({ description: 'HTML page', schema: HTML })
  @ApiResponse({ status: 303, description: 'Already signed in: to /admin/orders' })
  loginPage(@Req() req: Request, @Res() res: Response): void {
    if (this.sessions.read(req)) {
      void res.redirect('/admin/orders', 303);
      return;
    }
    this.html(req, res, 200, (ctx) => <LoginPage ctx={ctx} />);
  }

  @Post('login')
  @ApiOperation({ summary: 'Sign in with a console key: sets the signed session cookie' })
  @ApiResponse({ status: 303, description: 'Signed in: to /admin/orders' })
  @ApiResponse({ status: 401, description: 'HTML page: not a console key', schema: HTML })
  @ApiResponse({ status: 403, description: 'HTML page: not same-origin', schema: HTML })
  @ApiForm(['key'])
  login(@Req() req: Request, @Res() res: Response): void {
    if (!sameOrigin(req, this.cfg.publicBaseUrl)) return this.forbidden(req, res);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const key = typeof body['key'] === 'string' ? this.sessions.findKey(body['key'].trim()) : undefined;
    if (!key) {
      return this.html(req, res, 401, (ctx) => <LoginPage ctx={ctx} error={ctx.t('That key is not a console key.')} />);
    }
    this.sessions.start(res, req, key);
    void res.redirect('/admin/orders', 303);
  }

  @Post('logout')
  @ApiOperation({ summary: 'Sign out (CSRF token and same origin required)' })
  @ApiResponse({ status: 303, description: 'To /admin/login' })
  @ApiResponse({ status: 403, description: 'HTML page: CSRF or origin check failed', schema: HTML })
  @ApiForm(['_csrf'])
  logout(@Req() req: Request, @Res() res: Response): void {
    const s = this.sessions.read(req);
    if (s && (!sameOrigin(req, this.cfg.publicBaseUrl) || !this.sessions.csrfOk(s, this.field(req, '_csrf')))) {
      return this.forbidden(req, res, s);
    }
    this.sessions.end(res, req);
    void res.redirect('/admin/login', 303);
  }

  @Get('orders')
  @ApiOperation({ summary: 'Order list with filters' })
  @ApiOkResponse({ description: 'HTML page', schema: HTML })
  @ApiResponse({ status: 400, description: 'HTML page with the filter error', schema: HTML })
  @ApiResponse({ status: 303, description: 'No session: to /admin/login' })
  async orders(@Req() req: Request, @Res() res: Response): Promise<void> {
    const s = this.session(req, res);
    if (!s) return;
    const q = query(req);
    const filters: OrderFilters = {
      status: str(q['status']),
      channel: str(q['channel']),
      q: str(q['q']),
      from: str(q['from']),
      to: str(q['to']),
      minAmount: str(q['minAmount']),
      maxAmount: str(q['maxAmount']),
    };
    const cursor = str(q['cursor']);
    let page: Awaited<ReturnType<AdminService['searchOrders']>> = { items: [], nextCursor: null };
    let error: string | undefined;
    try {
      page = await this.admin.searchOrders({ ...filters, to: endOfDay(filters.to), cursor, limit: 25 });
    } catch (err) {
      if (!(err instanceof PayError)) throw err;
      error = err.message;
    }
    this.html(
      req,
      res,
      error ? 400 : 200,
      (ctx) => (
        <OrdersPage
          ctx={ctx}
          filters={filters}
          channels={this.admin.channels()}
          items={page.items}
          nextCursor={page.nextCursor}
          cursor={cursor}
          error={error}
        />
      ),
      s,
    );
  }

  @Get('orders/:orderId')
  @ApiOperation({ summary: 'The order detail and timeline, with the actions the role may take' })
  @ApiOkResponse({ description: 'HTML page', schema: HTML })
  @ApiResponse({ status: 404, description: 'HTML page: no such order', schema: HTML })
  @ApiResponse({ status: 303, description: 'No session: to /admin/login' })
  async order(@Req() req: Request, @Res() res: Response, @Param('orderId') orderId: string): Promise<void> {
    const s = this.session(req, res);
    if (!s) return;
    const done = str(query(req)['done']);
    // Only a code travels in the URL (a crafted link cannot put words on the page).
    const code = str(query(req)['error']);
    const failed = code && /^[A-Z_]{3,40}$/.test(code) ? `Refused: ${code}` : undefined;
    await this.orderPage(
      req,
      res,
      s,
      orderId,
      undefined,
      done && DONE[done] ? { ok: true, text: DONE[done] } : failed ? { ok: false, text: failed } : undefined,
    );
  }

  @Get('orders/:orderId/confirm')
  @ApiOperation({ summary: 'The order page asking to confirm an action (operator, admin)' })
  @ApiOkResponse({ description: 'HTML page', schema: HTML })
  @ApiResponse({ status: 403, description: 'HTML page: viewer', schema: HTML })
  @ApiResponse({ status: 303, description: 'Unknown action: to the order page; no session: to /admin/login' })
  async confirm(@Req() req: Request, @Res() res: Response, @Param('orderId') orderId: string): Promise<void> {
    const s = this.session(req, res);
    if (!s) return;
    if (s.key.role === 'viewer') return this.forbidden(req, res, s);
    const action = str(query(req)['action']) ?? '';
    let c: ConfirmAction;
    switch (action) {
      case 'check':
      case 'cancel':
        c = { kind: action };
        break;
      case 'refund':
        c = {
          kind: 'refund',
          amount: str(query(req)['amount']) ?? '',
          reason: str(query(req)['reason']) ?? '',
          // Chosen now, sent with the confirmation: a double submit is the same refund, not two.
          refundId: `RA${randomBytes(12).toString('hex')}`,
        };
        break;
      case 'resend':
        c = { kind: 'resend', eventId: str(query(req)['eventId']) ?? '' };
        break;
      default: {
        void res.redirect(`/admin/orders/${encodeURIComponent(orderId)}`, 303);
        return;
      }
    }
    await this.orderPage(req, res, s, orderId, c);
  }

  @Post('orders/:orderId/act')
  @ApiOperation({
    summary: 'Run a confirmed action (check, cancel, refund, resend), audited; CSRF token and same origin required',
  })
  @ApiResponse({
    status: 303,
    description: 'To the order page with ?done= or ?error=CODE; no session: to /admin/login',
  })
  @ApiResponse({ status: 403, description: 'HTML page: viewer, CSRF or origin check failed', schema: HTML })
  @ApiForm(['_csrf', 'action'], ['amount', 'reason', 'refundId', 'eventId'])
  async act(@Req() req: Request, @Res() res: Response, @Param('orderId') orderId: string): Promise<void> {
    const s = this.session(req, res);
    if (!s) return;
    if (!sameOrigin(req, this.cfg.publicBaseUrl) || !this.sessions.csrfOk(s, this.field(req, '_csrf'))) {
      return this.forbidden(req, res, s);
    }
    if (s.key.role === 'viewer') return this.forbidden(req, res, s);
    const actor: Actor = { name: s.key.name, role: s.key.role, requestId: requestIdOf(req) };
    const action = this.field(req, 'action');
    const back = `/admin/orders/${encodeURIComponent(orderId)}`;
    try {
      switch (action) {
        case 'check':
          await this.admin.check(actor, orderId);
          break;
        case 'cancel':
          await this.admin.cancel(actor, orderId);
          break;
        case 'refund':
          await this.admin.refund(actor, orderId, {
            amount: this.field(req, 'amount'),
            reason: this.field(req, 'reason') || undefined,
            refundId: this.field(req, 'refundId') || undefined,
          });
          break;
        case 'resend': {
          const eventId = this.field(req, 'eventId');
          const detail = await this.admin.order(orderId);
          if (!detail.events.some((e) => e.id === eventId))
            throw new PayError('EVENT_NOT_EXIST', 'no such event of this order');
          await this.admin.resend(actor, eventId);
          break;
        }
        default:
          throw new PayError('INVALID_PARAMS', 'unknown action');
      }
    } catch (err) {
      if (!(err instanceof PayError)) throw err;
      {
        void res.redirect(`${back}?error=${err.code}`, 303);
        return;
      }
    }
    void res.redirect(`${back}?done=${action}`, 303);
  }

  @Get('dashboard')
  @ApiOperation({ summary: 'Stats as charts' })
  @ApiOkResponse({ description: 'HTML page', schema: HTML })
  @ApiResponse({ status: 303, description: 'No session: to /admin/login' })
  async dashboard(@Req() req: Request, @Res() res: Response): Promise<void> {
    const s = this.session(req, res);
    if (!s) return;
    const from = str(query(req)['from']);
    const to = str(query(req)['to']);
    let stats;
    try {
      stats = await this.admin.stats({ from, to: endOfDay(to), bucket: 'day', tz: str(query(req)['tz']) });
    } catch (err) {
      if (!(err instanceof PayError)) throw err;
      stats = await this.admin.stats({ bucket: 'day' });
    }
    const volume = new Map<string, number>();
    for (const r of stats.items) volume.set(r.currency, (volume.get(r.currency) ?? 0) + r.paid);
    const currency = [...volume.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'CNY';
    this.html(req, res, 200, (ctx) => <DashboardPage ctx={ctx} stats={stats} currency={currency} />, s);
  }

  @Get('audit')
  @ApiOperation({ summary: 'The audit log (admin)' })
  @ApiOkResponse({ description: 'HTML page', schema: HTML })
  @ApiResponse({ status: 403, description: 'HTML page: not an admin', schema: HTML })
  @ApiResponse({ status: 303, description: 'No session: to /admin/login' })
  async audit(@Req() req: Request, @Res() res: Response): Promise<void> {
    const s = this.session(req, res);
    if (!s) return;
    if (s.key.role !== 'admin') return this.forbidden(req, res, s);
    const actor = str(query(req)['actor']);
    const orderId = str(query(req)['orderId']);
    let page;
    try {
      page = await this.admin.auditLog({ actor, orderId, cursor: str(query(req)['cursor']), limit: 50 });
    } catch (err) {
      if (!(err instanceof PayError)) throw err;
      page = await this.admin.auditLog({ actor, orderId, limit: 50 });
    }
    this.html(
      req,
      res,
      200,
      (ctx) => <AuditPage ctx={ctx} items={page.items} nextCursor={page.nextCursor} actor={actor} orderId={orderId} />,
      s,
    );
  }

  // ---- helpers ----

  private async orderPage(
    req: Request,
    res: Response,
    s: AdminSession,
    orderId: string,
    confirm?: ConfirmAction,
    flash?: { ok: boolean; text: string },
  ): Promise<void> {
    let order;
    try {
      order = await this.admin.order(orderId);
    } catch (err) {
      if (err instanceof PayError && err.code === 'ORDER_NOT_EXIST_ERROR') {
        return this.html(
          req,
          res,
          404,
          (ctx) => <MessagePage ctx={ctx} title={ctx.t('Not found.')} message={err.message} />,
          s,
        );
      }
      throw err;
    }
    const canAct = s.key.role === 'operator' || s.key.role === 'admin';
    this.html(
      req,
      res,
      200,
      (ctx) => <OrderPage ctx={ctx} order={order} canAct={canAct} confirm={confirm} flash={flash} />,
      s,
    );
  }

  /** The session, or a redirect to the sign-in page (htmx: a full-page redirect). */
  private session(req: Request, res: Response): AdminSession | undefined {
    const s = this.sessions.read(req);
    if (s) return s;
    if (req.method === 'GET') {
      if (req.headers['hx-request']) void res.header('HX-Redirect', '/admin/login');
      void res.redirect('/admin/login', 303);
    } else {
      this.forbidden(req, res);
    }
    return undefined;
  }

  private field(req: Request, name: string): string {
    const v = ((req.body ?? {}) as Record<string, unknown>)[name];
    return typeof v === 'string' ? v.slice(0, 512) : '';
  }

  private forbidden(req: Request, res: Response, s?: AdminSession): void {
    this.html(
      req,
      res,
      403,
      (ctx) => <MessagePage ctx={ctx} title="403" message={ctx.t('Your role may not do that.')} />,
      s,
    );
  }

  private html(req: Request, res: Response, status: number, page: (ctx: PageContext) => VNode, s?: AdminSession): void {
    const lang: Lang = langOf(req, cookieOf(req, LANG_COOKIE));
    if (query(req)['lang'] === lang) {
      void res.header('Set-Cookie', `${LANG_COOKIE}=${lang}; Path=/admin; SameSite=Strict; Max-Age=31536000`);
    }
    const here = req.url.replace(/([?&])lang=[a-z]+&?/, '$1').replace(/[?&]$/, '');
    const ctx: PageContext = {
      lang,
      t: translator(lang),
      who: s ? { name: s.key.name, role: s.key.role } : undefined,
      csrf: s?.csrf,
      here,
    };
    void res
      .code(status)
      .type('text/html; charset=utf-8')
      .header('Cache-Control', 'no-store')
      .header('Content-Security-Policy', CSP)
      .header('X-Frame-Options', 'DENY')
      .header('X-Content-Type-Options', 'nosniff')
      .header('Referrer-Policy', 'same-origin')
      .header('Vary', 'Cookie, Accept-Language')
      .send(`<!doctype html>${render(page(ctx))}`);
  }
}

/** The parsed query string (Fastify's querystring parser: strings, or arrays of them when repeated). */
function query(req: Request): Record<string, unknown> {
  return (req.query ?? {}) as Record<string, unknown>;
}

/** A bare `to` date means through the end of that day. */
function endOfDay(to: string | undefined): string | undefined {
  if (to === undefined || !/^\d{4}-\d\d-\d\d$/.test(to)) return to;
  const d = new Date(`${to}T00:00:00Z`);
  if (!Number.isFinite(d.getTime())) return to;
  return new Date(d.getTime() + 86_400_000).toISOString();
}
