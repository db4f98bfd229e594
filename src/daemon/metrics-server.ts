import { createServer, type Server } from 'node:http';
import { showListenAddress, type ListenAddress } from '../config/daemon-section.js';
import type { Logger } from '../diagnostics.js';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics.js';
import type { DaemonStatus } from './status.js';

/**
 * The Prometheus endpoint on `daemon.metrics_listen`, served by the root daemon from the same figures as `status`.
 * It answers `GET /metrics` (and `/`). A bind that fails is logged and the daemon serves on without it; a reload
 * with another address moves it.
 */
export class MetricsServer {
  private server: Server | undefined;
  private address = '';

  constructor(
    private readonly log: Logger,
    private readonly collect: () => Promise<DaemonStatus>,
  ) {}

  /** Serves on `address`; undefined: serves nowhere. */
  listen(address: ListenAddress | undefined): void {
    const wanted = address === undefined ? '' : showListenAddress(address);
    if (wanted === this.address) return;
    this.server?.close();
    this.server?.closeAllConnections();
    this.server = undefined;
    this.address = wanted;
    if (address === undefined) return;
    const server = createServer((request, response) => {
      const path = (request.url ?? '').split('?')[0];
      if (request.method !== 'GET' || (path !== '/metrics' && path !== '/')) {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('mesos-log-splitter serves GET /metrics\n');
        return;
      }
      this.collect().then(
        (status) => response.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE }).end(renderMetrics(status)),
        (err) => {
          this.log.error({ err }, 'gathering the metrics failed');
          response.writeHead(500, { 'content-type': 'text/plain' }).end('gathering the metrics failed\n');
        },
      );
    });
    server.on('error', (err: NodeJS.ErrnoException) => {
      this.log.error({ metrics_listen: wanted, err: err.message }, 'the metrics endpoint cannot listen; serving streams without it');
      if (this.server === server) this.server = undefined;
      // Set again: a reload naming the same address tries again.
      if (this.address === wanted) this.address = '';
    });
    server.listen(address.port, address.host, () => this.log.info({ metrics_listen: wanted }, 'serving metrics'));
    this.server = server;
  }
}
