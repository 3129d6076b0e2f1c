import xml2js from 'xml2js';
import { PayError } from '#common';

/**
 * The flat `<xml><field>value</field>…</xml>` documents of WeChat Pay API v2 (PROTOCOLS.md §2.1), parsed
 * defensively (§2.10): XXE, entity expansion, comments and unclosed CDATA are refused by a linear
 * pre-scan before the parser sees the body, the
 * structure must be exactly one `<xml>` root holding leaf elements, and every value stays the string it
 * was on the wire (`4200000000000000000000000000` and `0.10` are not numbers).
 */

/** Largest body accepted (bytes). WeChat documents are a few hundred bytes; notifications a few KiB. */
export const WECHAT_XML_MAX_BYTES = 64 * 1024;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/** An XML name as WeChat uses them (ASCII); also keeps xml2js' own `#text`/`@attrs` keys out. */
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
// xml2js' char/attr keys, chosen so they can never be XML element names.
const CHARKEY = '#text';
const ATTRKEY = '@attrs';

function refuse(reason: string): PayError {
  return new PayError('INVALID_PARAMS', 'malformed WeChat Pay XML', { reason });
}

function decode(body: Buffer | string): string {
  if (typeof body === 'string') {
    if (Buffer.byteLength(body, 'utf8') > WECHAT_XML_MAX_BYTES) throw refuse('body too large');
    return body;
  }
  if (body.length > WECHAT_XML_MAX_BYTES) throw refuse('body too large');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw refuse('body is not UTF-8');
  }
}

/** Most markup (`<` tags and CDATA sections) a document may hold: a WeChat notify has about 30 fields. */
export const WECHAT_XML_MAX_MARKUP = 1024;

/**
 * Checks the overall shape on the text itself, in ONE forward pass (linear time whatever the input:
 * every search starts where the previous one ended), before xml2js sees anything: one `<xml>` root,
 * nothing after it, no comment, DOCTYPE, ENTITY or other `<!` declaration (WeChat sends none), no
 * processing instruction but a leading `<?xml …?>`, every CDATA section closed, and at most
 * WECHAT_XML_MAX_MARKUP tags and sections. `meter.steps` counts the tokens looked at (tests bound it).
 */
export function checkShape(
  text: string,
  rootName: 'xml' | 'root' = 'xml',
  meter: { steps: number } = { steps: 0 },
): void {
  const open = `<${rootName}`;
  const close = `</${rootName}>`;
  let roots = 0;
  let closed = false;
  let markup = 0;
  let pos = 0;
  const n = text.length;
  for (;;) {
    const lt = text.indexOf('<', pos);
    meter.steps += 1;
    if (lt < 0) break;
    markup += 1;
    if (markup > WECHAT_XML_MAX_MARKUP) throw refuse('too many elements');
    if (text.startsWith('<![CDATA[', lt)) {
      const end = text.indexOf(']]>', lt + 9);
      if (end < 0) throw refuse('unterminated CDATA section');
      pos = end + 3;
      continue;
    }
    const next = text[lt + 1];
    if (next === '!') throw refuse('comments, DTD and declarations are not accepted');
    if (next === '?') {
      if (lt !== 0 || !text.startsWith('<?xml', lt)) throw refuse('processing instruction');
      const end = text.indexOf('?>', lt + 2);
      if (end < 0) throw refuse('unterminated XML declaration');
      pos = end + 2;
      continue;
    }
    if (text.startsWith(open, lt) && /[\s/>]/.test(text[lt + open.length] ?? '')) roots += 1;
    if (text.startsWith(close, lt)) {
      const rest = lt + close.length;
      if (text.slice(rest).trim() !== '') throw refuse('content after the root element');
      closed = true;
      pos = n;
      continue;
    }
    pos = lt + 1;
  }
  if (roots !== 1) throw refuse(`the document must have exactly one <${rootName}> element`);
  if (!closed) throw refuse(`the <${rootName}> element is not closed`);
}

function runXml2js(text: string): unknown {
  const parser = new xml2js.Parser({
    explicitArray: false,
    explicitRoot: true,
    async: false,
    strict: true,
    trim: false,
    normalize: false,
    emptyTag: '',
    charkey: CHARKEY,
    attrkey: ATTRKEY,
    // No valueProcessors/attrValueProcessors: parseNumbers/parseBooleans are never applied.
  });
  let calls = 0;
  let failed: unknown;
  let result: unknown;
  try {
    parser.parseString(text, (err: Error | null, value: unknown) => {
      calls += 1;
      if (err) failed = err;
      else result = value;
    });
  } catch (err) {
    failed = err;
  }
  if (failed !== undefined || calls !== 1) throw refuse('not well-formed XML');
  return result;
}

/**
 * Parses a WeChat Pay v2 XML body (or, with rootName 'root', a decrypted refund-notify req_info, §2.13)
 * into a prototype-less `field -> string` record. Throws
 * PayError('INVALID_PARAMS') on: a comment, DOCTYPE, ENTITY or other `<!` declaration, an unclosed CDATA section, more than 64 KiB, invalid
 * UTF-8, malformed XML, a root other than `<xml>`, attributes, nested or repeated elements, mixed
 * content, and the keys `__proto__`, `constructor` and `prototype`.
 */
export function parseWechatXml(body: Buffer | string, rootName: 'xml' | 'root' = 'xml'): Record<string, string> {
  const text = decode(body);
  checkShape(text, rootName);
  const parsed = runXml2js(text);
  if (parsed === null || typeof parsed !== 'object') throw refuse('empty document');
  const top = Object.keys(parsed);
  if (top.length !== 1 || top[0] !== rootName) throw refuse(`the root element must be <${rootName}>`);
  const root: unknown = (parsed as Record<string, unknown>)[rootName];
  const out = Object.create(null) as Record<string, string>;
  if (root === '') return out; // <xml></xml>
  if (root === null || typeof root !== 'object' || Array.isArray(root)) throw refuse('the root must hold elements');
  for (const key of Object.getOwnPropertyNames(root)) {
    if (FORBIDDEN_KEYS.has(key)) throw refuse('forbidden field name');
    if (!FIELD_NAME.test(key)) throw refuse('attributes, text or an invalid name in the root');
    const value: unknown = (root as Record<string, unknown>)[key];
    if (typeof value !== 'string') throw refuse('nested, repeated or attributed element');
    out[key] = value;
  }
  return out;
}

/** Wraps a value in CDATA; a `]]>` inside is split across two sections so it cannot end the section. */
function cdata(value: string): string {
  return `<![CDATA[${value.split(']]>').join(']]]]><![CDATA[>')}]]>`;
}

/**
 * Builds `<xml><k><![CDATA[v]]></k>…</xml>` from flat fields (undefined/null skipped, insertion order).
 * Throws on an invalid field name; never on a value.
 */
export function buildWechatXml(fields: Readonly<Record<string, string | number | undefined | null>>): string {
  let xml = '<xml>';
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    if (!FIELD_NAME.test(key) || FORBIDDEN_KEYS.has(key) || /^xml/i.test(key)) {
      throw new Error(`invalid WeChat Pay XML field name: ${key}`);
    }
    xml += `<${key}>${cdata(String(value))}</${key}>`;
  }
  return `${xml}</xml>`;
}
