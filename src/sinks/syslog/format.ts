import type { LineBatch } from '../../lines/line-batch.js';
import { truncationMarker, utf8Prefix } from '../../lines/record.js';
import { SEVERITY, writerName, type StreamMetadata } from '../../mesos/metadata.js';

/** RFC 5424 facility codes, by the names syslog.conf uses. */
export const FACILITIES = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  ntp: 12,
  security: 13,
  console: 14,
  clock: 15,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const;

export type FacilityName = keyof typeof FACILITIES;

/** 32473 is the Private Enterprise Number RFC 5612 reserves for examples: no one's registered number. */
export const DEFAULT_SD_ID = 'mesos@32473';

// RFC 5424 field limits.
export const MAX_HOSTNAME = 255;
export const MAX_APP_NAME = 48;
const MAX_SD_NAME = 32;
/** Every receiver must take 480-byte messages (RFC 5424 6.1), so no configured limit goes below it. */
export const MIN_MESSAGE_BYTES = 480;

const BOM = '\ufeff';

/** What the structured-data element can carry, in this order. `partial="true"` is added to cut lines regardless. */
export const SD_PARAMS = [
  'agent_id',
  'framework_id',
  'executor_id',
  'container_id',
  'task_id',
  'stream',
  'task_name',
  'framework_name',
] as const;
/** The ids; the names (from agent enrichment too) only when `sd_params` asks for them. */
export const DEFAULT_SD_PARAMS = SD_PARAMS.slice(0, 6);
export type SdParam = (typeof SD_PARAMS)[number];

export interface SyslogFormat {
  facility: FacilityName;
  /** HOSTNAME; default: the record's metadata hostname. */
  hostname?: string;
  /** APP-NAME; default: task id, else executor id, else `mesos-task`. */
  appName?: string;
  sdId: string;
  /** SD-PARAMs to include, when the metadata has them. */
  sdParams: readonly SdParam[];
  /** Start MSG with a BOM, as RFC 5424 asks of UTF-8 messages (MSG-UTF8) rather than MSG-ANY. */
  utf8Bom: boolean;
  /** Longest message (without framing): a longer MSG is cut on a UTF-8 character boundary; 0: no limit. */
  maxMessageBytes: number;
}

