import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { ChannelInstanceConfig } from '#channels';
import { createAlipayPlusSandbox, createAlipaySandbox, createWechatPaySandbox } from '#sandbox';

/**
 * The channel simulators of bench/flow.bench.ts in a process of their own (as the real providers are on
 * machines of their own): Alipay, WeChat Pay and Alipay+, each on its own loopback server, verifying and
 * signing every call. Started with an IPC channel (child_process.spawn with 'ipc'); it sends
 * `{ kind: 'ready', instances }` once listening, and stops on SIGTERM.
 */
export interface SimulatorsReady {
  readonly kind: 'ready';
  readonly instances: ChannelInstanceConfig[];
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;
const servers: ReturnType<typeof createServer>[] = [];
const closers: (() => void)[] = [];

async function serve(
  make: (baseUrl: string) => { simulator: { listener: Listener; close(): void }; instance: ChannelInstanceConfig },
): Promise<ChannelInstanceConfig> {
  let listener: Listener = (_req, res) => res.writeHead(503).end();
  const server = createServer((req, res) => listener(req, res));
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  if (!a || typeof a === 'string') throw new Error('no TCP address');
  const { simulator, instance } = make(`http://127.0.0.1:${a.port}`);
  listener = simulator.listener;
  servers.push(server);
  closers.push(() => simulator.close());
  return instance;
}

const instances = [
  await serve((baseUrl) => createAlipaySandbox({ baseUrl })),
  await serve((baseUrl) => createWechatPaySandbox({ baseUrl })),
  await serve((baseUrl) => createAlipayPlusSandbox({ baseUrl })),
];
if (!process.send) throw new Error('simulators.process.js must be started with an IPC channel');
process.send({ kind: 'ready', instances } satisfies SimulatorsReady);
process.on('SIGTERM', () => {
  for (const c of closers) c();
  for (const s of servers) {
    s.close();
    s.closeAllConnections();
  }
  process.exit(0);
});
