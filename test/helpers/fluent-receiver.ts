import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { gunzipSync } from 'node:zlib';
import { decodeMulti, decodeMultiStream, encode, ExtensionCodec } from '@msgpack/msgpack';
import type { KillableReceiver } from './outage.js';
import type { TestCerts } from './rsyslog.js';

/** Forward's EventTime (ext type 0), as the receiver decodes it. */
export interface EventTime {
  seconds: number;
  nanoseconds: number;
}

export interface ForwardEntry {
  time: EventTime | number;
  record: Record<string, unknown>;
}

/** One PackedForward / CompressedPackedForward message as it arrived. */
export interface ForwardMessage {
  tag: string;
  option: Record<string, unknown>;
  entries: ForwardEntry[];
  /** Which connection (counted from 1) it came on. */
  connection: number;
  /** Whether the entries came as msgpack bin (the specification's SHOULD). */
  binary: boolean;
}

/** What to do with a message's `chunk`: acknowledge now, after `delayMs`, or never. */
export type AckPolicy = (message: ForwardMessage, index: number) => 'ack' | 'withhold' | { delayMs: number };

export interface ReceiverSecurity {
  sharedKey: string;
  /** Asks for a user in HELO (auth salt) and checks it. */
  user?: { username: string; password: string };
  /** Answers with a PONG digest made from another key: the client must not trust this server. */
  wrongServerDigest?: boolean;
}

const extensionCodec = new ExtensionCodec();
extensionCodec.register({
  type: 0,
  encode: () => null,
  decode: (data: Uint8Array): EventTime => {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return { seconds: view.getUint32(0), nanoseconds: view.getUint32(4) };
  },
});

const SERVER_HOSTNAME = 'fluent-receiver.test';
const sha512Hex = (...parts: (string | Uint8Array)[]): string => {
  const hash = createHash('sha512');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
};
const bytesOf = (value: unknown): Uint8Array => (typeof value === 'string' ? Buffer.from(value) : (value as Uint8Array));

/**
 * A Fluentd Forward protocol (v1) server in the test process, decoding with @msgpack/msgpack (independent of the
 * sink's encoder), TCP or TLS, with the optional shared-key handshake. It records every message (resent ones again)
 * and misbehaves on demand: acks withheld or delayed (`ackPolicy`), connections reset after some bytes (mid-message),
 * connections refused while stopped, a wrong key.
 */
export class FluentReceiver implements KillableReceiver {
  readonly messages: ForwardMessage[] = [];
  /** Handshake results, in order: 'ok' or the reason given in PONG. */
  readonly handshakes: string[] = [];
  ackPolicy: AckPolicy = () => 'ack';
  /** Reset a connection once it has read this many bytes, `resetTimes` connections in a row (then clear it). */
  resetAfterBytes: number | undefined;
  resetTimes = 1;
  resets = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private connections = 0;

  constructor(
    readonly port: number,
    readonly options: { certs?: TestCerts; security?: ReceiverSecurity } = {},
  ) {}

  /** Each entry's `log`, in arrival order (duplicates included). */
  logs(): string[] {
    return this.messages.flatMap((message) => message.entries.map((entry) => String(entry.record.log)));
  }

  /** The number after the label of each line taken in (`<label> <n> ...`, as numberedLines writes), duplicates included. */
  received(): number[] {
    return this.logs()
      .map((log) => Number(log.split(' ')[1]))
      .filter((n) => Number.isInteger(n));
  }

  async start(): Promise<void> {
    const { certs } = this.options;
    const onConnection = (socket: Socket): void => void this.serve(socket, ++this.connections);
    const server = certs
      ? createTlsServer({ key: readFileSync(certs.serverKey), cert: readFileSync(certs.serverCert) }, onConnection)
      : createTcpServer(onConnection);
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** Refuses connections (the listener closes) and resets those open, until `start()`. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    this.resetConnections();
    await closed;
  }

