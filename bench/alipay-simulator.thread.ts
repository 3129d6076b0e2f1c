import { createServer } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import { createAlipaySandbox } from '#sandbox';

/**
 * The Alipay simulator of a sweep benchmark run, served on 127.0.0.1:0 from a worker thread. The
 * simulator verifies and signs every call with RSA; on the sweep's own event loop that work would be
 * billed to the sweep, while a real provider does it on its own machines.
 *
 * Protocol with the parent: it posts `{ kind: 'ready', instance }` once listening; it answers
 * `{ kind: 'summary' }` with the gateway calls it saw, and `{ kind: 'stop' }` by closing and exiting.
 */
export interface SimulatorSummary {
  readonly kind: 'summary';
  /** Calls per gateway method. */
  readonly calls: Record<string, number>;
  /** Distinct out_trade_no values that were closed, and how many of them were closed more than once. */
  readonly closedTrades: number;
  readonly closedTwice: number;
}

const { latencyMs } = workerData as { latencyMs: number };
const port = parentPort;
if (!port) throw new Error('alipay-simulator.thread.js runs as a worker thread of sweep.bench.js');

let listener: Parameters<typeof createServer>[1] = (_req, res) => res.writeHead(503).end();
const server = createServer((req, res) => listener?.(req, res));
server.keepAliveTimeout = 60_000;
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const address = server.address();
if (!address || typeof address === 'string') throw new Error('the simulator has no TCP address');
const sandbox = createAlipaySandbox({ baseUrl: `http://127.0.0.1:${address.port}` });
sandbox.simulator.setLatencyMs(latencyMs);
listener = sandbox.simulator.listener;

port.on('message', (msg: { kind: 'summary' | 'stop' }) => {
  if (msg.kind === 'summary') {
    const calls: Record<string, number> = {};
    const closes = new Map<string, number>();
    for (const c of sandbox.simulator.callLog) {
      calls[c.method] = (calls[c.method] ?? 0) + 1;
      if (c.method === 'alipay.trade.close' && c.outTradeNo)
        closes.set(c.outTradeNo, (closes.get(c.outTradeNo) ?? 0) + 1);
    }
    let closedTwice = 0;
    for (const n of closes.values()) if (n > 1) closedTwice++;
    const summary: SimulatorSummary = { kind: 'summary', calls, closedTrades: closes.size, closedTwice };
    port.postMessage(summary);
  } else {
    sandbox.simulator.close();
    server.closeAllConnections();
    server.close(() => port.close());
  }
});
port.postMessage({ kind: 'ready', instance: sandbox.instance });
