import { connect as netConnect, type Socket } from 'node:net';
import { tls as tlsModule } from '../../lazy-builtins.js';
import { hostname } from 'node:os';
import { ConfigError, type ConfigReader } from '../../config-reader.js';
import type { LineBatch } from '../../lines/line-batch.js';
import { compileTemplate } from '../template.js';
import { parseTls, tlsConnectOptions, type TlsOptions } from '../../net/tls-options.js';
import { parseBatch, type BatchOptions } from '../batch-options.js';
import { Sink, type SinkContext } from '../sink.js';
import type { SinkType } from '../sink-type.js';
import { ForwardConnection } from './forward-connection.js';
import type { SecurityOptions } from './handshake.js';
import { PackedForwardEncoder, type ForwardMessage } from './packed-forward.js';

const TRANSPORTS = ['tcp', 'tls'] as const;

/** The normalized `fluent` sink options, as check-config prints them. */
export interface FluentOptions {
  transport: (typeof TRANSPORTS)[number];
  host: string;
  port: number;
  tag: string;
  compression: 'none' | 'gzip';
  require_ack: boolean;
  /** With require_ack only. */
  ack_timeout_ms?: number;
  connect_timeout_ms: number;
  batch: BatchOptions;
  security?: SecurityOptions;
  tls?: TlsOptions;
}

const DEFAULT_TAG = 'mesos.{framework_id}';
const DEFAULT_BATCH: BatchOptions = { max_lines: 1024, max_bytes: 1 << 20, max_delay_ms: 100 };

function parseSecurity(reader: ConfigReader): SecurityOptions {
  const security: SecurityOptions = {
    shared_key: reader.string('shared_key'),
    self_hostname: reader.string('self_hostname', hostname()),
  };
  const username = reader.optionalString('username');
  const password = reader.optionalString('password');
  if ((username === undefined) !== (password === undefined)) {
    const given = username === undefined ? 'password' : 'username';
    throw new ConfigError(reader.key(given), undefined, 'needs both username and password');
  }
  if (username !== undefined) Object.assign(security, { username, password });
  reader.done();
  return security;
}

function parse(reader: ConfigReader): FluentOptions {
  const transport = reader.oneOf('transport', TRANSPORTS, 'tcp');
  if (transport !== 'tls' && reader.has('tls')) throw new ConfigError(reader.key('tls'), reader.map.tls, 'applies only to transport tls');
  const tag = reader.string('tag', DEFAULT_TAG);
  if (tag === '') throw new ConfigError(reader.key('tag'), tag, 'must not be empty');
  compileTemplate(reader.key('tag'), tag);
  const requireAck = reader.boolean('require_ack', true);
  if (!requireAck && reader.has('ack_timeout_ms')) {
    throw new ConfigError(reader.key('ack_timeout_ms'), reader.map.ack_timeout_ms, 'applies only with require_ack: true');
  }
  const options: FluentOptions = {
    transport,
    host: reader.string('host', '127.0.0.1'),
    port: reader.integer('port', 24224, 1, 65_535),
    tag,
    compression: reader.oneOf('compression', ['none', 'gzip'] as const, 'none'),
    require_ack: requireAck,
    ...(requireAck && { ack_timeout_ms: reader.integer('ack_timeout_ms', 30_000, 1, 3_600_000) }),
    connect_timeout_ms: reader.integer('connect_timeout_ms', 5000, 1, 600_000),
    batch: parseBatch(reader.child('batch'), DEFAULT_BATCH),
  };
  if (reader.has('security')) options.security = parseSecurity(reader.child('security'));
  if (transport === 'tls') options.tls = parseTls(reader.child('tls'));
  return options;
}

/** How to start one connection. Key and certificate files are read per connection, so renewed ones are picked up. */
function opener(options: FluentOptions): () => Socket {
  const { host, port, tls } = options;
  if (tls === undefined) return () => netConnect({ host, port });
  const tlsConnect = tlsModule().connect;
  return () => tlsConnect({ host, port, ...tlsConnectOptions(tls) });
}

/** A batch encoded, and which of its messages the server acknowledged: a retry sends only the others. */
interface PendingBatch {
  batch: LineBatch;
  messages: ForwardMessage[];
  acknowledged: Set<ForwardMessage>;
}

/**
 * Forwards lines to Fluentd or Fluent Bit with the Forward protocol: each batch as PackedForward messages, one per
 * tag, each with a `chunk` id. A batch counts as sent once the server acknowledged every one of its messages; until
 * then a failure (a lost connection, no ack in time) sends the unacknowledged ones again, with the same chunk ids,
 * on a new connection. One batch is in flight at a time.
 */
class FluentSink extends Sink {
  /** Lines are copied into the encoded messages: nothing refers to a batch's bytes after encoding. */
  protected override reuseBatches = true;
  private readonly encoder: PackedForwardEncoder;
  private readonly open: () => Socket;
  private readonly peer: string;
  private connection: ForwardConnection | undefined;
  private connections = 0;
  private pending: PendingBatch | undefined;
  private closed = false;

  constructor(
    private readonly options: FluentOptions,
    context: SinkContext,
  ) {
    super(context);
    this.batchBy(options.batch);
    this.encoder = new PackedForwardEncoder({
      tag: compileTemplate('tag', options.tag),
      gzip: options.compression === 'gzip',
      chunkIds: options.require_ack,
    });
    this.open = opener(options);
    this.peer = `${options.transport}://${options.host}:${options.port}`;
  }

  protected async send(batch: LineBatch): Promise<void> {
    if (this.pending?.batch !== batch) {
      const messages = await this.encoder.encode(batch);
      this.pending = { batch, messages, acknowledged: new Set() };
      // The encoded copy counts against max_bytes until the batch is delivered.
      this.holdElsewhere(messages.reduce((sum, message) => sum + message.bytes.length, 0));
    }
    const pending = this.pending;
    const connection = await this.connect();
    const unsent = pending.messages.filter((message) => !pending.acknowledged.has(message));
    const delivered: Promise<void>[] = [];
    for (const message of unsent) {
      if (message.chunk !== undefined) {
        const acked = connection.acknowledged(message.chunk, this.options.ack_timeout_ms!);
        delivered.push(acked.then(() => void pending.acknowledged.add(message)));
      }
      delivered.push(connection.write(message.bytes));
    }
    await Promise.all(delivered);
    this.pending = undefined;
    this.holdElsewhere(0);
  }

  private async connect(): Promise<ForwardConnection> {
    if (this.closed) throw new Error('the fluent sink is closed');
    let connection = this.connection;
    if (connection === undefined || connection.closed) {
      // Kept while it connects too, so that close() can end the attempt.
      connection = this.connection = new ForwardConnection({
        open: this.open,
        tls: this.options.transport === 'tls',
        peer: this.peer,
        connectTimeoutMs: this.options.connect_timeout_ms,
        security: this.options.security,
      });
      await connection.ready;
      if (this.connections++ > 0) this.countReconnect();
    }
    return connection;
  }

  protected async close(): Promise<void> {
    this.closed = true;
    this.connection?.destroy(new Error('the fluent sink is closed'));
  }
}

export const fluentSink: SinkType<FluentOptions> = {
  type: 'fluent',
  parse,
  create: (options, context) => new FluentSink(options, context),
};