  /** As SIGKILL would: connections reset, what was not decoded yet is gone (decoded messages were acknowledged). */
  kill(): Promise<void> {
    return this.stop();
  }

  resetConnections(): void {
    for (const socket of this.sockets) if (!socket.destroyed) socket.resetAndDestroy();
  }

  /** Connections accepted so far. */
  get connectionCount(): number {
    return this.connections;
  }

  private async serve(socket: Socket, connection: number): Promise<void> {
    socket.on('error', () => undefined);
    const raw = socket as Socket;
    // Counts the bytes read, to reset mid-stream on demand, before they reach the decoder.
    const self = this;
    async function* bytes(): AsyncGenerator<Uint8Array> {
      let read = 0;
      for await (const chunk of socket as AsyncIterable<Buffer>) {
        read += chunk.length;
        if (self.resetAfterBytes !== undefined && read >= self.resetAfterBytes) {
          if (--self.resetTimes <= 0) self.resetAfterBytes = undefined;
          self.resets++;
          raw.resetAndDestroy();
          return;
        }
        yield chunk;
      }
    }
    try {
      const values = decodeMultiStream(bytes(), { extensionCodec })[Symbol.asyncIterator]();
      const { security } = this.options;
      if (security !== undefined && !(await this.handshake(socket, values, security))) return;
      for (let next = await values.next(); !next.done; next = await values.next()) this.take(socket, next.value, connection);
    } catch {
      // A reset, or bytes that are not MessagePack: the connection ends.
      if (!socket.destroyed) socket.destroy();
    }
  }

  private async handshake(socket: Socket, values: AsyncIterator<unknown>, security: ReceiverSecurity): Promise<boolean> {
    const nonce = randomBytes(16);
    const auth = security.user === undefined ? Buffer.alloc(0) : randomBytes(16);
    socket.write(encode(['HELO', { nonce, auth, keepalive: true }]));
    const next = await values.next();
    if (next.done) return false;
    const [type, hostname, salt, digest, username, password] = next.value as unknown[];
    const refuse = (reason: string): false => {
      this.handshakes.push(reason);
      socket.end(encode(['PONG', false, reason, SERVER_HOSTNAME, '']));
      return false;
    };
    if (type !== 'PING') return refuse('expected PING');
    if (digest !== sha512Hex(bytesOf(salt), String(hostname), nonce, security.sharedKey)) return refuse('shared_key mismatch');
    if (security.user !== undefined) {
      const expected = sha512Hex(auth, security.user.username, security.user.password);
      if (username !== security.user.username || password !== expected) return refuse('username/password mismatch');
    }
    const key = security.wrongServerDigest ? `${security.sharedKey}-not` : security.sharedKey;
    this.handshakes.push('ok');
    socket.write(encode(['PONG', true, '', SERVER_HOSTNAME, sha512Hex(bytesOf(salt), SERVER_HOSTNAME, nonce, key)]));
    return true;
  }

  private take(socket: Socket, value: unknown, connection: number): void {
    if (!Array.isArray(value)) return;
    const [tag, packed, option = {}] = value as [string, Uint8Array | string, Record<string, unknown>];
    let stream = bytesOf(packed);
    if (option.compressed === 'gzip') stream = gunzipSync(stream);
    const entries = [...decodeMulti(stream, { extensionCodec })].map((entry) => {
      const [time, record] = entry as [EventTime | number, Record<string, unknown>];
      return { time, record };
    });
    const message: ForwardMessage = { tag, option, entries, connection, binary: packed instanceof Uint8Array };
    const index = this.messages.push(message) - 1;
    const chunk = option.chunk;
    if (typeof chunk !== 'string') return;
    const policy = this.ackPolicy(message, index);
    const ack = (): void => {
      if (!socket.destroyed) socket.write(encode({ ack: chunk }));
    };
    if (policy === 'ack') ack();
    else if (policy !== 'withhold') setTimeout(ack, policy.delayMs);
  }

  async close(): Promise<void> {
    await this.stop();
  }
}
