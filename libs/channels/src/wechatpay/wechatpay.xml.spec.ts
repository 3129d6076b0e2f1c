import fc from 'fast-check';
import { PayError } from '#common';
import { WECHAT_XML_MAX_MARKUP, buildWechatXml, checkShape, parseWechatXml } from './wechatpay.xml.js';

function refusal(body: Buffer | string): PayError {
  let caught: unknown;
  try {
    parseWechatXml(body);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(PayError);
  expect((caught as PayError).code).toBe('INVALID_PARAMS');
  return caught as PayError;
}

describe('parseWechatXml', () => {
  it('parses a flat document, CDATA or not, into strings on a prototype-less object', () => {
    const f = parseWechatXml(
      Buffer.from(
        '<?xml version="1.0" encoding="UTF-8"?>\n<xml>\n  <return_code><![CDATA[SUCCESS]]></return_code>\n  <total_fee>10</total_fee>\n' +
          '  <body><![CDATA[腾讯充值 & <会员>]]></body><attach></attach><device_info/>\n</xml>\n',
      ),
    );
    expect({ ...f }).toEqual({
      return_code: 'SUCCESS',
      total_fee: '10',
      body: '腾讯充值 & <会员>',
      attach: '',
      device_info: '',
    });
    expect(Object.getPrototypeOf(f)).toBeNull();
  });

  it('never coerces values', () => {
    const f = parseWechatXml(
      '<xml><transaction_id>4200000000000000000000000000</transaction_id><fee>0.10</fee><b>true</b><z>007</z><e>1e3</e></xml>',
    );
    expect(f['transaction_id']).toBe('4200000000000000000000000000');
    expect(f['fee']).toBe('0.10');
    expect(f['b']).toBe('true');
    expect(f['z']).toBe('007');
    expect(f['e']).toBe('1e3');
  });

  it('refuses an XXE payload', () => {
    refusal('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><a>&xxe;</a></xml>');
    refusal('<!doctype xml><xml><a>1</a></xml>');
    refusal('<xml><a><![CDATA[x]]></a></xml><!eNtItY x "y">');
  });

  it('refuses billion laughs', () => {
    const lol =
      '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' +
      Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('') +
      ']><xml><a>&lol9;</a></xml>';
    refusal(lol);
  });

  it('refuses an undeclared entity and a bare ampersand (malformed)', () => {
    refusal('<xml><a>&lol;</a></xml>');
    refusal('<xml><a>a & b</a></xml>');
  });

  it('refuses a 2 MB body, and anything over 64 KiB, before parsing', () => {
    const big = `<xml><a>${'x'.repeat(2 * 1024 * 1024)}</a></xml>`;
    expect(refusal(big).detail?.['reason']).toBe('body too large');
    expect(refusal(Buffer.from(big)).detail?.['reason']).toBe('body too large');
    const justOver = `<xml><a>${'x'.repeat(64 * 1024)}</a></xml>`;
    refusal(justOver);
    expect(parseWechatXml(`<xml><a>${'x'.repeat(60 * 1024)}</a></xml>`)['a']).toHaveLength(60 * 1024);
  });

  it.each([
    ['not XML', 'hello'],
    ['empty', ''],
    ['JSON', '{"return_code":"SUCCESS"}'],
    ['unclosed', '<xml><a>1</a>'],
    ['mismatched tags', '<xml><a>1</b></xml>'],
    ['another root', '<root><a>1</a></root>'],
    ['two roots', '<xml><a>1</a></xml><xml><a>2</a></xml>'],
    ['trailing element', '<xml><a>1</a></xml><b>2</b>'],
    ['nested element', '<xml><a><b>1</b></a></xml>'],
    ['repeated element', '<xml><a>1</a><a>2</a></xml>'],
    ['attribute on a field', '<xml><a x="1">1</a></xml>'],
    ['attribute on the root', '<xml x="1"><a>1</a></xml>'],
    ['mixed content', '<xml>text<a>1</a></xml>'],
    ['__proto__ key', '<xml><__proto__><polluted>1</polluted></__proto__></xml>'],
    ['flat __proto__ key', '<xml><__proto__>1</__proto__></xml>'],
    ['constructor key', '<xml><constructor>1</constructor></xml>'],
    ['prototype key', '<xml><prototype>1</prototype></xml>'],
    ['nested xml', '<xml><xml>1</xml></xml>'],
  ])('refuses %s', (_name, body) => {
    refusal(body);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('refuses invalid UTF-8', () => {
    refusal(Buffer.concat([Buffer.from('<xml><a>'), Buffer.from([0xff, 0xfe]), Buffer.from('</a></xml>')]));
  });

  it('keeps the body out of the error message', () => {
    const err = refusal('<xml><secret>s3cr3t</secret><a><b>1</b></a></xml>');
    expect(err.message).not.toContain('s3cr3t');
    expect(JSON.stringify(err.detail)).not.toContain('s3cr3t');
  });
});

describe('buildWechatXml', () => {
  it('wraps values in CDATA and skips undefined', () => {
    expect(buildWechatXml({ a: 'x', b: undefined, c: 1 })).toBe('<xml><a><![CDATA[x]]></a><c><![CDATA[1]]></c></xml>');
  });

  it('splits ]]> so a value cannot escape its CDATA section', () => {
    const xml = buildWechatXml({ a: 'x]]><b>injected</b><![CDATA[' });
    expect(xml).toBe('<xml><a><![CDATA[x]]]]><![CDATA[><b>injected</b><![CDATA[]]></a></xml>');
    expect({ ...parseWechatXml(xml) }).toEqual({ a: 'x]]><b>injected</b><![CDATA[' });
  });

  it('refuses invalid field names', () => {
    expect(() => buildWechatXml({ 'a b': '1' })).toThrow('invalid WeChat Pay XML field name');
    expect(() => buildWechatXml({ __proto__x: '1', ['__proto__']: '1' })).toThrow();
  });

  it('round-trips any flat string record (property)', () => {
    const key = fc
      .stringMatching(/^[a-z][a-z0-9_]{0,15}$/)
      .filter((k) => !['constructor', 'prototype'].includes(k) && !k.startsWith('xml'));
    // XML 1.0 cannot carry most control characters; WeChat values never hold them.
    // eslint-disable-next-line no-control-regex -- these are exactly the characters XML 1.0 cannot carry
    const forbidden = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff\r]/;
    const value = fc.string({ maxLength: 50, unit: 'grapheme' }).filter((s) => !forbidden.test(s));
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 15 }), (fields) => {
        expect({ ...parseWechatXml(buildWechatXml(fields)) }).toEqual({ ...fields });
      }),
      { numRuns: 300 },
    );
  });
});

