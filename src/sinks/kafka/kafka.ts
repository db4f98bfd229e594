import { ConfigError, type ConfigReader } from '../../config-reader.js';
import type { LineBatch } from '../../lines/line-batch.js';
import { compileTemplate } from '../../mesos/template.js';
import { parseTls, type TlsOptions } from '../../net/tls-options.js';
import { parseBatch, type BatchOptions } from '../batch-options.js';
import { Sink, type SinkContext } from '../sink.js';
import type { SinkType } from '../sink-type.js';
import { brokerAddress, COMPRESSIONS, KafkaProducer, SASL_MECHANISMS, type Compression, type SaslOptions } from './producer.js';
import { FORMATS, HEADER_FIELDS, KEYS, RecordEncoder, type Format, type HeaderField, type KeyChoice } from './record.js';

const TRANSPORTS = ['tcp', 'tls'] as const;

/** The normalized `kafka` sink options, as check-config prints them. */
export interface KafkaOptions {
  brokers: string[];
  topic: string;
  key: KeyChoice;
  format: Format;
  headers: HeaderField[];
  compression: Compression;
  client_id: string;
  transport: (typeof TRANSPORTS)[number];
  tls?: TlsOptions;
  sasl?: SaslOptions;
  connect_timeout_ms: number;
  request_timeout_ms: number;
  batch: BatchOptions;
}

/**
 * A broker takes record batches up to message.max.bytes (1 MB by default); a batch of these limits stays under it
 * with JSON values (the ids add ~300 bytes a line) before compression.
 */
const DEFAULT_BATCH: BatchOptions = { max_lines: 1024, max_bytes: 512 * 1024, max_delay_ms: 50 };

/**
 * Node's zlib has zstd from 22.15 and 23.8; on older Nodes the client cannot compress with it. Told by the version,
 * so that checking it does not load node:zlib into every helper.
 */
const zstdAvailable = (): boolean => {
  const [major, minor] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 8) || (major === 22 && minor >= 15);
};

function parseBrokers(reader: ConfigReader): string[] {
  const brokers = reader.stringList('brokers');
  if (brokers === undefined) throw new ConfigError(reader.key('brokers'), undefined, 'is required: a list of host:port');
  const bad = brokers.find((broker) => brokerAddress(broker) === undefined);
  if (bad !== undefined) throw new ConfigError(reader.key('brokers'), brokers, `has ${JSON.stringify(bad)}; each must be host:port`);
  return brokers;
}

function parseSasl(reader: ConfigReader): SaslOptions {
  const mechanism = reader.oneOf('mechanism', SASL_MECHANISMS, 'scram-sha-512');
  const username = reader.string('username');
  const password = reader.optionalString('password');
  const passwordFile = reader.optionalString('password_file');
  if ((password === undefined) === (passwordFile === undefined)) {
    throw new ConfigError(reader.key('password'), undefined, 'or password_file is required (one of them)');
  }
  reader.done();
  return { mechanism, username, ...(password === undefined ? { password_file: passwordFile } : { password }) };
}

function parse(reader: ConfigReader): KafkaOptions {
  const brokers = parseBrokers(reader);
  const topic = reader.string('topic', 'mesos-logs');
  compileTemplate(reader.key('topic'), topic);
  const headers = reader.stringList('headers') ?? [];
  const unknownHeader = headers.find((name) => !(HEADER_FIELDS as readonly string[]).includes(name));
  if (unknownHeader !== undefined) {
    throw new ConfigError(reader.key('headers'), headers, `has ${unknownHeader}; choose from ${HEADER_FIELDS.join(', ')}`);
  }
  const compression = reader.oneOf('compression', COMPRESSIONS, 'lz4');
  if (compression === 'zstd' && !zstdAvailable()) {
    throw new ConfigError(reader.key('compression'), compression, `needs Node 22.15 or newer (this is ${process.version}); use lz4, snappy or gzip`);
  }
  const transport = reader.oneOf('transport', TRANSPORTS, 'tcp');
  if (transport !== 'tls' && reader.has('tls')) throw new ConfigError(reader.key('tls'), reader.map.tls, 'applies only to transport tls');
  const sasl = reader.has('sasl') ? parseSasl(reader.child('sasl')) : undefined;
  return {
    brokers,
    topic,
    key: reader.oneOf('key', KEYS, 'task_id'),
    format: reader.oneOf('format', FORMATS, 'json'),
    headers: [...new Set(headers)] as HeaderField[],
    compression,
    client_id: reader.string('client_id', 'mesos-log-splitter'),
    transport,
    ...(transport === 'tls' ? { tls: parseTls(reader.child('tls')) } : {}),
    ...(sasl === undefined ? {} : { sasl }),
    connect_timeout_ms: reader.integer('connect_timeout_ms', 5000, 1, 600_000),
    request_timeout_ms: reader.integer('request_timeout_ms', 30_000, 1, 600_000),
    batch: parseBatch(reader.child('batch'), DEFAULT_BATCH),
  };
}

/** Produces each line as a Kafka record: idempotent, acks=all, one batch in flight. */
class KafkaSink extends Sink {
  /** Each line is copied into a record of its own: nothing refers to the batch's bytes after the send. */
  protected override reuseBatches = true;
  private readonly encoder: RecordEncoder;
  private readonly producer: KafkaProducer;

  constructor(options: KafkaOptions, context: SinkContext) {
    super(context);
    this.maxBatchLines = options.batch.max_lines;
    this.maxBatchBytes = options.batch.max_bytes;
    this.batchDelayMs = options.batch.max_delay_ms;
    this.encoder = new RecordEncoder({
      topic: compileTemplate('topic', options.topic),
      key: options.key,
      format: options.format,
      headers: options.headers,
    });
    this.producer = new KafkaProducer({
      brokers: options.brokers,
      clientId: options.client_id,
      compression: options.compression,
      connectTimeoutMs: options.connect_timeout_ms,
      requestTimeoutMs: options.request_timeout_ms,
      tls: options.tls,
      sasl: options.sasl,
    });
  }

  protected send(batch: LineBatch): Promise<void> {
    return this.producer.send(this.encoder.encode(batch));
  }

  protected close(): Promise<void> {
    return this.producer.close();
  }
}

export const kafkaSink: SinkType<KafkaOptions> = {
  type: 'kafka',
  parse,
  create: (options, context) => new KafkaSink(options, context),
};
