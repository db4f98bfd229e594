import type { ConfigReader } from '../../config-reader.js';
import { RateLimitedLog } from '../../diagnostics.js';
import { ByteWriter } from '../../lines/byte-writer.js';
import type { LineBatch } from '../../lines/line-batch.js';
import type { StreamMetadata } from '../../mesos/metadata.js';
import { authorizationHeader, parseAuth, type HttpAuth } from '../../net/http-auth.js';
import { HttpClient } from '../../net/http-client.js';
import { checkStatus } from '../http-delivery.js';
import { parseHttpEndpoint, type HttpEndpointOptions } from '../../net/http-options.js';
import { parseBatch, type BatchOptions } from '../batch-options.js';
import { RejectedBatch, type RejectedLines } from '../send-outcome.js';
import { Sink, type SinkContext } from '../sink.js';
import type { SinkType } from '../sink-type.js';
import { BatchProgress } from './batch-progress.js';
import { BULK_FILTER_PATH, readBulkResponse, type ItemResult } from './bulk-response.js';
import { DocumentEncoder } from './document.js';
import { compileIndexName, type IndexNameTemplate } from './index-name.js';

const MODES = ['data_stream', 'index'] as const;
type Mode = (typeof MODES)[number];

/** Data streams take only `create`; `index` also writes into a plain index (or an alias). */
const ACTION: Record<Mode, 'create' | 'index'> = { data_stream: 'create', index: 'index' };
/** `logs-*-*` matches Elasticsearch's built-in logs template; an index per day, as Logstash names them. */
const DEFAULT_INDEX: Record<Mode, string> = { data_stream: 'logs-mesos-default', index: 'mesos-logs-{date}' };
const DEFAULT_BATCH: BatchOptions = { max_lines: 1000, max_bytes: 5 << 20, max_delay_ms: 1000 };

/** The normalized `elasticsearch` sink options, as check-config prints them. */
export interface ElasticsearchOptions extends HttpEndpointOptions {
  mode: Mode;
  index: string;
  auth?: HttpAuth;
  batch: BatchOptions;
}

function parse(reader: ConfigReader): ElasticsearchOptions {
  const endpoint = parseHttpEndpoint(reader, { url: 'http://127.0.0.1:9200', compression: 'gzip' });
  const mode = reader.oneOf('mode', MODES, 'data_stream');
  const index = reader.string('index', DEFAULT_INDEX[mode]);
  compileIndexName(reader.key('index'), index);
  const auth = parseAuth(reader, new URL(endpoint.url), endpoint.headers, { apiKey: true });
  const batch = parseBatch(reader.child('batch'), DEFAULT_BATCH);
  return { ...endpoint, mode, index, ...(auth === undefined ? {} : { auth }), batch };
}

/** The `_bulk` endpoint under the configured URL's path; its query (e.g. `?pipeline=NAME`) is kept. */
function bulkPath(url: string): string {
  const bulk = new URL(url);
  bulk.pathname = `${bulk.pathname.replace(/\/+$/, '')}/_bulk`;
  bulk.searchParams.set('filter_path', BULK_FILTER_PATH);
  return `${bulk.pathname}${bulk.search}`;
}

const HOUR_MS = 3_600_000;
const NEWLINE = Buffer.from('\n');
/** A document and its action line besides the line itself: the timestamp, the ids, the JSON around them. */
const ESTIMATED_DOCUMENT_BYTES = 512;
/** zlib's fastest level: 2.3 times the speed of its default for 16% more bytes (docs/sinks/elasticsearch.md#throughput). */
const GZIP_LEVEL = 1;

/**
 * Sends lines as documents through the `_bulk` API of Elasticsearch or OpenSearch: one request per batch, one in
 * flight. Documents a `_bulk` answer asks to retry (429) are sent again, alone and in order, by the next attempt of
 * the same batch; documents it refuses for good are counted as rejected.
 */
class ElasticsearchSink extends Sink {
  /** Documents are encoded into a request body of their own: nothing refers to the batch's bytes after a send. */
  protected override reuseBatches = true;
  private readonly client: HttpClient;
  private readonly path: string;
  private readonly action: 'create' | 'index';
  private readonly index: IndexNameTemplate;
  private readonly documents = new DocumentEncoder();
  /** The action line of each metadata, for the hour it was rendered in (a template's finest date part is %H). */
  private readonly actionLines = new WeakMap<StreamMetadata, { hour: number; line: Buffer }>();
  private progress: BatchProgress | undefined;
  /** Refused documents are logged apart from failed sends, so that neither hides the other. */
  private readonly refusals: RateLimitedLog;

