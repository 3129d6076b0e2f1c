import { PNG } from 'pngjs';
import QRCode from 'qrcode';
import { qrPngDataUrl } from './qr-png.js';

describe('qrPngDataUrl', () => {
  it.each(['https://qr.alipay.com/bax03431ljhokirwl38f00a7', 'weixin://wxpay/bizpayurl?pr=abc123', 'x'.repeat(300)])(
    'writes a PNG whose pixels are exactly the QR modules of %s',
    (text) => {
      const url = qrPngDataUrl(text, { scale: 3, margin: 2 });
      expect(url.startsWith('data:image/png;base64,')).toBe(true);
      const png = PNG.sync.read(Buffer.from(url.slice('data:image/png;base64,'.length), 'base64'));
      const qr = QRCode.create(text, { errorCorrectionLevel: 'M' });
      const n = qr.modules.size;
      expect(png.width).toBe((n + 4) * 3);
      expect(png.height).toBe(png.width);
      let checked = 0;
      for (let y = -2; y < n + 2; y++) {
        for (let x = -2; x < n + 2; x++) {
          const isDark = x >= 0 && y >= 0 && x < n && y < n && qr.modules.get(y, x) === 1;
          // Sample the centre pixel of the module's 3×3 block (RGBA after decoding).
          const px = ((y + 2) * 3 + 1) * png.width + (x + 2) * 3 + 1;
          expect(png.data[px * 4]).toBe(isDark ? 0 : 255);
          checked++;
        }
      }
      expect(checked).toBe((n + 4) ** 2);
    },
  );
});

describe('qrPngDataUrl, every pixel', () => {
  it.each([
    ['the default scale 6 and margin 2', {}, 6, 2],
    ['scale 5 and margin 3 (rows not a multiple of 8 pixels)', { scale: 5, margin: 3 }, 5, 3],
  ])('with %s, each pixel is the colour of its module', (_label, opts, scale, margin) => {
    const text = 'https://qr.alipay.com/bax08888xyzabc';
    const png = PNG.sync.read(Buffer.from(qrPngDataUrl(text, opts).split(',')[1] ?? '', 'base64'));
    const qr = QRCode.create(text, { errorCorrectionLevel: 'M' });
    const n = qr.modules.size;
    expect(png.width).toBe((n + 2 * margin) * scale);
    let wrong = 0;
    for (let py = 0; py < png.height; py++) {
      for (let px = 0; px < png.width; px++) {
        const x = Math.floor(px / scale) - margin;
        const y = Math.floor(py / scale) - margin;
        const isDark = x >= 0 && y >= 0 && x < n && y < n && qr.modules.get(y, x) === 1;
        if (png.data[(py * png.width + px) * 4] !== (isDark ? 0 : 255)) wrong++;
      }
    }
    expect(wrong).toBe(0);
  });
});
