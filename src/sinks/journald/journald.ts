import { dirname, join } from 'node:path';
import { ConfigError, type ConfigReader } from '../../config-reader.js';
import type { Logger } from '../../diagnostics.js';
import type { LineBatch } from '../../lines/line-batch.js';
import type { LogRecord } from '../../lines/record.js';
import { utf8Bytes } from '../../lines/record.js';
import { SEVERITY } from '../../mesos/metadata.js';
import { Sink, type SinkContext } from '../sink.js';
import type { SinkType } from '../sink-type.js';
import { EntryEncoder, identifierFor, truncateMessage } from './entry.js';
import { DatagramError, loadUnixDgram, NativeTransport } from './native-transport.js';
import { StreamTransport } from './stream-transport.js';

export interface JournaldOptions {
  /** `native`: fields over the datagram socket, falling back to `stream` when the addon is missing. */
  transport: 'native' | 'stream';
  socket: string;
  stream_socket: string;
  /** A fixed SYSLOG_IDENTIFIER; unset means task id, else executor id, else `mesos-task`. */
  identifier?: string;
  max_entry_bytes: number;
}

const DEFAULT_SOCKET = '/run/systemd/journal/socket';
/** Below the kernel's default datagram limit (net.core.wmem_default, 208 KiB), above the default line limit. */
const DEFAULT_MAX_ENTRY_BYTES = 128 * 1024;
const MIN_MAX_ENTRY_BYTES = 4096;
const MAX_MAX_ENTRY_BYTES = 64 * 1024 * 1024;

/** The fallback loses fields for every journald sink of the process; saying so once is enough. */
let warnedFieldsLost = false;

class JournaldSink extends Sink {
  // One entry per send: a failed send is retried whole, so a batch would repeat the entries already sent.
  protected override maxBatchLines = 1;
  private readonly transport: NativeTransport | StreamTransport;
  private readonly encoder: EntryEncoder;

  constructor(
    private readonly options: JournaldOptions,
    context: SinkContext,
  ) {
    super(context);
    this.encoder = new EntryEncoder({ identifier: options.identifier, maxEntryBytes: options.max_entry_bytes }, (labels) =>
      this.log.warn({ labels, maxEntryBytes: this.encoder.maxEntryBytes }, 'journald: labels left out, they would not fit in an entry'),
    );
    const onReconnect = (): void => this.countReconnect();
    const dgram = options.transport === 'native' ? loadUnixDgram() : undefined;
    if (dgram instanceof Error) warnFieldsLost(this.log, dgram, options.stream_socket);
    this.transport =
      dgram === undefined || dgram instanceof Error
        ? new StreamTransport(options.stream_socket, onReconnect)
        : new NativeTransport(dgram, options.socket, onReconnect);
  }

  protected async send(batch: LineBatch): Promise<void> {
    // One datagram per line: a record object per line costs nothing next to the syscall.
    for (const record of batch.records) {
      if (this.transport instanceof NativeTransport) await this.sendEntry(this.transport, record, batch);
      else await this.sendLine(this.transport, record);
    }
  }

  protected async close(): Promise<void> {
    if (this.transport instanceof NativeTransport) {
      // A replay is still owed only at the stop deadline: lines counted sent that a killed journald may not have read.
      const owed = this.transport.abandonReplay();
      if (owed.lines > 0 || owed.bytes > 0) {
        this.unsend('replay_overflow', owed.lines, owed.bytes);
        this.log.warn(
          owed,
          'journald: stream ended before the entries a killed journald may not have read were sent again; counted as dropped (replay_overflow)',
        );
      }
    }
    this.transport.close();
  }

  /** The datagrams kept for a replay count against max_bytes; new lines get their room first. */
  protected override makeRoom(bytes: number): void {
    if (!(this.transport instanceof NativeTransport)) return;
    this.transport.release(bytes);
    this.holdElsewhere(this.transport.heldBytes);
  }

  /** `batch` holds this one record (one entry per batch): its lines and bytes are what the datagram carries. */
  private async sendEntry(native: NativeTransport, record: LogRecord, batch: LineBatch): Promise<void> {
    for (;;) {
      try {
        return await native.send({ datagram: this.encoder.encode(record), lines: batch.lines, bytes: batch.bytes });
      } catch (err) {
        const limit = this.encoder.maxEntryBytes;
        if (!(err instanceof DatagramError && err.code === 'EMSGSIZE' && limit > MIN_MAX_ENTRY_BYTES)) throw err;
        // The kernel's datagram limit (the socket's send buffer) is below max_entry_bytes: cut entries to fit.
        const lowered = Math.max(MIN_MAX_ENTRY_BYTES, Math.floor(limit / 2));
        this.encoder.lowerLimit(lowered);
        this.log.warn({ max_entry_bytes: limit, now: lowered }, 'journald: entry too large for a datagram; lowering the limit');
      } finally {
        // Sent or not, the datagrams kept for a replay changed.
        this.holdElsewhere(native.heldBytes);
      }
    }
  }

  private sendLine(stream: StreamTransport, record: LogRecord): Promise<void> {
    const line = truncateMessage(utf8Bytes(record), this.options.max_entry_bytes - 1);
    return stream.send(Buffer.concat([line, Buffer.from('\n')]), {
      identifier: identifierFor(record.meta, this.options.identifier),
      priority: SEVERITY[record.meta.stream],
    });
  }
}

function warnFieldsLost(log: Logger, err: Error, streamSocket: string): void {
  if (warnedFieldsLost) return;
  warnedFieldsLost = true;
  log.warn(
    { err: err.message, stream_socket: streamSocket },
    'journald: native addon unix-dgram not available; using the stream socket, which keeps MESSAGE, PRIORITY and SYSLOG_IDENTIFIER only (ids, labels and the partial flag are lost)',
  );
}

export const journaldSink: SinkType<JournaldOptions> = {
  type: 'journald',
  parse(reader: ConfigReader): JournaldOptions {
    const socket = reader.string('socket', DEFAULT_SOCKET);
    const maxEntryBytes = reader.bytes('max_entry_bytes', DEFAULT_MAX_ENTRY_BYTES, MIN_MAX_ENTRY_BYTES);
    if (maxEntryBytes > MAX_MAX_ENTRY_BYTES) {
      throw new ConfigError(reader.key('max_entry_bytes'), reader.map.max_entry_bytes, `must be at most ${MAX_MAX_ENTRY_BYTES} bytes`);
    }
    const identifier = reader.optionalString('identifier');
    if (identifier === '') throw new ConfigError(reader.key('identifier'), identifier, 'must not be empty');
    return {
      transport: reader.oneOf('transport', ['native', 'stream'] as const, 'native'),
      socket,
      // journald keeps both sockets in one directory, namespaced instances included.
      stream_socket: reader.string('stream_socket', join(dirname(socket), 'stdout')),
      ...(identifier === undefined ? {} : { identifier }),
      max_entry_bytes: maxEntryBytes,
    };
  },
  create(options: JournaldOptions, context: SinkContext): Sink {
    return new JournaldSink(options, context);
  },
};
