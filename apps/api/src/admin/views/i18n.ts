import type { FastifyRequest as Request } from 'fastify';

export type Lang = 'en' | 'zh';

const ZH: Record<string, string> = {
  'PayBridge console': 'PayBridge 控制台',
  'Sign in': '登录',
  'Sign out': '退出',
  'API key': 'API 密钥',
  'Sign in with an API key of role viewer, operator or admin.':
    '请使用 viewer、operator 或 admin 角色的 API 密钥登录。',
  'That key is not a console key.': '该密钥不是控制台密钥。',
  Orders: '订单',
  Dashboard: '概览',
  'Audit log': '审计日志',
  Search: '搜索',
  'Order ID, subject or trade number': '订单号、标题或交易号',
  Status: '状态',
  Channel: '渠道',
  From: '从',
  To: '到',
  'Min amount': '最小金额',
  'Max amount': '最大金额',
  Any: '全部',
  Filter: '筛选',
  Clear: '清除',
  Subject: '标题',
  Amount: '金额',
  Refunded: '已退款',
  Created: '创建时间',
  'Paid at': '支付时间',
  'Next page': '下一页',
  'First page': '第一页',
  'No orders match.': '没有符合条件的订单。',
  Timeline: '时间线',
  Attempts: '支付尝试',
  Payments: '支付',
  Refunds: '退款',
  'Received notifies': '收到的通知',
  Events: '事件',
  Actions: '操作',
  'Check with the channel': '向渠道查询',
  'Cancel order': '关闭订单',
  Refund: '退款',
  'Left to refund': '可退金额',
  Reason: '原因',
  'Resend event': '重新推送',
  Confirm: '确认',
  Back: '返回',
  'Are you sure?': '确定吗？',
  Done: '已完成',
  Verdict: '结果',
  Time: '时间',
  Who: '操作人',
  What: '操作',
  Outcome: '结果',
  'Request id': '请求 ID',
  Before: '之前',
  After: '之后',
  'Paid amount per day': '每日支付金额',
  'Orders per day': '每日订单数',
  'Conversion rate': '转化率',
  created: '创建',
  paid: '已支付',
  closed: '已关闭',
  'timed out': '已超时',
  'Your role may not do that.': '您的角色无权执行此操作。',
  'Not found.': '未找到。',
  Deliveries: '推送',
  'Refund of': '退款金额',
  'Order ID': '订单号',
  Role: '角色',
  'No data in this period.': '此期间没有数据。',
  Day: '天',
  Hour: '小时',
};

export type T = (s: string) => string;

export function translator(lang: Lang): T {
  return lang === 'zh' ? (s) => ZH[s] ?? s : (s) => s;
}

/** `?lang=` wins (and is remembered in a cookie by the controller), then the cookie, then Accept-Language. */
export function langOf(req: Request, cookie: string | undefined): Lang {
  const q = (req.query as Record<string, unknown>)['lang'];
  if (q === 'zh' || q === 'en') return q;
  if (cookie === 'zh' || cookie === 'en') return cookie;
  return /^zh\b/i.test(req.headers['accept-language'] ?? '') ? 'zh' : 'en';
}
