import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import xml2js from 'xml2js';

/**
 * The simulator's own WeChat Pay v2 wire helpers (PROTOCOLS.md §2.2, §2.10). Deliberately written apart
 * from libs/channels' signer and parser: a simulator that shared the client's code would agree with the
 * client's bugs. Both are checked against the published vectors and wechatpay-axios-plugin.
 */

export type SimSignType = 'MD5' | 'HMAC-SHA256';

export function simSign(
  fields: Readonly<Record<string, string | undefined>>,
  apiKey: string,
  type: SimSignType,
): string {
  const stringA = Object.entries(fields)
    .filter(([k, v]) => k !== 'sign' && v !== undefined && v !== '')
    .sort(([a], [b]) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')))
    .map(([k, v]) => `${k}=${v as string}`)
    .join('&');
  const temp = `${stringA}&key=${apiKey}`;
  const hex =
    type === 'MD5'
      ? createHash('md5').update(temp).digest('hex')
      : createHmac('sha256', apiKey).update(temp).digest('hex');
  return hex.toUpperCase();
}

export function simVerify(
  fields: Readonly<Record<string, string | undefined>>,
  apiKey: string,
  type: SimSignType,
): boolean {
  const got = Buffer.from(fields['sign'] ?? '');
  const want = Buffer.from(simSign(fields, apiKey, type));
  return got.length === want.length && timingSafeEqual(got, want);
}

export function simXml(fields: Readonly<Record<string, string | undefined>>): string {
  const parts = Object.entries(fields)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `<${k}><![CDATA[${v.replace(/]]>/g, ']]]]><![CDATA[>')}]]></${k}>`);
  return `<xml>${parts.join('')}</xml>`;
}

/**
 * Parses a flat `<xml>` body; undefined when it is not one (DTDs, entities, nesting, attributes,
 * dangerous keys, over 64 KiB). Values stay strings.
 */
export async function simParseXml(text: string): Promise<Record<string, string> | undefined> {
  if (text.length > 64 * 1024 || /<!(DOCTYPE|ENTITY)/i.test(text)) return undefined;
  let parsed: unknown;
  try {
    parsed = await xml2js.parseStringPromise(text, {
      explicitArray: false,
      charkey: '#text',
      attrkey: '@attrs',
      emptyTag: '',
    });
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object') return undefined;
  const root: unknown = (parsed as Record<string, unknown>)['xml'];
  const out = Object.create(null) as Record<string, string>;
  if (root === '') return out;
  if (root === null || typeof root !== 'object') return undefined;
  for (const [k, v] of Object.entries(root as Record<string, unknown>)) {
    if (
      typeof v !== 'string' ||
      !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ||
      k === '__proto__' ||
      k === 'constructor' ||
      k === 'prototype'
    ) {
      return undefined;
    }
    out[k] = v;
  }
  return out;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
