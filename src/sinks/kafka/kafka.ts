import { readFileSync } from 'node:fs';
import { ConfigError, type ConfigReader } from '../../config-reader.js';
import type { LineBatch } from '../../lines/line-batch.js';
import { compileTemplate } from '../template.js';
import { parseTls, tlsConnectOptions, type TlsOptions } from '../../net/tls-options.js';
import { parseBatch, type BatchOptions } from '../batch-options.js';
import { Sink, type SinkContext } from '../sink.js';
import type { SinkType } from '../sink-type.js';
import type { BrokerAddress } from './client/metadata.js';
import { KafkaProducer } from './client/producer.js';
import { CODECS, type Codec } from './client/record-batch.js';
import { SASL_MECHANISMS, type SaslMechanism } from './client/sasl.js';
import { FORMATS, HEADER_FIELDS, KEYS, RecordEncoder, type Format, type HeaderField, type KeyChoice } from './record.js';

const TRANSPORTS = ['tcp', 'tls'] as const;

/** Codecs Kafka has that this client does not compress with: named in the error, so a config from elsewhere is clear. */
const UNSUPPORTED_CODECS = ['snappy', 'zstd'];

export interface SaslOptions {
  mechanism: SaslMechanism;
  username: string;
  password?: string;
  /** Read for each authentication, so a rotated secret is picked up. */
  password_file?: string;
}

/** The normalized `kafka` sink options, as check-config prints them. */
export interface KafkaOptions {
  brokers: string[];
  topic: string;
  key: KeyChoice;
  format: Format;
  headers: HeaderField[];
  compression: Codec;
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

/** `host:port`, or `[v6 address]:port`, as a host and a port (undefined if it is neither). */
export function brokerAddress(text: string): BrokerAddress | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:\s[\]]+)):(\d+)$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || port < 1 || port > 65_535) return undefined;
  return { host: match[1] ?? match[2], port };
}

function parseCompression(reader: ConfigReader): Codec {
  const value = reader.map.compression;
  if (typeof value === 'string' && UNSUPPORTED_CODECS.includes(value)) {
    throw new ConfigError(reader.key('compression'), value, `is not supported: this client compresses with lz4 or gzip (or none)`);
  }
  return reader.oneOf('compression', CODECS, 'lz4');
}

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
  const compression = parseCompression(reader);
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

/** The password, or a reader of the password file (a trailing newline dropped), for each authentication. */
function passwordOf(sasl: SaslOptions): () => string {
  const { password, password_file: file } = sasl;
  return file === undefined ? () => password! : () => readFileSync(file, 'utf8').trimEnd();
}

/** Produces each line as a Kafka record: idempotent, acks=all, one batch in flight. */
class KafkaSink extends Sink {
  /** Each line is copied into a record of its own: nothing refers to the batch's bytes after the send. */
  protected override reuseBatches = true;
  private readonly encoder: RecordEncoder;
  private readonly producer: KafkaProducer;

  constructor(options: KafkaOptions, context: SinkContext) {
    super(context);
    this.batchBy(options.batch);
    this.encoder = new RecordEncoder({
      topic: compileTemplate('topic', options.topic),
      key: options.key,
      format: options.format,
      headers: options.headers,
    });
    const { tls, sasl } = options;
    this.producer = new KafkaProducer({
      brokers: options.brokers.map((broker) => brokerAddress(broker)!),
      clientId: options.client_id,
      compression: options.compression,
      connectTimeoutMs: options.connect_timeout_ms,
      requestTimeoutMs: options.request_timeout_ms,
      // Read for each new connection, so renewed certificate files are picked up.
      tls: tls === undefined ? undefined : () => tlsConnectOptions(tls),
      sasl: sasl === undefined ? undefined : { mechanism: sasl.mechanism, username: sasl.username, password: passwordOf(sasl) },
      onReconnect: () => this.countReconnect(),
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
