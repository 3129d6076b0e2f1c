import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ChannelInstanceConfig } from '#channels';

export const WORKER_MAIN = resolve('dist/apps/worker/src/main.js');
export const API_MAIN = resolve('dist/apps/api/src/main.js');

/** Writes instance configs in the seeds' pays/ format, as an operator would. */
export function writePaysDir(instances: ChannelInstanceConfig[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'paybridge-pays-'));
  for (const inst of instances) {
    const folder = inst.fullName.replace(/^pays\./, '');
    mkdirSync(join(dir, folder));
    writeFileSync(
      join(dir, folder, 'e.json'),
      JSON.stringify({ type: inst.type, title: inst.title, default: inst.isDefault }),
    );
    writeFileSync(join(dir, folder, `${folder}.json`), JSON.stringify({ config: inst.config }));
  }
  return dir;
}

export interface Spawned {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a compiled worker process (built by `npm run build`, which `npm test` runs first). */
export function spawnWorker(env: Record<string, string>): Spawned {
  return spawnMain(WORKER_MAIN, env);
}

/** Starts a compiled api process (HTTP plus, with JOBS_ENABLED, the same sweeps). */
export function spawnApi(env: Record<string, string>): Spawned {
  return spawnMain(API_MAIN, env);
}

function spawnMain(main: string, env: Record<string, string>): Spawned {
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
  const child = spawn(process.execPath, [main], {
    env: { PATH: process.env['PATH'] ?? '', NODE_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => res({ code, signal })),
  );
  return { child, output: () => out, exited };
}

/** A standalone loopback server for a simulator's listener (outside any app process). */
export async function listen(
  listener: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void,
  port = 0,
): Promise<{ server: Server; port: number }> {
  const server = createServer(listener);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : port };
}
