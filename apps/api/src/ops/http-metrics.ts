import type { IncomingMessage, ServerResponse } from 'node:http';
import { Histogram, type Registry } from 'prom-client';
import { routeOf } from './access-log.js';

/**
 * `http_request_duration_seconds{method,route,status}`: count and latency of every request by route
 * template (bounded: unmatched paths share one label), observed when the answer is finished.
 */
export function httpMetricsObserver(registry: Registry): (req: IncomingMessage, res: ServerResponse) => void {
  const histogram = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP requests by method, route template and status, with their duration',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  return (req, res) => {
    const end = histogram.startTimer();
    res.once('finish', () => end({ method: req.method, route: routeOf(req), status: String(res.statusCode) }));
  };
}
