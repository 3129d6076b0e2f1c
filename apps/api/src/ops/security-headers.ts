import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';

/** Sets the headers on the Node response: Fastify merges them into every answer (its own values win). */
type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

type HeaderSet = ReadonlyArray<readonly [string, string]>;

/**
 * What a helmet middleware sets, found by running it once on a recording response: its headers do not
 * depend on the request (no per-request CSP nonces here), so each request gets the recorded list set in
 * one loop instead of a pass through helmet's chain of a dozen middlewares (issue 14).
 */
export function recordHeaders(middleware: Middleware): HeaderSet {
  const set: Array<[string, string]> = [];
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      set.push([name, Array.isArray(value) ? value.join(', ') : String(value)]);
      return recorder;
    },
    removeHeader() {
      // X-Powered-By: Fastify sends none.
    },
  };
  let failed: unknown;
  middleware(
    { method: 'GET', url: '/', headers: {} } as IncomingMessage,
    recorder as unknown as ServerResponse,
    (err) => {
      failed = err;
    },
  );
  if (failed) throw new Error('helmet refused its own configuration', { cause: failed });
  return set;
}

/**
 * helmet's defaults (CSP, nosniff, frame-ancestors 'none' through X-Frame-Options, no referrer, HSTS
 * ...) on everything, except under /sandbox: its cashier page posts a form that answers a 303 to the
 * merchant's return page, which the default `form-action 'self'` blocks in browsers, and its pages
 * submit themselves with inline script. The sandbox runs only outside production (API.md §9).
 */
export function securityHeaders(): (req: IncomingMessage, res: ServerResponse) => void {
  // No upgrade-insecure-requests: TLS is the proxy's job, and over plain http (development, the
  // sandbox on a LAN address) it would send the pages' own scripts to an https port that is not there.
  const strict = recordHeaders(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } }));
  const sandbox = recordHeaders(
    helmet({
      contentSecurityPolicy: {
        directives: {
          formAction: null,
          upgradeInsecureRequests: null,
          scriptSrc: ["'self'", "'unsafe-inline'"],
        },
      },
    }),
  );
  return (req, res) => {
    for (const [name, value] of (req.url ?? '').startsWith('/sandbox/') ? sandbox : strict) res.setHeader(name, value);
  };
}
