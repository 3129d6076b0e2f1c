import type { IncomingMessage, ServerResponse } from 'node:http';
import { PayError } from '#common';

/** Small helpers the unit specs of the channels and the simulators share. */

/** The PayError a promise rejects with (anything else is rethrown; fulfilling fails the test). */
export async function payErrorOf(p: Promise<unknown>): Promise<PayError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof PayError) return e;
    throw e;
  }
  throw new Error('expected a PayError');
}

/** A request's whole body. */
export async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Serves `listener` below `prefix` with the prefix stripped from req.url (the full URL in originalUrl), as the api app mounts it. */
export function mounted(prefix: string, listener: (req: IncomingMessage, res: ServerResponse) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    if (url !== prefix && !url.startsWith(`${prefix}/`) && !url.startsWith(`${prefix}?`)) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const rest = url.slice(prefix.length);
    (req as IncomingMessage & { originalUrl?: string }).originalUrl = url;
    req.url = rest.startsWith('/') ? rest : `/${rest}`;
    listener(req, res);
  };
}
