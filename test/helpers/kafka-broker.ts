// A single Kafka broker for the kafka sink's tests, written from the protocol spec (kafka.apache.org/protocol):
// ApiVersions v0-v2, Metadata v1-v8, InitProducerId v0-v1, Produce v3-v8, SaslHandshake v1 and SaslAuthenticate
// v0-v1 (the non-flexible versions a Kafka 2.x broker has), with RecordBatch v2 decoded here (CRC32C checked, gzip
// through zlib, lz4 by its frame spec; snappy is refused), so nothing of the client under test decodes what it sent.
// It keeps idempotent producers' sequences as a broker does (a batch sent again is acknowledged, not appended twice;
// a gap is OUT_OF_ORDER_SEQUENCE_NUMBER) and misbehaves on request. librdkafka's mock cluster (kcat, in
// test/helpers/kafka-mock.ts) is the other broker of the tests; it cannot misbehave on request.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { gunzipSync } from 'node:zlib';

export interface StoredRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  value: Buffer;
  headers: [string, string][];
  timestamp: number;
  producerId: bigint;
}

/** Kafka's error codes the broker answers with. */
export const KAFKA_ERRORS = {
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  NOT_LEADER_OR_FOLLOWER: 6,
  MESSAGE_TOO_LARGE: 10,
  INVALID_TOPIC_EXCEPTION: 17,
  TOPIC_AUTHORIZATION_FAILED: 29,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  UNSUPPORTED_COMPRESSION_TYPE: 76,
} as const;

export interface BrokerOptions {
  partitions?: number;
  /** Create topics a Metadata request names when the client allows it (auto.create.topics.enable). */
  autoCreate?: boolean;
  /** message.max.bytes: a larger record batch is refused with MESSAGE_TOO_LARGE. */
  maxMessageBytes?: number;
  /** Serve TLS with this certificate and key (PEM files). */
  tls?: { cert: string; key: string };
  /** Require SASL (RFC 4616 PLAIN, RFC 5802 SCRAM) before any request but ApiVersions and SaslHandshake. */
  sasl?: { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; username: string; password: string };
}

