import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from './auth.guard.js';

/** The request Nest hands to guards, interceptors, filters and `@Req()` (Fastify's, API.md §4-§12). */
export type HttpRequest = FastifyRequest & { principal?: Principal };

/** The reply of `@Res()` and the error filter. */
export type HttpReply = FastifyReply;
