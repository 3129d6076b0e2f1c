import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { ConfigError } from '#common';

/** Must match CHANNEL_TYPES in libs/channels (config does not import channels: imports flow one way). */
const KNOWN_TYPES = ['pays.AliPayType', 'pays.WechatPayType', 'pays.AlipayPlusType'] as const;
export type PaysChannelType = (typeof KNOWN_TYPES)[number];

export interface LoadedInstance {
  readonly fullName: string;
  readonly type: PaysChannelType;
  readonly title: string;
  readonly isDefault: boolean;
  readonly config: Readonly<Record<string, unknown>>;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads the seeds' `pays/` folder (API.md §2): one folder per instance holding `e.json` (type, title,
 * default) and `<name>.json` ({"config": {...}}). String values may be `${ENV}` or `file:relative/path`.
 * Every error names the instance and the field, never a value.
 */
export function loadPaysDir(dir: string, env: Env = process.env): LoadedInstance[] {
  if (!existsSync(dir)) return [];
  const root = resolve(dir);
  const out: LoadedInstance[] = [];
  const folders = readdirSync(root)
    .filter((name) => !name.startsWith('.') && statSync(join(root, name)).isDirectory())
    .sort();
  for (const folder of folders) {
    const fullName = `pays.${folder}`;
    if (!/^[A-Za-z0-9_-]{1,48}$/.test(folder)) {
      throw new ConfigError(`${fullName}: the folder name may only hold letters, digits, _ and -`);
    }
    const ePath = join(root, folder, 'e.json');
    const cPath = join(root, folder, `${folder}.json`);
    const e = readJson(ePath, `${fullName}: e.json`);
    const c = existsSync(cPath) ? readJson(cPath, `${fullName}: ${folder}.json`) : {};
    const type = e['type'];
    if (typeof type !== 'string' || !(KNOWN_TYPES as readonly string[]).includes(type)) {
      throw new ConfigError(`${fullName}: field "type" in e.json must be one of ${KNOWN_TYPES.join(', ')}`);
    }
    const rawConfig = c['config'] ?? e['config'] ?? {};
    if (typeof rawConfig !== 'object' || rawConfig === null || Array.isArray(rawConfig)) {
      throw new ConfigError(`${fullName}: field "config" must be an object`);
    }
    const config: Record<string, unknown> = {};
    for (const [field, value] of Object.entries(rawConfig as Record<string, unknown>)) {
      config[field] = resolveValue(value, { fullName, field, baseDir: join(root, folder), root, env });
    }
    const title = e['title'];
    out.push({
      fullName,
      type: type as PaysChannelType,
      title: typeof title === 'string' ? title : folder,
      isDefault: e['default'] === true,
      config,
    });
  }
  return out;
}

interface ResolveCtx {
  readonly fullName: string;
  readonly field: string;
  readonly baseDir: string;
  readonly root: string;
  readonly env: Env;
}

function resolveValue(value: unknown, ctx: ResolveCtx): unknown {
  if (typeof value !== 'string') return value;
  const envMatch = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(value);
  if (envMatch) {
    const name = envMatch[1] ?? '';
    const v = ctx.env[name];
    if (v === undefined || v === '') {
      throw new ConfigError(
        `${ctx.fullName}: field "${ctx.field}" refers to environment variable ${name}, which is not set`,
      );
    }
    return v;
  }
  if (value.startsWith('file:')) {
    const rel = value.slice('file:'.length);
    // Beside the instance's own files first, then relative to the pays/ folder itself.
    const inFolder = resolve(ctx.baseDir, rel);
    const target = existsSync(inFolder) ? inFolder : resolve(ctx.root, rel);
    if (!target.startsWith(ctx.root + sep)) {
      throw new ConfigError(`${ctx.fullName}: field "${ctx.field}" points at a file outside the pays folder`);
    }
    if (!existsSync(target)) {
      throw new ConfigError(`${ctx.fullName}: field "${ctx.field}" points at a file that does not exist`);
    }
    return readFileSync(target, 'utf8').trim();
  }
  if (ctx.field === 'pfxPath' && !isAbsolute(value)) {
    // A binary file (WeChat's apiclient_cert.p12): the path is resolved like `file:`, the channel reads the bytes.
    const inFolder = resolve(ctx.baseDir, value);
    const target = existsSync(inFolder) ? inFolder : resolve(ctx.root, value);
    if (!target.startsWith(ctx.root + sep)) {
      throw new ConfigError(`${ctx.fullName}: field "${ctx.field}" points at a file outside the pays folder`);
    }
    if (!existsSync(target)) {
      throw new ConfigError(`${ctx.fullName}: field "${ctx.field}" points at a file that does not exist`);
    }
    return target;
  }
  return value;
}

function readJson(path: string, what: string): Record<string, unknown> {
  if (!existsSync(path)) throw new ConfigError(`${what} is missing`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new ConfigError(`${what} is not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${what} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}
