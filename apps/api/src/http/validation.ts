import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { PayError } from '#common';

function describe(errors: ValidationError[], prefix = ''): string[] {
  const out: string[] = [];
  for (const e of errors) {
    const path = prefix ? `${prefix}.${e.property}` : e.property;
    if (e.constraints) {
      for (const [kind, msg] of Object.entries(e.constraints)) {
        out.push(kind === 'whitelistValidation' ? `unknown field: ${path}` : msg);
      }
    }
    if (e.children?.length) out.push(...describe(e.children, path));
  }
  return out;
}

const OPTIONS = { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true } as const;

function toPayError(errors: ValidationError[]): PayError {
  return new PayError('INVALID_PARAMS', describe(errors).slice(0, 5).join('; ') || 'invalid request');
}

/** The global pipe: unknown fields and bad types are INVALID_PARAMS, with the first few reasons. */
export function validationPipe(): ValidationPipe {
  return new ValidationPipe({ ...OPTIONS, transform: true, exceptionFactory: toPayError });
}

/** The same rules for bodies whose DTO depends on a path parameter (the PaySvc facade). */
export async function validateBody<T extends object>(cls: new () => T, body: unknown): Promise<T> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new PayError('INVALID_PARAMS', 'the request body must be a JSON object');
  }
  const instance = plainToInstance(cls, body);
  const errors = await validate(instance, OPTIONS);
  if (errors.length) throw toPayError(errors);
  return instance;
}
