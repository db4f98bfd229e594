import { connect as netConnect } from 'node:net';
import { ConfigError, type ConfigReader } from '../../config-reader.js';
import { parseTls, tlsConnectOptions, type TlsOptions } from '../../net/tls-options.js';
import { tls as tlsModule } from '../../lazy-builtins.js';
import type { LineBatch } from '../../lines/line-batch.js';
import { Sink, type SinkContext } from '../sink.js';
import type { SinkType } from '../sink-type.js';
import {
  DEFAULT_SD_ID,
  FACILITIES,
  MAX_APP_NAME,
  MAX_HOSTNAME,
  MIN_MESSAGE_BYTES,
  DEFAULT_SD_PARAMS,
  SD_PARAMS,
  SyslogEncoder,
  isPrintableAscii,
  isSdId,
  type FacilityName,
  type SdParam,
} from './format.js';
import { StreamTransport, type Connection } from './stream-transport.js';
import { DatagramTransport } from './datagram-transport.js';

const TRANSPORTS = ['tcp', 'tls', 'udp'] as const;
type Transport = (typeof TRANSPORTS)[number];

const DEFAULT_PORT: Record<Transport, number> = { tcp: 514, udp: 514, tls: 6514 };
/** RFC 5426 asks receivers to take 2048-byte datagrams; beyond that, fragmentation and receiver limits bite. */
const DEFAULT_UDP_MAX_BYTES = 2048;
/** The largest UDP payload over IPv4. */
const MAX_UDP_BYTES = 65_507;


interface SyslogMessageOptions {
  host: string;
  port: number;
  facility: FacilityName;
  app_name?: string;
  hostname?: string;
  sd_id: string;
  sd_params: SdParam[];
  utf8_bom: boolean;
  /** 0: no limit. */
  max_message_bytes: number;
}

interface SyslogConnectionOptions {
  connect_timeout_ms: number;
  replay_max_bytes: number;
  replay_max_age_ms: number;
}

/** The normalized `syslog` sink options, as check-config prints them: only the keys the transport uses. */
export type SyslogOptions =
  | ({ transport: 'udp' } & SyslogMessageOptions)
  | ({ transport: 'tcp' } & SyslogMessageOptions & SyslogConnectionOptions)
  | ({ transport: 'tls' } & SyslogMessageOptions & SyslogConnectionOptions & { tls: TlsOptions });

const CONNECTION_KEYS = ['connect_timeout_ms', 'replay_max_bytes', 'replay_max_age_ms'] as const;

function parseMessageOptions(reader: ConfigReader, transport: Transport): SyslogMessageOptions {
  const headerField = (name: string, max: number): string | undefined => {
    const value = reader.optionalString(name);
    if (value !== undefined && !isPrintableAscii(value, max)) {
      throw new ConfigError(reader.key(name), value, `must be 1 to ${max} printable ASCII characters, no spaces`);
    }
    return value;
  };
  const appName = headerField('app_name', MAX_APP_NAME);
  const hostname = headerField('hostname', MAX_HOSTNAME);
  const sdId = reader.string('sd_id', DEFAULT_SD_ID);
  if (!isSdId(sdId)) {
    const why = 'must be name@enterprise-number, at most 32 printable characters, without =, ], " or spaces';
    throw new ConfigError(reader.key('sd_id'), sdId, why);
  }
  const sdParams = reader.stringList('sd_params') ?? [...DEFAULT_SD_PARAMS];
  const unknownParam = sdParams.find((name) => !(SD_PARAMS as readonly string[]).includes(name));
  if (unknownParam !== undefined) {
    throw new ConfigError(reader.key('sd_params'), sdParams, `has ${unknownParam}; choose from ${SD_PARAMS.join(', ')}`);
  }
  const udp = transport === 'udp';
  const maxMessageBytes = reader.bytes('max_message_bytes', udp ? DEFAULT_UDP_MAX_BYTES : 0, 0);
  const inRange = udp
    ? maxMessageBytes >= MIN_MESSAGE_BYTES && maxMessageBytes <= MAX_UDP_BYTES
    : maxMessageBytes === 0 || maxMessageBytes >= MIN_MESSAGE_BYTES;
  if (!inRange) {
    const range = udp ? `from ${MIN_MESSAGE_BYTES} to ${MAX_UDP_BYTES}` : `0 (no limit) or at least ${MIN_MESSAGE_BYTES}`;
    throw new ConfigError(reader.key('max_message_bytes'), reader.map.max_message_bytes, `must be ${range} bytes`);
  }
  return {
    host: reader.string('host', '127.0.0.1'),
    port: reader.integer('port', DEFAULT_PORT[transport], 1, 65_535),
    facility: reader.oneOf('facility', Object.keys(FACILITIES) as FacilityName[], 'user'),
    ...(appName === undefined ? {} : { app_name: appName }),
    ...(hostname === undefined ? {} : { hostname }),
    sd_id: sdId,
    sd_params: [...new Set(sdParams)] as SdParam[],
    utf8_bom: reader.boolean('utf8_bom', false),
    max_message_bytes: maxMessageBytes,
  };
}