  constructor(options: ElasticsearchOptions, context: SinkContext) {
    super(context);
    this.batchBy(options.batch);
    this.action = ACTION[options.mode];
    this.index = compileIndexName('index', options.index);
    this.path = bulkPath(options.url);
    this.client = new HttpClient({
      url: new URL(options.url),
      headers: {
        ...options.headers,
        'content-type': 'application/x-ndjson',
        accept: 'application/json',
        ...(options.auth === undefined ? {} : { authorization: authorizationHeader(options.auth) }),
      },
      tls: options.tls,
      timeoutMs: options.timeout_ms,
      gzip: options.compression === 'gzip',
      gzipLevel: GZIP_LEVEL,
    });
    this.refusals = new RateLimitedLog(this.log);
  }

  protected async send(batch: LineBatch): Promise<void | RejectedLines> {
    if (this.progress?.batch !== batch) this.progress = new BatchProgress(batch);
    const progress = this.progress;
    const pending = progress.pending();
    const response = await this.client.post(this.encode(batch, pending), {}, this.path);
    try {
      checkStatus(response);
    } catch (err) {
      // Part of the batch is already in: the refusal covers only the rest.
      if (!(err instanceof RejectedBatch) || !progress.started) throw err;
      for (const i of pending) progress.settle(i, 'rejected');
      const message = 'elasticsearch refused the rest of a batch; its lines are dropped (rejected), not retried';
      this.refusals.error({ err: err.message, status: err.status, documents: pending.length }, message);
      return progress.rejected();
    }
    const results = readBulkResponse(response.body, pending.length);
    if (results === 'all delivered') for (const i of pending) progress.settle(i, 'delivered');
    else this.settleItems(progress, pending, results);
    return progress.rejected();
  }

  /** Settles the documents stored or refused for good; throws (to be retried) when some are to be sent again. */
  private settleItems(progress: BatchProgress, pending: number[], results: ItemResult[]): void {
    let retry: string | undefined;
    let retries = 0;
    let refused: string | undefined;
    let refusals = 0;
    results.forEach((result, k) => {
      const reason = `${result.status} ${result.error ?? ''}`.trim();
      if (result.outcome === 'retry') {
        retries++;
        retry ??= reason;
        return;
      }
      progress.settle(pending[k], result.outcome);
      if (result.outcome === 'rejected') {
        refusals++;
        refused ??= reason;
      }
    });
    if (refusals > 0) {
      const message = 'elasticsearch refused documents; their lines are dropped (rejected), not retried';
      this.refusals.error({ err: refused, documents: refusals }, message);
    }
    if (retries > 0) {
      throw new Error(`elasticsearch did not take ${retries} of ${pending.length} documents (${retry}); retrying them`);
    }
  }

  protected async close(): Promise<void> {
    this.client.close();
  }

  /** The NDJSON body: an action line and a document per line, each ending in a newline. */
  private encode(batch: LineBatch, lines: number[]): Buffer {
    const body = new ByteWriter(lines.length * ESTIMATED_DOCUMENT_BYTES + batch.bytes);
    for (const i of lines) {
      body.bytes(this.actionLine(batch.metas[i], batch.times[i]));
      this.documents.write(body, batch, i);
      body.bytes(NEWLINE);
    }
    return body.contents();
  }

  /** `{"create":{"_index":"NAME"}}` and its newline. */
  private actionLine(meta: StreamMetadata, time: number): Buffer {
    const hour = Math.floor(time / HOUR_MS);
    const cached = this.actionLines.get(meta);
    if (cached?.hour === hour) return cached.line;
    const line = Buffer.from(`${JSON.stringify({ [this.action]: { _index: this.index.render(meta, time) } })}\n`);
    this.actionLines.set(meta, { hour, line });
    return line;
  }
}

export const elasticsearchSink: SinkType<ElasticsearchOptions> = {
  type: 'elasticsearch',
  parse,
  create: (options, context) => new ElasticsearchSink(options, context),
};
