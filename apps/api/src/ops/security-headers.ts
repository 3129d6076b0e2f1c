import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';

/** Sets the headers on the Node response: Fastify merges them into every answer (its own values win). */
type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * helmet's defaults (CSP, nosniff, frame-ancestors 'none' through X-Frame-Options, no referrer, HSTS
 * ...) on everything, except under /sandbox: its cashier page posts a form that answers a 303 to the
 * merchant's return page, which the default `form-action 'self'` blocks in browsers, and its pages
 * submit themselves with inline script. The sandbox runs only outside production (API.md §9).
 */
export function securityHeaders(): Middleware {
  // No upgrade-insecure-requests: TLS is the proxy's job, and over plain http (development, the
  // sandbox on a LAN address) it would send the pages' own scripts to an https port that is not there.
  const strict = helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } });
  const sandbox = helmet({
    contentSecurityPolicy: {
      directives: {
        formAction: null,
        upgradeInsecureRequests: null,
        scriptSrc: ["'self'", "'unsafe-inline'"],
      },
    },
  });
  return (req, res, next) => ((req.url ?? '').startsWith('/sandbox/') ? sandbox : strict)(req, res, next);
}