describe('the linear pre-scan (issue 9 item 7)', () => {
  /** The reason a refused document gives (logged, never answered). */
  const reasonOf = (body: string): unknown => refusal(body).detail?.['reason'];

  /** Work the pre-scan does on `body`, in tokens looked at, whether it refuses or accepts. */
  function steps(body: string): number {
    const meter = { steps: 0 };
    try {
      checkShape(body, 'xml', meter);
    } catch {
      // refused: the count up to the refusal is the work done
    }
    return meter.steps;
  }

  it('refuses comments, DOCTYPE and any <! declaration before xml2js sees them', () => {
    expect(reasonOf('<xml><!-- hi --><a>1</a></xml>')).toBe('comments, DTD and declarations are not accepted');
    expect(reasonOf('<!--'.repeat(16 * 1024))).toBe('comments, DTD and declarations are not accepted');
    expect(reasonOf('<xml><a>1</a></xml><!-- trailing -->')).toBe('content after the root element');
    expect(reasonOf('<!DOCTYPE xml><xml><a>1</a></xml>')).toBe('comments, DTD and declarations are not accepted');
    expect(reasonOf('<xml><a>1</a><?pi x?></xml>')).toBe('processing instruction');
  });

  it('refuses an unclosed or abusive CDATA section and too much markup', () => {
    expect(reasonOf(`<xml><a>${'<![CDATA['.repeat(7000)}</a></xml>`)).toBe('unterminated CDATA section');
    expect(reasonOf(`<xml>${'<a><![CDATA[x]]></a>'.repeat(WECHAT_XML_MAX_MARKUP)}</xml>`)).toBe('too many elements');
    expect(reasonOf('<xml><a>1</a>')).toBe('the <xml> element is not closed');
  });

  it('does work linear in the input for pathological 16 KiB and 64 KiB bodies', () => {
    const patterns = ['<!--', '<![CDATA[', '<xml><a><![CDATA[', '<<<<', '<x>', ']]>', '<?xml'];
    for (const p of patterns) {
      const small = p.repeat(Math.floor((16 * 1024) / p.length));
      const large = p.repeat(Math.floor((64 * 1024) / p.length));
      // Every token the scan looks at ends at or after the previous one: the count never exceeds the
      // number of '<' plus one, and the markup cap bounds it further.
      const count = (s: string): number => s.split('<').length;
      expect(steps(large)).toBeLessThanOrEqual(Math.min(count(large), WECHAT_XML_MAX_MARKUP + 1));
      expect(steps(large)).toBeLessThanOrEqual(4 * Math.max(1, steps(small)) + 1);
      expect(() => parseWechatXml(large)).toThrow(PayError);
    }
  });

  it('still reads a real notification shape with CDATA holding markup-like text', () => {
    const body = buildWechatXml({ return_code: 'SUCCESS', attach: '<!-- not a comment --> ]]> <!DOCTYPE>' });
    expect({ ...parseWechatXml(body) }).toEqual({
      return_code: 'SUCCESS',
      attach: '<!-- not a comment --> ]]> <!DOCTYPE>',
    });
  });
});
