import type { ConfigReader } from '../../config-reader.js';
import { RateLimitedLog } from '../../diagnostics.js';
import type { LineBatch } from '../../lines/line-batch.js';
import { HttpClient } from '../../net/http-client.js';
import { checkStatus } from '../http-delivery.js';
import { parseHttpEndpoint, type HttpEndpointOptions } from '../../net/http-options.js';
import { parseBatch, type BatchOptions } from '../batch-options.js';
import type { RejectedLines } from '../send-outcome.js';
import { Sink, type SinkContext } from '../sink.js';
import type { SinkType } from '../sink-type.js';
import { JsonLogsEncoder } from './json-encoder.js';
import { ProtobufLogsEncoder } from './protobuf-encoder.js';
import { partialSuccess, statusMessage } from './response.js';

/** The normalized `otlp` sink options, as check-config prints them. */
export interface OtlpOptions extends HttpEndpointOptions {
  encoding: 'protobuf' | 'json';
  batch: BatchOptions;
}

/** An OpenTelemetry Collector's OTLP/HTTP receiver on this host, at its default port. */
const DEFAULT_URL = 'http://127.0.0.1:4318';
const LOGS_PATH = 'v1/logs';
/** Requests of up to 1 MiB: with one in flight, larger requests are what raises the rate (docs/sinks/otlp.md). */
const DEFAULT_BATCH: BatchOptions = { max_lines: 8192, max_bytes: 1 << 20, max_delay_ms: 200 };
/** zlib's fastest level: twice the speed of its default for a quarter more bytes (docs/sinks/otlp.md#throughput). */
const GZIP_LEVEL = 1;

function parse(reader: ConfigReader): OtlpOptions {
  const endpoint = parseHttpEndpoint(reader, { url: DEFAULT_URL, compression: 'gzip' });
  return {
    ...endpoint,
    encoding: reader.oneOf('encoding', ['protobuf', 'json'] as const, 'protobuf'),
    batch: parseBatch(reader.child('batch'), DEFAULT_BATCH),
  };
}

/** `url` is the collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT: logs go to its path plus `/v1/logs`. */
function logsUrl(base: string): URL {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${LOGS_PATH}`;
  return url;
}

/** Forwards lines as OTLP log records over OTLP/HTTP (protobuf or JSON), one request per batch. */
class OtlpSink extends Sink {
  /** Each batch is encoded into a request body of its own: nothing refers to its bytes after the send. */
  protected override reuseBatches = true;
  private readonly client: HttpClient;
  private readonly encoder: ProtobufLogsEncoder | JsonLogsEncoder;
  private readonly partialLog: RateLimitedLog;

  constructor(options: OtlpOptions, context: SinkContext) {
    super(context);
    this.batchBy(options.batch);
    this.encoder = options.encoding === 'json' ? new JsonLogsEncoder() : new ProtobufLogsEncoder();
    this.client = new HttpClient({
      url: logsUrl(options.url),
      headers: { ...options.headers, 'content-type': this.encoder.contentType },
      tls: options.tls,
      timeoutMs: options.timeout_ms,
      gzip: options.compression === 'gzip',
      gzipLevel: GZIP_LEVEL,
    });
    this.partialLog = new RateLimitedLog(this.log);
  }

  protected async send(batch: LineBatch): Promise<void | RejectedLines> {
    const response = await this.client.post(this.encoder.encode(batch));
    // A collector's error body is a google.rpc.Status: its message is what the log should show.
    checkStatus({ ...response, body: statusMessage(response) });
    const partial = partialSuccess(response);
    if (partial === undefined) return undefined;
    this.partialLog.error(
      { rejected: partial.rejected, records: batch.count, err: partial.message },
      'collector took a batch but refused some of its records (partial_success); that many lines count as dropped (rejected)',
    );
    if (partial.rejected === 0) return undefined;
    // The collector says how many records, not which: counted as that many lines, at the batch's bytes per record.
    const records = Math.min(partial.rejected, batch.count);
    return {
      lines: Math.min(records, batch.lines),
      bytes: Math.min(batch.bytes, Math.round((batch.bytes * records) / batch.count)),
    };
  }

  protected async close(): Promise<void> {
    this.client.close();
  }
}

export const otlpSink: SinkType<OtlpOptions> = {
  type: 'otlp',
  parse,
  create: (options, context) => new OtlpSink(options, context),
};