/** True for a valid RFC 5424 SD-ID of the private `name@PEN` form. */
export function isSdId(value: string): boolean {
  // SD-NAME characters (PRINTUSASCII but `=`, SP, `]`, `"`), no `@` in the name, then a (dotted) enterprise number.
  return value.length <= MAX_SD_NAME && /^[!#-<>?A-\\^-~]+@\d+(\.\d+)*$/.test(value);
}

/** True when `value` is PRINTUSASCII (33..126), 1 to `max` characters, as HOSTNAME and APP-NAME must be. */
export function isPrintableAscii(value: string, max: number): boolean {
  return value.length >= 1 && value.length <= max && /^[!-~]+$/.test(value);
}

/** A header field from arbitrary text: non-printable characters become `_`, the RFC limit applies, empty is `-`. */
function headerField(value: string | undefined, max: number): string {
  if (value === undefined || value === '') return '-';
  return value.replace(/[^!-~]/g, '_').slice(0, max);
}

const escapeParamValue = (value: string): string => value.replace(/["\\\]]/g, '\\$&');

/** What every message of one metadata object shares, prebuilt once: the cost per line is then a few copies. */
interface MetaParts {
  /** `<PRI>1 ` */
  head: Buffer;
  /** ` HOSTNAME APP-NAME - MSGID [SD] ` (plus BOM), for whole and for partial lines. */
  tail: Buffer;
  partialTail: Buffer;
}

/**
 * Where a batch is encoded: a Buffer of `size + scratch` bytes. The frames go into the first `size`; the rest is
 * the encoder's scratch while it encodes, and is not sent.
 */
export type OutputSpace = (size: number, scratch: number) => Buffer;

/**
 * Encodes records as RFC 5424 messages into one Buffer per batch, from the caller's OutputSpace: octet-counted
 * frames (RFC 6587) for stream transports, or bare messages for datagrams. Everything but the timestamp and MSG is
 * cached per metadata object, and the whole header for the last millisecond seen (the lines of one read share it),
 * so a line costs two copies.
 */
export class SyslogEncoder {
  private readonly parts = new WeakMap<StreamMetadata, MetaParts>();
  /** The last lookup: a stream's records share one metadata object until enrichment replaces it. */
  private lastMeta: StreamMetadata | undefined;
  private lastParts: MetaParts | undefined;
  /** `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [SD] ` for headerTime and headerTail (which implies the metadata). */
  private header = Buffer.alloc(0);
  private headerTime = Number.NaN;
  private headerTail: Buffer | undefined;
  // Per batch, reused so a batch allocates only its output.
  private readonly messages: Uint8Array[] = [];
  private readonly headers: Buffer[] = [];
  private readonly lengths: number[] = [];
  /** The truncation marker of each line cut to max_message_bytes (rare), else undefined. */
  private readonly markers: (Buffer | undefined)[] = [];

  constructor(private readonly format: SyslogFormat) {}

  /** `LEN SP MSG` for each line, concatenated into `space(size)`: one socket write. */
  octetCounted(batch: LineBatch, space: OutputSpace): Buffer {
    return this.encode(batch, true, space).out;
  }

  /** One message per line, as slices of `space(size)`: one datagram each. */
  datagrams(batch: LineBatch, space: OutputSpace): Buffer[] {
    const { out, ends } = this.encode(batch, false, space);
    const datagrams: Buffer[] = new Array(batch.count);
    let start = 0;
    for (let i = 0; i < batch.count; i++) {
      datagrams[i] = out.subarray(start, ends[i]);
      start = ends[i];
    }
    return datagrams;
  }

  private encode(batch: LineBatch, framed: boolean, space: OutputSpace): { out: Buffer; ends: number[] } {
    const { count, data, starts, stops, partials, times, metas } = batch;
    const { messages, headers, lengths, markers } = this;
    const limit = this.format.maxMessageBytes;
    // A valid batch's lines are copied from a copy of it staged in the scratch after the frames: copyWithin() inside
    // one buffer makes no view object per line, as set() from the batch must (measured: half the time, and no GC).
    // Lines of a batch that is not all valid UTF-8 are copied from their own (replaced where invalid) bytes.
    const staged = batch.validUtf8;
    let total = 0;
    for (let i = 0; i < count; i++) {
      const header = this.headerOf(metas[i], partials[i] === 1, times[i]);
      let size = stops[i] - starts[i];
      if (!staged) size = (messages[i] = batch.utf8(i)).length;
      let length = header.length + size;
      if (limit > 0) markers[i] = undefined;
      if (limit > 0 && length > limit) {
        const [source, start] = staged ? [data, starts[i]] : [messages[i], 0];
        const kept = utf8Prefix(source, start, size, limit - header.length - truncationMarker(size, size).length);
        markers[i] = Buffer.from(truncationMarker(kept, size), 'latin1');
        length = header.length + kept + markers[i]!.length;
      }
      headers[i] = header;
      lengths[i] = length;
      total += length + (framed ? decimalDigits(length) + 1 : 0);
    }
    const out = space(total, staged ? data.length : 0);
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.length);
    if (staged) bytes.set(data, total);
    const ends: number[] = framed ? [] : new Array(count);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const header = headers[i];
      const length = lengths[i];
      if (framed) at = writeDecimal(out, at, length);
      // TypedArray.set: far cheaper than Buffer.copy for these short pieces.
      bytes.set(header, at);
      at += header.length;
      const marker = limit > 0 ? markers[i] : undefined;
      const messageBytes = length - header.length - (marker === undefined ? 0 : marker.length);
      if (staged) bytes.copyWithin(at, total + starts[i], total + starts[i] + messageBytes);
      else bytes.set(messageBytes === messages[i].length ? messages[i] : messages[i].subarray(0, messageBytes), at);
      at += messageBytes;
      if (marker !== undefined) {
        bytes.set(marker, at);
        at += marker.length;
      }
      if (!framed) ends[i] = at;
    }
    if (!staged) messages.fill(undefined as unknown as Uint8Array, 0, count);
    headers.fill(undefined as unknown as Buffer, 0, count);
    return { out: out.subarray(0, total), ends };
  }

  /** A line's header, TIMESTAMP in RFC 3339 UTC with milliseconds; rebuilt when the last one does not fit. */
  private headerOf(meta: StreamMetadata, partial: boolean, time: number): Buffer {
    const parts = this.partsOf(meta);
    const tail = partial ? parts.partialTail : parts.tail;
    if (time !== this.headerTime || tail !== this.headerTail) {
      // A new Buffer each time: the batch being encoded keeps references to the previous ones.
      this.header = Buffer.concat([parts.head, Buffer.from(new Date(time).toISOString(), 'latin1'), tail]);
      this.headerTime = time;
      this.headerTail = tail;
    }
    return this.header;
  }

  private partsOf(meta: StreamMetadata): MetaParts {
    if (meta === this.lastMeta) return this.lastParts!;
    let parts = this.parts.get(meta);
    if (parts === undefined) {
      parts = this.buildParts(meta);
      this.parts.set(meta, parts);
    }
    this.lastMeta = meta;
    this.lastParts = parts;
    return parts;
  }

  private buildParts(meta: StreamMetadata): MetaParts {
    const { format } = this;
    const pri = FACILITIES[format.facility] * 8 + SEVERITY[meta.stream];
    const hostname = headerField(format.hostname ?? meta.hostname, MAX_HOSTNAME);
    const appName = headerField(format.appName ?? writerName(meta), MAX_APP_NAME);
    let params = '';
    for (const name of SD_PARAMS) {
      const value = meta[name];
      if (value !== undefined && format.sdParams.includes(name)) params += ` ${name}="${escapeParamValue(value)}"`;
    }
    const bom = format.utf8Bom ? BOM : '';
    // PROCID is the NILVALUE: the task's pid is not known to the helper, and the helper's own would mislead.
    const before = ` ${hostname} ${appName} - ${meta.stream} [${format.sdId}${params}`;
    return {
      head: Buffer.from(`<${pri}>1 `, 'latin1'),
      tail: Buffer.from(`${before}] ${bom}`),
      partialTail: Buffer.from(`${before} partial="true"] ${bom}`),
    };
  }
}

/** How many decimal digits `n` has. */
function decimalDigits(n: number): number {
  let digits = 1;
  for (let power = 10; n >= power; power *= 10) digits++;
  return digits;
}

/** Writes `n` and a space at `at`; returns the offset after them. */
function writeDecimal(out: Buffer, at: number, n: number): number {
  const end = at + decimalDigits(n);
  for (let i = end - 1; i >= at; i--) {
    out[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  out[end] = 0x20;
  return end + 1;
}
