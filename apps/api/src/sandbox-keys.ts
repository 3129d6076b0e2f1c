import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '#common';
import { type ApiKey, ROLES, type Role, apiKey } from '#config';

/** Where the sandbox keeps its generated keys, beside the embedded database. */
export const SANDBOX_KEYS_FILE = 'sandbox-keys.json';

export interface SandboxSecrets {
  readonly apiKeys: ApiKey[];
  readonly webhookSecret: string;
  /** Where they are kept, or undefined when they live only in this process. */
  readonly file: string | undefined;
  /** True when this start made them (first start, or nothing kept). */
  readonly fresh: boolean;
}

const generate = (): { keys: Record<Role, string>; webhookSecret: string } => ({
  keys: Object.fromEntries(ROLES.map((r) => [r, `pb_${r}_${randomBytes(18).toString('base64url')}`])) as Record<
    Role,
    string
  >,
  webhookSecret: `whsec_${randomBytes(24).toString('base64url')}`,
});

/**
 * The sandbox's API keys and webhook secret (issue 13 item 7). On the embedded database they are kept
 * in DATA_DIR/sandbox-keys.json (mode 0600, written atomically), so a restart prints the same keys and a
 * new user's curl commands keep working; delete the file for new ones. With DATABASE_URL there is no
 * data directory of ours: they are made per start.
 */
export function sandboxSecrets(dataDir: string | undefined): SandboxSecrets {
  if (dataDir === undefined) {
    const g = generate();
    return { apiKeys: toKeys(g.keys), webhookSecret: g.webhookSecret, file: undefined, fresh: true };
  }
  const file = join(dataDir, SANDBOX_KEYS_FILE);
  if (existsSync(file)) {
    const kept = parse(readFileSync(file, 'utf8'), file);
    return { apiKeys: toKeys(kept.keys), webhookSecret: kept.webhookSecret, file, fresh: false };
  }
  const g = generate();
  mkdirSync(dataDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ version: 1, ...g }, null, 2)}\n`, { mode: 0o600 });
  try {
    // link, not rename: if another process made the file meanwhile, its keys win and are used here too.
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return sandboxSecrets(dataDir);
  } finally {
    unlinkSync(tmp);
  }
  return { apiKeys: toKeys(g.keys), webhookSecret: g.webhookSecret, file, fresh: true };
}

function toKeys(keys: Record<Role, string>): ApiKey[] {
  return ROLES.map((r) => apiKey(r, keys[r]));
}

/** The kept file, checked; the error names the file, never a value in it. */
function parse(text: string, file: string): { keys: Record<Role, string>; webhookSecret: string } {
  const bad = (): ConfigError =>
    new ConfigError(`${file} is not a sandbox key file PayBridge wrote: delete it and start again for new keys`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad();
  }
  const o = v as { keys?: Record<string, unknown>; webhookSecret?: unknown };
  const ok =
    typeof o === 'object' &&
    o !== null &&
    typeof o.webhookSecret === 'string' &&
    o.webhookSecret.length >= 16 &&
    ROLES.every((r) => typeof o.keys?.[r] === 'string' && String(o.keys[r]).length >= 16);
  if (!ok) throw bad();
  return { keys: o.keys as Record<Role, string>, webhookSecret: o.webhookSecret as string };
}