export interface KafkaBroker {
  readonly port: number;
  readonly bootstrap: string;
  records(topic?: string): StoredRecord[];
  topics(): string[];
  /** Produce requests received, appended or not. */
  produceRequests(): number;
  /** SASL authentications that failed. */
  failedLogins(): number;
  /** The next `times` produce requests are answered with `code` for every partition. */
  failProduce(code: number, times: number): void;
  /** The next `times` produce requests are read, appended, and their connection reset before the answer. */
  resetAfterAppend(times: number): void;
  /** Answers to produce requests wait this long. */
  delayAcks(ms: number): void;
  /** Closes the listener and every connection; start() listens again on the same port with the same log. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

// CRC-32C (Castagnoli), as RecordBatch v2 carries it.
const CRC32C_TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32c = (data: Buffer): number => {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC32C_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
};

/** An LZ4 frame (lz4.github.io/lz4, Frame and Block format), as Kafka's lz4 codec (KIP-57) carries it. */
function lz4Frame(frame: Buffer): Buffer {
  if (frame.readUInt32LE(0) !== 0x184d2204) throw new Error('not an LZ4 frame');
  const flags = frame[4];
  let at = 7 + (flags & 0x08 ? 8 : 0) + (flags & 0x01 ? 4 : 0); // magic, FLG, BD, [content size], [dict id], HC
  const blocks: Buffer[] = [];
  for (;;) {
    const size = frame.readUInt32LE(at);
    at += 4;
    if (size === 0) break;
    const length = size & 0x7fffffff;
    const block = frame.subarray(at, at + length);
    blocks.push(size & 0x80000000 ? Buffer.from(block) : lz4Block(block));
    at += length + (flags & 0x10 ? 4 : 0);
  }
  return Buffer.concat(blocks);
}

function lz4Block(src: Buffer): Buffer {
  const out: number[] = [];
  let at = 0;
  const length = (base: number): number => {
    let n = base;
    if (base === 15) for (let byte = 255; byte === 255; n += byte) byte = src[at++];
    return n;
  };
  while (at < src.length) {
    const token = src[at++];
    const literals = length(token >> 4);
    for (let i = 0; i < literals; i++) out.push(src[at++]);
    if (at >= src.length) break;
    const offset = src.readUInt16LE(at);
    at += 2;
    const match = length(token & 15) + 4;
    const from = out.length - offset;
    for (let i = 0; i < match; i++) out.push(out[from + i]);
  }
  return Buffer.from(out);
}

class Reader {
  constructor(
    private readonly buf: Buffer,
    public at = 0,
  ) {}
  int8 = (): number => this.buf.readInt8(this.at++);
  int16 = (): number => ((this.at += 2), this.buf.readInt16BE(this.at - 2));
  int32 = (): number => ((this.at += 4), this.buf.readInt32BE(this.at - 4));
  uint32 = (): number => ((this.at += 4), this.buf.readUInt32BE(this.at - 4));
  int64 = (): bigint => ((this.at += 8), this.buf.readBigInt64BE(this.at - 8));
  bytes = (n: number): Buffer => ((this.at += n), this.buf.subarray(this.at - n, this.at));
  uvarint(): number {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = this.buf[this.at++];
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
  }
  /** Zigzag varint (varint and varlong alike, as a number). */
  varint(): number {
    const n = this.uvarint();
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }
  /** STRING or NULLABLE_STRING (null read as ''). */
  string(): string {
    const n = this.int16();
    return n < 0 ? '' : this.bytes(n).toString();
  }
  /** ARRAY (a null one read as empty). */
  array<T>(item: () => T): T[] {
    const n = this.int32();
    return Array.from({ length: Math.max(0, n) }, item);
  }
}

class Writer {
  private readonly parts: Buffer[] = [];
  put(size: number, write: (b: Buffer) => void): this {
    const b = Buffer.alloc(size);
    write(b);
    this.parts.push(b);
    return this;
  }
  int8 = (v: number): this => this.put(1, (b) => b.writeInt8(v));
  int16 = (v: number): this => this.put(2, (b) => b.writeInt16BE(v));
  int32 = (v: number): this => this.put(4, (b) => b.writeInt32BE(v));
  int64 = (v: bigint): this => this.put(8, (b) => b.writeBigInt64BE(v));
  string(s: string | null): this {
    if (s === null) return this.int16(-1);
    const b = Buffer.from(s);
    this.int16(b.length);
    this.parts.push(b);
    return this;
  }
  bytes(b: Buffer): this {
    this.int32(b.length);
    this.parts.push(b);
    return this;
  }
  array<T>(items: T[], each: (w: this, item: T) => void): this {
    this.int32(items.length);
    for (const item of items) each(this, item);
    return this;
  }
  get buffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const API = { Produce: 0, Metadata: 3, SaslHandshake: 17, ApiVersions: 18, InitProducerId: 22, SaslAuthenticate: 36 } as const;
const SASL_AUTHENTICATION_FAILED = 58;
const ILLEGAL_SASL_STATE = 34;
const SUPPORTED: [number, number, number][] = [
  [API.Produce, 3, 8],
  [API.Metadata, 1, 8],
  [API.ApiVersions, 0, 2],
  [API.InitProducerId, 0, 1],
  [API.SaslHandshake, 1, 1],
  [API.SaslAuthenticate, 0, 1],
];

/** Where one connection is in its SASL exchange. */
interface Login {
  mechanism?: string;
  done: boolean;
  /** SCRAM: what the server keeps between its first and final message. */
  scram?: { clientFirstBare: string; serverFirst: string; nonce: string; salted: Buffer };
}

/** One SCRAM step (RFC 5802) on the server side: the server-first message, then the server-final one or undefined. */
function scramStep(hash: 'sha256' | 'sha512', password: string, login: Login, message: string): string | undefined {
  const attributes = (text: string): Map<string, string> => new Map(text.split(',').map((part) => [part[0], part.slice(2)]));
  const hmac = (key: Buffer, text: string): Buffer => createHmac(hash, key).update(text).digest();
  if (login.scram === undefined) {
    const clientFirstBare = message.slice(message.indexOf(',', message.indexOf(',') + 1) + 1); // after the gs2 header
    const nonce = `${attributes(clientFirstBare).get('r')}${randomBytes(12).toString('base64')}`;
    const salt = randomBytes(16);
    const iterations = 4096;
    const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
    const salted = pbkdf2Sync(password, salt, iterations, hash === 'sha256' ? 32 : 64, hash);
    login.scram = { clientFirstBare, serverFirst, nonce, salted };
    return serverFirst;
  }
  const { clientFirstBare, serverFirst, nonce, salted } = login.scram;
  const final = attributes(message);
  const withoutProof = message.slice(0, message.lastIndexOf(',p='));
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const clientKey = hmac(salted, 'Client Key');
  const storedKey = createHash(hash).update(clientKey).digest();
  const signature = hmac(storedKey, authMessage);
  const proof = Buffer.from(final.get('p') ?? '', 'base64');
  const expected = Buffer.from(clientKey.map((byte, i) => byte ^ signature[i]));
  if (final.get('r') !== nonce || proof.length !== expected.length || !timingSafeEqual(proof, expected)) return undefined;
  return `v=${hmac(hmac(salted, 'Server Key'), authMessage).toString('base64')}`;
}

const LEGAL_TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

interface DecodedBatch {
  producerId: bigint;
  baseSequence: number;
  records: Omit<StoredRecord, 'topic' | 'partition' | 'offset'>[];
}

/** One RecordBatch v2 (the client sends one per partition). */
function decodeBatch(data: Buffer): DecodedBatch | number {
  const r = new Reader(data);
  r.int64(); // baseOffset
  const length = r.int32();
  r.int32(); // partitionLeaderEpoch
  if (r.int8() !== 2) return KAFKA_ERRORS.UNSUPPORTED_COMPRESSION_TYPE;
  const crc = r.uint32();
  if (crc32c(data.subarray(r.at, 12 + length)) !== crc) throw new Error('RecordBatch CRC32C mismatch');
  const attributes = r.int16();
  r.int32(); // lastOffsetDelta
  const baseTimestamp = Number(r.int64());
  r.int64(); // maxTimestamp
  const producerId = r.int64();
  r.int16(); // producerEpoch
  const baseSequence = r.int32();
  const count = r.int32();
  const codec = attributes & 7;
  let body = data.subarray(r.at, 12 + length);
  if (codec === 1) body = gunzipSync(body);
  else if (codec === 3) body = lz4Frame(body);
  else if (codec !== 0) return KAFKA_ERRORS.UNSUPPORTED_COMPRESSION_TYPE;
  const rr = new Reader(body);
  const records: DecodedBatch['records'] = [];
  for (let i = 0; i < count; i++) {
    rr.varint(); // length
    rr.int8(); // attributes
    const timestamp = baseTimestamp + rr.varint();
    rr.varint(); // offsetDelta
    const keyLength = rr.varint();
    const key = keyLength < 0 ? null : rr.bytes(keyLength).toString();
    const valueLength = rr.varint();
    const value = Buffer.from(valueLength < 0 ? Buffer.alloc(0) : rr.bytes(valueLength));
    const headers: [string, string][] = [];
    for (let h = rr.varint(); h > 0; h--) {
      const name = rr.bytes(rr.varint()).toString();
      const valueBytes = rr.varint();
      headers.push([name, valueBytes < 0 ? '' : rr.bytes(valueBytes).toString()]);
    }
    records.push({ key, value, headers, timestamp, producerId });
  }
  return { producerId, baseSequence, records };
}

export async function startKafkaBroker(options: BrokerOptions = {}): Promise<KafkaBroker> {
  const partitions = options.partitions ?? 4;
  const maxMessageBytes = options.maxMessageBytes ?? 1_048_588;
  const logs = new Map<string, StoredRecord[][]>();
  /** Next sequence expected per producer id, topic and partition. */
  const sequences = new Map<string, number>();
  const sockets = new Set<Socket>();
  let nextProducerId = 1000n;
  let produceRequests = 0;
  let failedLogins = 0;
  const logins = new WeakMap<Socket, Login>();
  let failures: { code: number; times: number } = { code: 0, times: 0 };
  let resets = 0;
  let ackDelayMs = 0;
  let server: Server | undefined;
  let port = 0;

  const ensureTopic = (name: string): void => {
    if (!logs.has(name)) logs.set(name, Array.from({ length: partitions }, () => []));
  };

  function metadata(version: number, r: Reader, w: Writer): void {
    const names = r.array(() => r.string());
    const allowCreate = version < 4 || r.int8() === 1;
    if (version >= 3) w.int32(0); // throttle_time_ms
    w.array([0], (ww) => ww.int32(0).string('127.0.0.1').int32(port).string(null));
    if (version >= 2) w.string('test-cluster');
    w.int32(0); // controller_id
    const topic = (ww: Writer, code: number, name: string, partitionCount: number): void => {
      ww.int16(code).string(name).int8(0);
      ww.array([...Array(partitionCount).keys()], (pw, index) => {
        pw.int16(0).int32(index).int32(0);
        if (version >= 7) pw.int32(0); // leader_epoch
        pw.array([0], (aw, id) => aw.int32(id)).array([0], (aw, id) => aw.int32(id));
        if (version >= 5) pw.array([], () => undefined);
      });
      if (version >= 8) ww.int32(0);
    };
    w.array(names, (ww, name) => {
      if (!LEGAL_TOPIC.test(name)) return topic(ww, KAFKA_ERRORS.INVALID_TOPIC_EXCEPTION, name, 0);
      if (!logs.has(name) && allowCreate && options.autoCreate !== false) ensureTopic(name);
      if (!logs.has(name)) return topic(ww, KAFKA_ERRORS.UNKNOWN_TOPIC_OR_PARTITION, name, 0);
      topic(ww, 0, name, partitions);
    });
    if (version >= 8) w.int32(0); // cluster_authorized_operations
  }

  /** Appends what a Produce request carries, and writes the answer. */
  function produce(version: number, r: Reader, w: Writer): void {
    produceRequests++;
    r.string(); // transactional_id
    r.int16(); // acks
    r.int32(); // timeout
    const failing = failures.times > 0 ? (failures.times--, failures.code) : 0;
    const topics = r.array(() => {
      const name = r.string();
      const parts = r.array(() => {
        const index = r.int32();
        const data = r.bytes(r.int32());
        return { index, data };
      });
      return { name, parts };
    });
    w.array(topics, (tw, topic) => {
      tw.string(topic.name);
      tw.array(topic.parts, (pw, part) => {
        let code = failing;
        let baseOffset = -1n;
        const log = logs.get(topic.name)?.[part.index];
        if (code === 0 && log === undefined) code = KAFKA_ERRORS.UNKNOWN_TOPIC_OR_PARTITION;
        if (code === 0 && part.data.length > maxMessageBytes) code = KAFKA_ERRORS.MESSAGE_TOO_LARGE;
        if (code === 0 && log !== undefined) {
          const batch = decodeBatch(part.data);
          if (typeof batch === 'number') code = batch;
          else {
            const key = `${batch.producerId}:${topic.name}:${part.index}`;
            const expected = sequences.get(key) ?? 0;
            if (batch.producerId >= 0n && batch.baseSequence < expected) {
              baseOffset = 0n; // a duplicate of a batch already appended: acknowledged, not appended again
            } else if (batch.producerId >= 0n && batch.baseSequence > expected) {
              code = KAFKA_ERRORS.OUT_OF_ORDER_SEQUENCE_NUMBER;
            } else {
              baseOffset = BigInt(log.length);
              for (const record of batch.records) log.push({ ...record, topic: topic.name, partition: part.index, offset: log.length });
              sequences.set(key, expected + batch.records.length);
            }
          }
        }
        pw.int32(part.index).int16(code).int64(baseOffset).int64(-1n);
        if (version >= 5) pw.int64(0n); // log_start_offset
        if (version >= 8) pw.array([], () => undefined).string(code === 0 ? null : `test broker refused: code ${code}`);
      });
    });
    w.int32(0); // throttle_time_ms
  }

  function handle(socket: Socket, frame: Buffer): void {
    const r = new Reader(frame);
    const apiKey = r.int16();
    const version = r.int16();
    const correlationId = r.int32();
    r.string(); // client_id (a nullable STRING in request header v1)
    const w = new Writer().int32(correlationId); // response header v0
    const range = SUPPORTED.find(([key]) => key === apiKey);
    if (range === undefined || version < range[1] || version > range[2]) throw new Error(`test broker: unexpected api ${apiKey} v${version}`);
    const login = logins.get(socket) ?? { done: options.sasl === undefined };
    logins.set(socket, login);
    let reset = false;
    if (!login.done && apiKey !== API.ApiVersions && apiKey !== API.SaslHandshake && apiKey !== API.SaslAuthenticate) {
      // Kafka closes a connection that sends anything else before authenticating.
      return void socket.destroy();
    }
    if (apiKey === API.ApiVersions) {
      w.int16(0).array(SUPPORTED, (ww, [key, min, max]) => ww.int16(key).int16(min).int16(max));
      if (version >= 1) w.int32(0); // throttle_time_ms
    } else if (apiKey === API.SaslHandshake) {
      const mechanism = r.string();
      const offered = options.sasl?.mechanism ?? 'PLAIN';
      login.mechanism = mechanism;
      w.int16(mechanism === offered ? 0 : 33).array([offered], (ww, name) => ww.string(name));
    } else if (apiKey === API.SaslAuthenticate) {
      const auth = r.bytes(r.int32()).toString();
      const sasl = options.sasl!;
      let answer: string | undefined;
      if (login.mechanism !== sasl.mechanism) answer = undefined;
      else if (sasl.mechanism === 'PLAIN') answer = auth === `\0${sasl.username}\0${sasl.password}` ? '' : undefined;
      else {
        const step = scramStep(sasl.mechanism === 'SCRAM-SHA-256' ? 'sha256' : 'sha512', sasl.password, login, auth);
        const first = login.scram !== undefined && step?.startsWith('r=');
        if (first && !auth.includes(`n=${sasl.username},`)) answer = undefined;
        else answer = step;
        if (step !== undefined && !first) login.done = true;
      }
      if (sasl.mechanism === 'PLAIN' && answer !== undefined) login.done = true;
      if (answer === undefined) {
        failedLogins++;
        w.int16(login.mechanism === undefined ? ILLEGAL_SASL_STATE : SASL_AUTHENTICATION_FAILED).string('Authentication failed: invalid credentials').bytes(Buffer.alloc(0));
        if (version >= 1) w.int64(0n);
        const size = Buffer.alloc(4);
        size.writeInt32BE(w.buffer.length);
        socket.end(Buffer.concat([size, w.buffer]));
        return;
      }
      w.int16(0).string(null).bytes(Buffer.from(answer));
      if (version >= 1) w.int64(0n); // session_lifetime_ms
    } else if (apiKey === API.Metadata) {
      metadata(version, r, w);
    } else if (apiKey === API.InitProducerId) {
      w.int32(0).int16(0).int64(nextProducerId++).int16(0);
    } else if (apiKey === API.Produce) {
      produce(version, r, w);
      if (resets > 0) {
        resets--;
        reset = true;
      }
    }
    const body = w.buffer;
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length);
    if (reset) return void socket.resetAndDestroy();
    const answer = (): void => void socket.write(Buffer.concat([size, body]));
    if (apiKey === API.Produce && ackDelayMs > 0) setTimeout(answer, ackDelayMs);
    else answer();
  }

  const listen = async (): Promise<void> => {
    const serve = (socket: Socket): void => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
      let pending: Buffer = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
          const frame = pending.subarray(4, 4 + pending.readInt32BE(0));
          pending = pending.subarray(4 + frame.length);
          handle(socket, frame);
        }
      });
    };
    const { tls } = options;
    server = tls === undefined ? createServer(serve) : createTlsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, serve);
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(port, '127.0.0.1', () => resolve());
    });
    port = (server.address() as AddressInfo).port;
  };
  await listen();

  return {
    get port() {
      return port;
    },
    get bootstrap() {
      return `127.0.0.1:${port}`;
    },
    records: (topic) => [...logs.entries()].filter(([name]) => topic === undefined || name === topic).flatMap(([, parts]) => parts.flat()),
    topics: () => [...logs.keys()],
    produceRequests: () => produceRequests,
    failedLogins: () => failedLogins,
    failProduce(code, times) {
      failures = { code, times };
    },
    resetAfterAppend(times) {
      resets = times;
    },
    delayAcks(ms) {
      ackDelayMs = ms;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
      server = undefined;
    },
    start: listen,
  };
}
