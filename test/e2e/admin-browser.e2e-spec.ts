import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { type ApiKey, apiKey } from '#config';
import { API_KEYS, KEYS, auth, bootApp, freePort, type TestApp, uniqueOrderId, until } from '../utils/test-app.js';

/**
 * Issue 12: the console at /admin in a real headless Chromium (Debian's, driven by playwright-core):
 * sign in, search, open an order, refund part of it, watch the timeline grow, sign out; a viewer sees
 * no actions; a forged cross-site POST is refused. Screenshots go to docs/img/.
 */

const OPERATOR = 'test-olivia-operator-key-0123456789';
const KEYS_WITH_NAMES: ApiKey[] = [...API_KEYS, apiKey('operator', OPERATOR, 'olivia')];
const IMG = join(process.cwd(), 'docs', 'img');
const HOSTILE = `<script>alert("x")</script><img src=x onerror=alert(1)> 会员 «VIP» & co`;

describe('admin console in a browser', () => {
  let t: TestApp;
  let http: ReturnType<typeof request>;
  let db: DataSource;
  let browser: Browser;
  let evil: Server;
  let evilUrl: string;
  const dialogs: string[] = [];

  beforeAll(async () => {
    t = await bootApp({ apiKeys: KEYS_WITH_NAMES });
    http = request(t.app.getHttpServer());
    db = t.app.get(DataSource);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    // A cross-site page that posts to the console as soon as it loads (another origin: another port).
    const port = await freePort();
    evilUrl = `http://localhost:${port}`;
    evil = createServer((req, res) => {
      const target = decodeURIComponent((req.url ?? '/').slice(1));
      res.writeHead(200, { 'Content-Type': 'text/html' }).end(
        `<!doctype html><form id="f" method="post" action="${target}">
           <input name="action" value="cancel"><input name="_csrf" value="guess"></form>
         <script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((r) => evil.listen(port, '127.0.0.1', r));
    mkdirSync(IMG, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    evil?.close();
    await t?.close();
  });

  async function newOrder(subject: string, amount: string): Promise<string> {
    const orderId = uniqueOrderId('BR');
    await http.post('/api/v1/orders').set(auth()).send({ orderId, subject, amount }).expect(201);
    return orderId;
  }

  async function paidOrder(subject: string, amount: string): Promise<string> {
    const orderId = await newOrder(subject, amount);
    await http
      .post(`/api/v1/orders/${orderId}/pay`)
      .set(auth())
      .send({ channel: 'pays.AliPayType', payType: 'pc' })
      .expect(200);
    t.sandbox!.alipay.scan(orderId);
    await t.sandbox!.alipay.pay(orderId);
    await until(async () => {
      const r = await http.get(`/api/v1/orders/${orderId}`).set(auth());
      return (r.body as { status: string }).status === 'success' ? true : undefined;
    });
    return orderId;
  }

  async function signIn(key: string): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-US' });
    const page = await ctx.newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(`${t.baseUrl}/admin`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await page.fill('input[name=key]', key);
    await page.click('button[type=submit]');
    await page.waitForURL('**/admin/orders');
    return page;
  }

  it('an operator signs in, searches, opens an order, refunds part of it, sees the timeline grow, signs out', async () => {
    for (let i = 0; i < 4; i++) await paidOrder(`月度会员 Monthly plan #${i}`, `${19 + i}.90`);
    await newOrder('Unpaid 未支付 order', '5.00');
    const orderId = await paidOrder(HOSTILE, '10.00');

    const page = await signIn(OPERATOR);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'pb_admin');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/admin' });
    expect(session!.value).not.toContain(OPERATOR);
    await expect(page.locator('[data-testid=who]').textContent()).resolves.toContain('olivia');
    await page.screenshot({ path: join(IMG, 'admin-orders.png'), fullPage: false });

    // Search by orderId prefix: htmx swaps the results in.
    await page.fill('input[name=q]', orderId.slice(0, 12));
    await page.press('input[name=q]', 'Enter');
    await until(async () => ((await page.locator('[data-testid=orders] tbody tr').count()) === 1 ? true : undefined));
    await page.click(`a[href="/admin/orders/${orderId}"]`);
    await page.waitForURL(`**/admin/orders/${orderId}`);

    // Text from outside is shown as text, never run.
    expect(await page.locator('[data-testid=subject]').textContent()).toBe(HOSTILE);
    expect(dialogs).toEqual([]);

    // The refund form shows what is left; a confirmation comes before anything happens.
    expect(await page.locator('[data-testid=refund-form]').textContent()).toContain('10.00');
    const before = await page.locator('[data-testid=timeline] li').count();
    await page.fill('[data-testid=refund-form] input[name=amount]', '2.50');
    await page.fill('[data-testid=refund-form] input[name=reason]', '部分退款 partial');
    await page.click('[data-testid=refund-form] button[type=submit]');
    await page.waitForSelector('[data-testid=confirm-form]');
    expect(await page.locator('[data-testid=confirm-form]').textContent()).toContain('2.50');
    expect(Number((await db.query(`SELECT count(*) AS n FROM refunds WHERE order_id = $1`, [orderId]))[0].n)).toBe(0);
    await page.click('[data-testid=confirm-form] button[type=submit]');
    await page.waitForURL(`**/admin/orders/${orderId}?done=refund`);
    expect(await page.locator('[data-testid=flash]').textContent()).toContain('Refund requested');

    // The timeline grows: the refund request and the audit entry now, the refund's success as it lands.
    expect(await page.locator('[data-testid=timeline] li').count()).toBeGreaterThan(before);
    await page.waitForFunction(
      () => /refund RA[0-9a-f]+ succeeded/.test(document.querySelector('[data-testid=timeline]')?.textContent ?? ''),
      undefined,
      { timeout: 20_000 },
    );
    expect(await page.locator('[data-testid=refundable]').textContent()).toContain('7.50');
    const [audit] = await db.query(`SELECT actor, action, outcome FROM audit_log WHERE order_id = $1`, [orderId]);
    expect(audit).toEqual({ actor: 'olivia', action: 'refund.create', outcome: 'ok' });
    await page.screenshot({ path: join(IMG, 'admin-order.png'), fullPage: true });

    await page.goto(`${t.baseUrl}/admin/dashboard`);
    expect(await page.locator('svg.chart').count()).toBe(3);
    await page.screenshot({ path: join(IMG, 'admin-dashboard.png'), fullPage: true });

    // Phone width: nothing overflows the page sideways.
    await page.setViewportSize({ width: 390, height: 800 });
    await page.goto(`${t.baseUrl}/admin/orders/${orderId}`);
    const overflow = await page.evaluate(() => {
      const wide = [...document.querySelectorAll('body *')]
        .filter((e) => !e.closest('.table-wrap') && e.getBoundingClientRect().right > window.innerWidth + 1)
        .map((e) => `${e.tagName}.${e.className}`);
      return { by: document.documentElement.scrollWidth - window.innerWidth, wide: wide.slice(0, 5) };
    });
    expect(overflow).toEqual({ by: 0, wide: [] });

    // Chinese: the page says so, and reads as Chinese.
    await page.goto(`${t.baseUrl}/admin/orders?lang=zh`);
    expect(await page.getAttribute('html', 'lang')).toBe('zh-CN');
    expect(await page.locator('h1').textContent()).toBe('订单');

    await page.click('header form button[type=submit]');
    await page.waitForURL('**/admin/login');
    await page.goto(`${t.baseUrl}/admin/orders`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await page.context().close();
  });

  it('a viewer sees the order but no action buttons, and cannot act', async () => {
    const orderId = await paidOrder('Viewer view', '3.00');
    const page = await signIn(KEYS.viewer);
    await page.goto(`${t.baseUrl}/admin/orders/${orderId}`);
    expect(await page.locator('[data-testid=timeline] li').count()).toBeGreaterThan(0);
    expect(await page.locator('#action-panel').count()).toBe(0);
    expect(await page.locator('text=Resend event').count()).toBe(0);
    expect(await page.locator('a[href="/admin/audit"]').count()).toBe(0);
    const confirm = await page.goto(`${t.baseUrl}/admin/orders/${orderId}/confirm?action=refund&amount=1.00`);
    expect(confirm!.status()).toBe(403);
    const audit = await page.goto(`${t.baseUrl}/admin/audit`);
    expect(audit!.status()).toBe(403);
    await page.context().close();
  });

  it('the service key cannot sign in', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${t.baseUrl}/admin/login`);
    await page.fill('input[name=key]', KEYS.service);
    await page.click('button[type=submit]');
    expect(await page.locator('[role=alert]').textContent()).toContain('not a console key');
    expect((await ctx.cookies()).find((c) => c.name === 'pb_admin')).toBeUndefined();
    await ctx.close();
  });

  it('a forged cross-site POST is refused and changes nothing', async () => {
    const orderId = await newOrder('CSRF target', '8.00');
    const page = await signIn(OPERATOR);
    const target = `${t.baseUrl}/admin/orders/${orderId}/act`;
    // 1. A page on another origin submits a form to the console: SameSite=Strict keeps the cookie
    //    home and the Origin is foreign.
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === target),
      page.goto(`${evilUrl}/${encodeURIComponent(target)}`),
    ]);
    expect(response.status()).toBe(403);
    // 2. With the session cookie but a foreign Origin, or without the session's token: still refused.
    const foreign = await page.request.post(target, {
      form: { action: 'cancel', _csrf: 'guess' },
      headers: { Origin: evilUrl },
      maxRedirects: 0,
    });
    expect(foreign.status()).toBe(403);
    const noToken = await page.request.post(target, {
      form: { action: 'cancel' },
      headers: { Origin: t.baseUrl },
      maxRedirects: 0,
    });
    expect(noToken.status()).toBe(403);
    const order = await http.get(`/api/v1/orders/${orderId}`).set(auth());
    expect(order.body.status).toBe('wait');
    expect(Number((await db.query(`SELECT count(*) AS n FROM audit_log WHERE order_id = $1`, [orderId]))[0].n)).toBe(0);
    await page.context().close();
  });
});
