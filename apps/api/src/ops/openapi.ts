import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { validationMetadatasToSchemas } from 'class-validator-jsonschema';
import { RESPONSE_SCHEMAS } from './openapi-schemas.js';

/**
 * The OpenAPI 3.0 document of the HTTP API (API.md §4-§12), built from the controllers at start.
 *
 * Request bodies: @nestjs/swagger without its compiler plugin sees no field that has only
 * class-validator decorators, and the `tsc` build cannot load that plugin. class-validator-jsonschema
 * turns the same class-validator metadata that the ValidationPipe enforces into JSON Schema at run time,
 * so the documented request bodies cannot drift from what is validated, with no build change and no
 * second set of decorators on every field. Answer bodies are interfaces (no run-time metadata): they
 * are written once in openapi-schemas.ts, and the e2e suite checks real answers against them.
 *
 * Notify webhooks (@ApiExcludeController) and the sandbox (plain mounted listeners) are not in it.
 */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('PayBridge')
    .setDescription(
      'Payment backend for Alipay, WeChat Pay v2 and Alipay+ wallets. Errors are `{code, message, requestId}`; ' +
        'the requestId matches the X-Request-Id answer header and the logs.',
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'API key (API_KEYS role:secret)' })
    .build();
  const doc = SwaggerModule.createDocument(app, config);
  const requestSchemas = validationMetadatasToSchemas({ refPointerPrefix: '#/components/schemas/' });
  doc.components = doc.components ?? {};
  doc.components.schemas = {
    ...doc.components.schemas,
    ...(requestSchemas as NonNullable<OpenAPIObject['components']>['schemas']),
    ...(RESPONSE_SCHEMAS as NonNullable<OpenAPIObject['components']>['schemas']),
  };
  return doc;
}

/** `GET /openapi.json` and Swagger UI at `/docs`, its scripts and styles served from swagger-ui-dist. */
export function mountOpenApi(app: INestApplication): OpenAPIObject {
  const doc = buildOpenApiDocument(app);
  SwaggerModule.setup('docs', app, doc, {
    jsonDocumentUrl: 'openapi.json',
    raw: ['json'],
    customSiteTitle: 'PayBridge API',
  });
  return doc;
}
