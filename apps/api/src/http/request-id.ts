import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const SAFE_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Every request's id: the caller's X-Request-Id if it is sane, a random UUID otherwise (Fastify's
 * `genReqId`, so it is `request.id`). app.factory.ts echoes it in the answer and copies it onto the
 * Node request (`raw.id`) for the access log; errors carry it as `requestId`.
 */
export function genRequestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && SAFE_ID.test(given) ? given : randomUUID();
}

/** The id of a Fastify request or of its Node request. */
export function requestIdOf(req: { id?: unknown }): string {
  return typeof req.id === 'string' ? req.id : 'unknown';
}
