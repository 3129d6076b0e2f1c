import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import pg from 'pg';

/**
 * The bare baseline of bench/http.bench.ts, run as its own process: `node:http` + `pg` doing what the
 * app's create and get order do at the database (the same INSERT … ON CONFLICT DO NOTHING RETURNING * and
 * SELECT * on the same `orders` table) and answering the same JSON shape (API.md §4 Order), with none of
 * the app's framework, validation, authentication or error handling. Env: DATABASE_URL, PORT, POOL_SIZE.
 * Prints `baseline listening on <port>` when ready.
 */
const url = process.env['DATABASE_URL'];
if (!url) throw new Error('DATABASE_URL is required');
const pool = new pg.Pool({ connectionString: url, max: Number(process.env['POOL_SIZE'] ?? 10) });

const INSERT = `INSERT INTO orders (id, order_id, subject, amount_minor, currency, status, expire_time, notify_url, metadata)
         VALUES ($1, $2, $3, $4, $5, 'wait', $6, $7, $8)
         ON CONFLICT (order_id) DO NOTHING
         RETURNING *`;
// The app's GET statement (OrderStore.findOrderWithPayments): the order and its paid attempts in one round trip.
const SELECT = `SELECT o.*, COALESCE((
                  SELECT json_agg(json_build_object(
                           'id', a.id, 'channel', a.channel, 'pay_type', a.pay_type, 'amount_minor', a.amount_minor,
                           'currency', a.currency, 'channel_trade_no', a.channel_trade_no, 'paid_at', a.paid_at,
                           'refund_held_minor', a.refund_held_minor, 'refunded_minor', a.refunded_minor)
                         ORDER BY a.paid_at, a.id)
                    FROM payment_attempts a WHERE a.order_pk = o.id AND a.status = 'paid'), '[]'::json) AS payments
           FROM orders o WHERE o.order_id = $1`;

type Row = Record<string, unknown>;

const minorText = (v: unknown): string => {
  const n = BigInt(String(v));
  return `${n / 100n}.${(n % 100n).toString().padStart(2, '0')}`;
};
const iso = (v: unknown): string | null => (v === null || v === undefined ? null : new Date(v as Date).toISOString());

function view(r: Row): Record<string, unknown> {
  return {
    orderId: r['order_id'],
    subject: r['subject'],
    amount: minorText(r['amount_minor']),
    currency: r['currency'],
    status: r['status'],
    channel: r['channel'] ?? null,
    payType: r['pay_type'] ?? null,
    channelTradeNo: r['channel_trade_no'] ?? null,
    payTime: iso(r['pay_time']),
    expireTime: iso(r['expire_time']),
    createdAt: iso(r['created_at']),
    refundedAmount: minorText(r['refunded_minor']),
    refundStatus: String(r['refunded_minor']) === '0' ? 'none' : 'partial',
    metadata: r['metadata'] ?? null,
    // GET only; the bench's orders are unpaid, so this is always [] (the app maps each paid attempt).
    ...(r['payments'] === undefined ? {} : { payments: r['payments'] }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = req.url ?? '/';
  if (req.method === 'POST' && path === '/api/v1/orders') {
    const b = await readJson(req);
    const [whole, frac = ''] = String(b['amount']).split('.');
    const minor = Number(whole) * 100 + Number(frac.padEnd(2, '0'));
    const expire = new Date(Date.now() + 30 * 60_000);
    const r = await pool.query(INSERT, [randomUUID(), b['orderId'], b['subject'], minor, 'CNY', expire, null, null]);
    const row = r.rows[0] as Row | undefined;
    return row ? send(res, 201, view(row)) : send(res, 409, { code: 'ORDER_EXISTS' });
  }
  const get = /^\/api\/v1\/orders\/([A-Za-z0-9_-]{6,32})$/.exec(path);
  if (req.method === 'GET' && get) {
    const r = await pool.query(SELECT, [get[1]]);
    const row = r.rows[0] as Row | undefined;
    return row ? send(res, 200, view(row)) : send(res, 404, { code: 'ORDER_NOT_EXIST_ERROR' });
  }
  send(res, 404, { code: 'NOT_FOUND' });
}

const server = createServer((req, res) => {
  handle(req, res).catch(() => send(res, 500, { code: 'INTERNAL_ERROR' }));
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1', () => {
  const a = server.address();
  console.log(`baseline listening on ${typeof a === 'object' && a ? a.port : '?'}`);
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void pool.end().then(() => process.exit(0));
});