function parseConnectionOptions(reader: ConfigReader): SyslogConnectionOptions {
  return {
    connect_timeout_ms: reader.integer('connect_timeout_ms', 5000, 1, 600_000),
    replay_max_bytes: reader.bytes('replay_max_bytes', 1024 * 1024, 0),
    replay_max_age_ms: reader.integer('replay_max_age_ms', 5000, 0, 3_600_000),
  };
}


/** Keys that belong to another transport are named as such, rather than as unknown. */
function rejectOtherTransportKeys(reader: ConfigReader, transport: Transport): void {
  const misplaced = (name: string, why: string): void => {
    if (reader.has(name)) throw new ConfigError(reader.key(name), reader.map[name], why);
  };
  if (transport === 'udp') for (const name of CONNECTION_KEYS) misplaced(name, 'applies only to transport tcp or tls');
  if (transport !== 'tls') misplaced('tls', 'applies only to transport tls');
}

function parse(reader: ConfigReader): SyslogOptions {
  const transport = reader.oneOf('transport', TRANSPORTS, 'tcp');
  rejectOtherTransportKeys(reader, transport);
  const message = parseMessageOptions(reader, transport);
  if (transport === 'udp') return { transport, ...message };
  const connection = parseConnectionOptions(reader);
  if (transport === 'tcp') return { transport, ...message, ...connection };
  return { transport, ...message, ...connection, tls: parseTls(reader.child('tls')) };
}

/** Forwards lines as RFC 5424 messages over TCP (RFC 6587 octet counting), TLS (RFC 5425) or UDP (RFC 5426). */
class SyslogSink extends Sink {
  /** Each batch is encoded into frames or datagrams of their own: nothing refers to its bytes after the send. */
  protected override reuseBatches = true;
  private readonly transport: { write(batch: LineBatch): Promise<void>; drain(): Promise<void>; close(): void };

  constructor(options: SyslogOptions, context: SinkContext) {
    super(context);
    const encoder = new SyslogEncoder({
      facility: options.facility,
      hostname: options.hostname,
      appName: options.app_name,
      sdId: options.sd_id,
      sdParams: options.sd_params,
      utf8Bom: options.utf8_bom,
      maxMessageBytes: options.max_message_bytes,
    });
    if (options.transport === 'udp') {
      const datagrams = new DatagramTransport(options.host, options.port);
      // A fresh buffer per batch: after a failed send, datagrams of it may still wait in the socket's queue.
      const write = (batch: LineBatch): Promise<void> => datagrams.write(encoder.datagrams(batch, (n, scratch) => Buffer.allocUnsafe(n + scratch)));
      this.transport = { write, drain: () => Promise.resolve(), close: () => datagrams.close() };
    } else {
      const stream = new StreamTransport({
        open: openConnection(options),
        peer: `${options.transport}://${options.host}:${options.port}`,
        tls: options.transport === 'tls',
        connectTimeoutMs: options.connect_timeout_ms,
        // The window counts against max_bytes: at most half of it, so lines not yet sent keep the rest.
        replay: {
          maxBytes: Math.min(options.replay_max_bytes, Math.floor(context.buffer.maxBytes / 2)),
          maxAgeMs: options.replay_max_age_ms,
        },
        onReconnect: () => this.countReconnect(),
        onHeld: (bytes) => this.holdElsewhere(bytes),
        onUnreplayable: (lines, bytes) => this.unsend('replay_overflow', lines, bytes),
        onAcknowledged: (lines, bytes) => this.confirmSent(lines, bytes),
        onUnacknowledged: (lines, bytes) => this.dropUnconfirmed('replay_overflow', lines, bytes),
        log: this.log,
      });
      this.confirmsDelivery = stream.confirmsDelivery;
      const write = (batch: LineBatch): Promise<void> =>
        stream.write(() => encoder.octetCounted(batch, (n, scratch) => stream.frameSpace(n, scratch)), batch.lines, batch.bytes);
      this.transport = { write, drain: () => stream.drain(), close: () => stream.close() };
    }
  }

  protected send(batch: LineBatch): Promise<void> {
    return this.transport.write(batch);
  }

  protected override drain(): Promise<void> {
    return this.transport.drain();
  }

  protected async close(): Promise<void> {
    this.transport.close();
  }
}

/**
 * How to start one connection. Key and certificate files are read per connection, so renewed ones are picked up.
 * TLS runs over a TCP socket made here, whose descriptor the transport asks for what the peer acknowledged.
 */
function openConnection(options: Exclude<SyslogOptions, { transport: 'udp' }>): () => Connection {
  const { host, port } = options;
  if (options.transport === 'tcp') {
    return () => {
      const socket = netConnect({ host, port });
      return { socket, tcp: socket };
    };
  }
  const { tls } = options;
  const tlsConnect = tlsModule().connect;
  return () => {
    const tcp = netConnect({ host, port });
    const socket = tlsConnect({ socket: tcp, host, port, ...tlsConnectOptions(tls) });
    return { socket, tcp };
  };
}

export const syslogSink: SinkType<SyslogOptions> = {
  type: 'syslog',
  parse,
  create: (options, context) => new SyslogSink(options, context),
};
