import type { LineBatch } from '../../lines/line-batch.js';
import { HttpClient } from '../../net/http-client.js';
import { checkStatus } from '../http-delivery.js';
import type { HttpEndpointOptions } from '../../net/http-options.js';
import type { BatchOptions } from '../batch-options.js';
import { RejectedBatch } from '../send-outcome.js';
import { Sink, type SinkContext } from '../sink.js';

export interface PostSinkOptions {
  endpoint: HttpEndpointOptions;
  batch: BatchOptions;
  /** Sent with every request (content type, auth, tenant); `endpoint.headers` override them, names in any case. */
  headers: Record<string, string>;
  /** Replaces the url's path (a protocol's fixed endpoint); undefined: the url as given. */
  path?: string;
}

/**
 * A sink that POSTs each batch as one request body and applies the HTTP delivery rule (checkStatus): 2xx
 * delivered; 429, 5xx and network errors retried; other 4xx rejected. A retried batch is sent with the body it was
 * first encoded into, byte for byte: no encoding work again, and a peer that deduplicates identical entries (Loki:
 * same stream, timestamp and line) drops the copy a lost answer made it take twice.
 */
export abstract class PostSink extends Sink {
  /** The body is a copy of the lines: nothing refers to the batch's bytes once `encode` returned. */
  protected override reuseBatches = true;
  private readonly client: HttpClient;
  private readonly path: string | undefined;
  /** The body of the batch whose send failed and will be retried; the loop retries that same batch next. */
  private retry: { batch: LineBatch; body: Buffer } | undefined;

  constructor(options: PostSinkOptions, context: SinkContext) {
    super(context);
    const { endpoint, batch } = options;
    this.batchBy(batch);
    this.path = options.path;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries({ ...options.headers, ...endpoint.headers })) headers[name.toLowerCase()] = value;
    this.client = new HttpClient({
      url: new URL(endpoint.url),
      headers,
      tls: endpoint.tls,
      timeoutMs: endpoint.timeout_ms,
      gzip: endpoint.compression === 'gzip',
      // One request is in flight: its gzip time is the sink's pace. Level 1 compresses 2-5x faster than zlib's
      // default 6 for a few more bytes per line (docs/sinks/http.md, Throughput).
      gzipLevel: 1,
    });
  }

  /** The request body for a batch. */
  protected abstract encode(batch: LineBatch): Buffer;

  protected async send(batch: LineBatch): Promise<void> {
    const body = this.retry?.batch === batch ? this.retry.body : this.encode(batch);
    this.retry = { batch, body };
    const response = await this.client.post(body, {}, this.path);
    try {
      checkStatus(response);
    } catch (err) {
      if (err instanceof RejectedBatch) this.retry = undefined;
      throw err;
    }
    this.retry = undefined;
  }

  protected async close(): Promise<void> {
    this.client.close();
  }
}
