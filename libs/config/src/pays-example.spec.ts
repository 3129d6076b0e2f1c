import { join } from 'node:path';
import { loadPaysDir } from './pays-loader.js';

describe('pays.example', () => {
  it('is in the format the loader reads, and names what it needs', () => {
    let message = '';
    try {
      loadPaysDir(join(process.cwd(), 'pays.example'), {});
    } catch (e) {
      message = (e as Error).message;
    }
    // The first thing missing is an environment value of the first instance (folders load in order).
    expect(message).toBe(
      'pays.aliPayment: field "appId" refers to environment variable ALIPAY_APP_ID, which is not set',
    );
  });
});
