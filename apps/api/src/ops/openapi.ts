import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply } from 'fastify';
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

/** The Swagger UI files served under /docs (an allow-list: nothing else of the package is reachable). */
const UI_FILES: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'index.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'application/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'application/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

const UI_HTML = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>PayBridge API</title>
  <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
  <link rel="stylesheet" type="text/css" href="/docs/index.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
  <script src="/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
  <script src="/docs/swagger-ui-init.js" charset="UTF-8"></script>
</body>
</html>
`;

// No inline script: helmet's Content-Security-Policy allows scripts from this origin only.
const UI_INIT = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: 'StandaloneLayout'
  });
};
`;

/**
 * `GET /openapi.json` and Swagger UI at `/docs`, its scripts and styles served from swagger-ui-dist
 * (no CDN). The UI is served here rather than by SwaggerModule, which needs @fastify/static on Fastify:
 * a few fixed files read once at start, no static-file server.
 */
export function mountOpenApi(app: NestFastifyApplication): OpenAPIObject {
  const doc = buildOpenApiDocument(app);
  SwaggerModule.setup('docs', app, doc, { jsonDocumentUrl: 'openapi.json', raw: ['json'], ui: false });
  const dir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const files = new Map(
    Object.entries(UI_FILES).map(([name, type]) => [name, { type, body: readFileSync(join(dir, name)) }]),
  );
  const fastify = app.getHttpAdapter().getInstance();
  const page = (_req: unknown, reply: FastifyReply): void => {
    void reply.type('text/html; charset=utf-8').send(UI_HTML);
  };
  // `/docs` and `/docs/` (trailing slashes are ignored, as on Express); assets by absolute path.
  fastify.get('/docs', page);
  fastify.get('/docs/swagger-ui-init.js', (_req, reply) => {
    void reply.type('application/javascript; charset=utf-8').send(UI_INIT);
  });
  fastify.get<{ Params: { file: string } }>('/docs/:file', (req, reply) => {
    const f = files.get(req.params.file);
    if (!f) {
      void reply.code(404).send({ code: 'NOT_FOUND', message: 'no such file', requestId: req.id });
      return;
    }
    void reply.type(f.type).header('Cache-Control', 'public, max-age=86400').send(f.body);
  });
  return doc;
}
