import type { LogRecord } from '../../lines/record.js';
import { truncationMarker, utf8Bytes, utf8Prefix } from '../../lines/record.js';
import { SEVERITY, writerName, type StreamMetadata } from '../../mesos/metadata.js';

/** Set on an entry whose line had no newline: a cut long line, or a last line flushed after idle. */
export const PARTIAL_FIELD = 'PARTIAL_MESSAGE';

/** Fields this sink writes itself; a label never overrides them. */
const OWN_FIELDS = new Set([
  'MESSAGE',
  'PRIORITY',
  'SYSLOG_IDENTIFIER',
  'FRAMEWORK_ID',
  'AGENT_ID',
  'EXECUTOR_ID',
  'CONTAINER_ID',
  'TASK_ID',
  'TASK_NAME',
  'FRAMEWORK_NAME',
  'STREAM',
  PARTIAL_FIELD,
]);

const MAX_FIELD_NAME = 64;

/**
 * A label key as a journald field name: upper case, A-Z 0-9 and `_` only, starting with a letter (a leading `_`
 * marks fields only journald itself may set), at most 64 characters. Undefined when nothing usable is left.
 */
export function journaldFieldName(key: string): string | undefined {
  const name = key
    .toUpperCase()
    .replace(/[^A-Z0-9_]/g, '_')
    .replace(/^[^A-Z]+/, '')
    .slice(0, MAX_FIELD_NAME);
  return name === '' ? undefined : name;
}

/** SYSLOG_IDENTIFIER: the configured one, else the task id, else the executor id. */
export function identifierFor(meta: StreamMetadata, configured: string | undefined): string {
  return configured ?? writerName(meta);
}

/**
 * One field in the native protocol: `KEY=VALUE\n`, or, for a value holding a newline, the binary-safe
 * `KEY\n` + 64-bit little-endian length + value + `\n`.
 */
export function encodeField(name: string, value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  if (!bytes.includes(0x0a)) return Buffer.concat([Buffer.from(`${name}=`), bytes, NEWLINE]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(bytes.length));
  return Buffer.concat([Buffer.from(`${name}\n`), length, bytes, NEWLINE]);
}

const NEWLINE = Buffer.from('\n');

/**
 * Cuts `message` to at most `limit` bytes, ending with a visible marker, on a UTF-8 character boundary.
 * Returns it unchanged when it fits.
 */
export function truncateMessage(message: Buffer, limit: number): Buffer {
  if (message.length <= limit) return message;
  const size = message.length;
  const kept = utf8Prefix(message, 0, size, limit - truncationMarker(size, size).length);
  return Buffer.concat([message.subarray(0, kept), Buffer.from(truncationMarker(kept, size), 'latin1')]);
}

export interface EntryOptions {
  identifier: string | undefined;
  /** Upper bound for one encoded entry. */
  maxEntryBytes: number;
}

/**
 * Encodes records as native journald entries. The fields that depend only on the metadata are encoded once per
 * metadata object (it changes only when agent enrichment arrives).
 */
export class EntryEncoder {
  private cachedMeta: StreamMetadata | undefined;
  private cachedFields = Buffer.alloc(0);
  private readonly identifier: string | undefined;
  private limit: number;

  constructor(
    options: EntryOptions,
    /** Told about labels left out because the entry would not fit them (once per metadata). */
    private readonly onLabelsLeftOut: (labels: string[]) => void,
  ) {
    this.identifier = options.identifier;
    this.limit = options.maxEntryBytes;
  }

  get maxEntryBytes(): number {
    return this.limit;
  }

  /** For a kernel that refuses datagrams this large: later entries are cut to `bytes`. */
  lowerLimit(bytes: number): void {
    this.limit = bytes;
    this.cachedMeta = undefined;
  }

  encode(record: LogRecord): Buffer {
    const fields = this.metaFields(record.meta);
    const partial = record.partial ? encodeField(PARTIAL_FIELD, 'true') : Buffer.alloc(0);
    // MESSAGE never holds a newline (records are lines), so it is `MESSAGE=` + bytes + `\n`.
    const room = this.limit - fields.length - partial.length - 'MESSAGE=\n'.length;
    const message = truncateMessage(utf8Bytes(record), room);
    return Buffer.concat([encodeField('MESSAGE', message), partial, fields]);
  }

  private metaFields(meta: StreamMetadata): Buffer {
    if (meta === this.cachedMeta) return this.cachedFields;
    const own: [string, string | undefined][] = [
      ['PRIORITY', String(SEVERITY[meta.stream])],
      ['SYSLOG_IDENTIFIER', identifierFor(meta, this.identifier)],
      ['STREAM', meta.stream.toUpperCase()],
      ['FRAMEWORK_ID', meta.framework_id],
      ['AGENT_ID', meta.agent_id],
      ['EXECUTOR_ID', meta.executor_id],
      ['CONTAINER_ID', meta.container_id],
      ['TASK_ID', meta.task_id],
      ['TASK_NAME', meta.task_name],
      ['FRAMEWORK_NAME', meta.framework_name],
    ];
    const parts = own.filter(([, value]) => value !== undefined).map(([name, value]) => encodeField(name, value!));
    // Labels must leave room for the message: they get at most half of an entry.
    let room = this.limit / 2 - parts.reduce((sum, part) => sum + part.length, 0);
    const leftOut: string[] = [];
    for (const [name, value] of labelFields(meta)) {
      const field = encodeField(name, value);
      if (field.length > room) {
        leftOut.push(name);
        continue;
      }
      parts.push(field);
      room -= field.length;
    }
    if (leftOut.length > 0) this.onLabelsLeftOut(leftOut);
    this.cachedMeta = meta;
    this.cachedFields = Buffer.concat(parts);
    return this.cachedFields;
  }
}

/** Executor then task labels as journald fields; a task label wins over an executor label of the same name. */
function labelFields(meta: StreamMetadata): Map<string, string> {
  const fields = new Map<string, string>();
  for (const labels of [meta.executor_labels, meta.task_labels]) {
    for (const [key, value] of Object.entries(labels)) {
      const name = journaldFieldName(key);
      if (name !== undefined && !OWN_FIELDS.has(name)) fields.set(name, value);
    }
  }
  return fields;
}
