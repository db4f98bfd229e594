import { ConfigError, type ConfigReader } from '../../config-reader.js';
import type { LineBatch } from '../../lines/line-batch.js';
import { ID_FIELDS, labelFieldName } from '../../mesos/record-fields.js';
import { authorizationHeader, parseAuth, type HttpAuth } from '../../net/http-auth.js';
import { parseHttpEndpoint, type HttpEndpointOptions } from '../../net/http-options.js';
import { parseBatch, type BatchOptions } from '../batch-options.js';
import type { SinkContext } from '../sink.js';
import type { SinkType } from '../sink-type.js';
import { PostSink } from '../http/post-sink.js';
import { LOKI_PUSH_PATH, PushEncoder, type LabelSource } from './push-encoder.js';

/** The normalized `loki` sink options, as check-config prints them. */
export type LokiOptions = HttpEndpointOptions & {
  auth?: HttpAuth;
  tenant?: string;
  labels: string[];
  static_labels: Record<string, string>;
  structured_metadata: boolean;
  batch: BatchOptions;
};

/**
 * One stream per node, framework, task name and stream: few streams, stable across task restarts. Ids that change
 * with every task (task, executor, container ids) would make a stream per task run, which Loki indexes badly; they go
 * as structured metadata.
 */
const DEFAULT_LABELS = ['hostname', 'framework_name', 'task_name', 'stream'];
/** Fields that every line has: a label set holding one of them is never empty (Loki refuses a stream without labels). */
const ALWAYS_SET = ['hostname', 'stream'];
const LABEL_FIELDS: readonly string[] = ['stream', ...ID_FIELDS];
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const BATCH_DEFAULTS: BatchOptions = { max_lines: 1000, max_bytes: 1 << 20, max_delay_ms: 1000 };
const TENANT_HEADER = 'x-scope-orgid';

/** A `labels` entry as a label: an id by its name, or `task_label.KEY` / `executor_label.KEY`; undefined if neither. */
function labelSource(entry: string): LabelSource | undefined {
  if (LABEL_FIELDS.includes(entry)) return { name: entry, field: entry };
  const dot = entry.indexOf('.');
  const kind = entry.slice(0, dot);
  if (dot <= 0 || dot === entry.length - 1 || (kind !== 'task_label' && kind !== 'executor_label')) return undefined;
  const field = labelFieldName(kind, entry.slice(dot + 1));
  return { name: field, field };
}

function parseLabels(reader: ConfigReader): string[] {
  const labels = [...new Set(reader.stringList('labels') ?? DEFAULT_LABELS)];
  const unknown = labels.find((entry) => labelSource(entry) === undefined);
  if (unknown !== undefined) {
    const known = [...LABEL_FIELDS, 'task_label.KEY', 'executor_label.KEY'].join(', ');
    throw new ConfigError(reader.key('labels'), unknown, `is not a metadata field; known: ${known}`);
  }
  return labels;
}

function parseStaticLabels(reader: ConfigReader, labels: string[]): Record<string, string> {
  const staticLabels = reader.stringMap('static_labels');
  const taken = new Set(labels.map((entry) => labelSource(entry)?.name));
  for (const [name, value] of Object.entries(staticLabels)) {
    const key = `${reader.key('static_labels')}.${name}`;
    if (!LABEL_NAME.test(name) || name.startsWith('__')) {
      throw new ConfigError(key, name, 'is not a Loki label name: [a-zA-Z_][a-zA-Z0-9_]*, not starting with __');
    }
    if (taken.has(name)) throw new ConfigError(key, value, 'is also a label taken from metadata (labels)');
    if (value === '') throw new ConfigError(key, value, 'must not be empty (Loki drops a label with an empty value)');
  }
  return staticLabels;
}

function parse(reader: ConfigReader): LokiOptions {
  const endpoint = parseHttpEndpoint(reader, { url: 'http://127.0.0.1:3100', compression: 'gzip' });
  const auth = parseAuth(reader, new URL(endpoint.url), endpoint.headers);
  const tenant = reader.optionalString('tenant');
  if (tenant !== undefined && Object.keys(endpoint.headers).some((name) => name.toLowerCase() === TENANT_HEADER)) {
    throw new ConfigError(reader.key('tenant'), tenant, 'conflicts with an X-Scope-OrgID header in headers');
  }
  const labels = parseLabels(reader);
  const staticLabels = parseStaticLabels(reader, labels);
  if (Object.keys(staticLabels).length === 0 && !labels.some((entry) => ALWAYS_SET.includes(entry))) {
    throw new ConfigError(
      reader.key('labels'),
      labels,
      'can leave a stream without labels, which Loki refuses: include hostname or stream, or set static_labels',
    );
  }
  return {
    ...endpoint,
    ...(auth === undefined ? {} : { auth }),
    ...(tenant === undefined ? {} : { tenant }),
    labels,
    static_labels: staticLabels,
    structured_metadata: reader.boolean('structured_metadata', true),
    batch: parseBatch(reader.child('batch'), BATCH_DEFAULTS),
  };
}

/** Pushes lines to Loki's `/loki/api/v1/push` as JSON (gzip by default). */
class LokiSink extends PostSink {
  private readonly encoder: PushEncoder;

  constructor(options: LokiOptions, context: SinkContext) {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (options.auth !== undefined) headers.authorization = authorizationHeader(options.auth);
    if (options.tenant !== undefined) headers[TENANT_HEADER] = options.tenant;
    const path = new URL(options.url).pathname === '/' ? LOKI_PUSH_PATH : undefined;
    super({ endpoint: options, batch: options.batch, headers, path }, context);
    this.encoder = new PushEncoder({
      labels: options.labels.map((entry) => labelSource(entry)!),
      staticLabels: options.static_labels,
      structuredMetadata: options.structured_metadata,
    });
  }

  protected encode(batch: LineBatch): Buffer {
    return this.encoder.encode(batch);
  }
}

export const lokiSink: SinkType<LokiOptions> = {
  type: 'loki',
  parse,
  create: (options, context) => new LokiSink(options, context),
};
