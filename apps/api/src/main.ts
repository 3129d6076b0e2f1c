import { existsSync } from 'node:fs';
import { Logger } from '@nestjs/common';
import { ConfigError } from '#common';
import { type ApiKey, decideSandboxMode, loadAppConfig, loadPaysDir } from '#config';
import { channelProviders } from '#channels';
import { PublicUrl } from '#payments';
import { startSandbox } from '#sandbox';
import { createApiApp } from './app.factory.js';
import { sandboxSecrets } from './sandbox-keys.js';

/**
 * `npm start`: the api (and, with JOBS_ENABLED, the sweeps) on PostgreSQL when DATABASE_URL is set, on
 * the embedded database otherwise; in sandbox mode when no channel is configured (API.md §9).
 */
async function main(): Promise<void> {
  const logger = new Logger('PayBridge');
  const config = loadAppConfig();
  const paysDirExists = existsSync(config.paysDir);
  const configured = paysDirExists ? loadPaysDir(config.paysDir) : [];
  const mode = decideSandboxMode({
    paysDir: config.paysDir,
    paysDirSet: config.paysDirSet,
    paysDirExists,
    configuredInstances: configured.length,
    paySandbox: config.paySandbox,
    nodeEnv: config.nodeEnv,
    host: config.host,
    apiKeysSet: config.apiKeys !== undefined,
    publicBaseUrlSet: config.publicBaseUrl !== undefined,
  });
  const sandboxOn = mode.sandbox;
  if (!sandboxOn && !config.publicBaseUrl) {
    if (config.nodeEnv === 'production') {
      throw new ConfigError('PUBLIC_BASE_URL is not set: channels would be told to send notifies to a local address');
    }
    logger.warn('PUBLIC_BASE_URL is not set: channels are given notify URLs on the listen address');
  }
  const listenUrl = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}`;
  const base = config.publicBaseUrl ?? listenUrl;
  // Sandbox keys and webhook secret: kept in DATA_DIR on the embedded database (sandbox-keys.ts).
  const kept =
    sandboxOn && (!config.apiKeys || config.webhookSecrets.length === 0)
      ? sandboxSecrets(config.databaseUrl ? undefined : config.dataDir)
      : undefined;
  let webhookSecrets = config.webhookSecrets;
  if (kept && webhookSecrets.length === 0) webhookSecrets = [kept.webhookSecret];
  if (config.webhookUrls.length > 0 && webhookSecrets.length === 0) {
    throw new ConfigError('WEBHOOK_URLS needs WEBHOOK_SECRETS: every delivery is signed (docs/webhooks.md)');
  }
  const sandbox = sandboxOn ? await startSandbox({ baseUrl: base, webhookSecrets }) : undefined;

  let apiKeys: readonly ApiKey[] | undefined = config.apiKeys;
  const whence = kept?.file
    ? kept.fresh
      ? `generated and kept in ${kept.file}; delete it for new ones`
      : `kept in ${kept.file} since the first start; delete it for new ones`
    : 'generated for this run';
  if (!apiKeys) {
    if (!sandboxOn || !kept)
      throw new ConfigError('API_KEYS is not set: give comma-separated role:secret pairs (API.md §8)');
    apiKeys = kept.apiKeys;
    // Printed on purpose, to stdout and not through the log: sandbox keys are for the person at the terminal.
    process.stdout.write(
      `\nSandbox API keys (${whence}; set API_KEYS to choose your own):\n` +
        apiKeys.map((k) => `  ${k.role.padEnd(8)} ${k.secret}`).join('\n') +
        '\n\n',
    );
  }
  if (sandboxOn && config.webhookSecrets.length === 0) {
    process.stdout.write(
      `Sandbox webhook secret (${whence}; set WEBHOOK_SECRETS to choose your own):\n  ${webhookSecrets[0]}\n\n`,
    );
  }

  const app = await createApiApp({
    // In the sandbox the app's events also go to its own inbox (/sandbox/webhooks), over loopback http.
    config: sandbox
      ? {
          ...config,
          webhookSecrets,
          webhookAllowPrivate: true,
          webhookUrls: [...config.webhookUrls, sandbox.webhookInboxUrl],
        }
      : config,
    apiKeys,
    channelProviders: channelProviders(),
    instances: [...configured, ...(sandbox?.instances ?? [])],
    mounts: sandbox?.mounts,
  });
  await app.listen(config.port, config.host);
  app.get(PublicUrl).setListeningUrl(listenUrl);
  if (sandbox) {
    logger.warn(`sandbox mode (${mode.reason}): simulated Alipay, WeChat Pay and Alipay+ at ${base}/sandbox/`);
    logger.log(`sandbox webhook inbox: ${base}/sandbox/webhooks`);
    process.once('beforeExit', () => sandbox.close());
  }
  logger.log(`admin console: ${base}/admin (sign in with a viewer, operator or admin key)`);
  logger.log(
    `PayBridge listening on ${listenUrl} (${config.databaseUrl ? 'PostgreSQL' : `embedded database in ${config.dataDir}`})`,
  );
}

main().catch((err: unknown) => {
  // Configuration errors name the field and never hold a secret; print them without a stack.
  if (err instanceof ConfigError) console.error(`PayBridge cannot start: ${err.message}`);
  else console.error('PayBridge failed to start:', err);
  process.exit(1);
});
