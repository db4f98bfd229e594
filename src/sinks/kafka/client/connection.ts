// One TCP or TLS connection to a broker: size-prefixed requests with header v1 (api key, version, correlation id,
// client id), answers matched to requests by correlation id (response header v0).
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { tls as tlsModule } from '../../../lazy-builtins.js';
import { Reader, Writer } from './wire.js';

export interface ConnectOptions {
  host: string;
  port: number;
  clientId: string;
  connectTimeoutMs: number;
  /** TLS options (CA, client certificate, servername); undefined for plain TCP. */
  tls: ConnectionOptions | undefined;
}

interface Pending {
  resolve(body: Reader): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class Connection {
  private nextCorrelation = 0;
  private readonly pending = new Map<number, Pending>();
  private received: Buffer = Buffer.alloc(0);
  /** Why the connection is unusable, once it is. */
  private failure: Error | undefined;
  private markClosed!: () => void;
  /** Resolves once the connection is unusable. */
  readonly closed = new Promise<void>((resolve) => (this.markClosed = resolve));

  private constructor(
    private readonly socket: Socket,
    private readonly clientId: string,
    readonly address: string,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error(`connection to ${address} closed`)));
  }

  /** Connects (and completes the TLS handshake, the certificate verified unless told otherwise). */
  static open(options: ConnectOptions): Promise<Connection> {
    const { host, port, tls } = options;
    const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    return new Promise((resolve, reject) => {
      // SNI carries the broker's name unless tls.servername replaces it; an IP address is not a valid SNI.
      const socket =
        tls === undefined
          ? connectTcp({ host, port })
          : tlsModule().connect({ ...tls, host, port, servername: tls.servername ?? (isIP(host) === 0 ? host : undefined) });
      socket.setNoDelay(true);
      const timer = setTimeout(() => socket.destroy(new Error(`connecting to ${address} timed out after ${options.connectTimeoutMs} ms`)), options.connectTimeoutMs);
      const failed = (err: Error): void => {
        clearTimeout(timer);
        reject(new Error(`connection to ${address} failed: ${err.message}`));
      };
      socket.once('error', failed);
      socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', failed);
        resolve(new Connection(socket, options.clientId, address));
      });
    });
  }

  get usable(): boolean {
    return this.failure === undefined;
  }

  /** Sends one request; resolves with the response body after its correlation id. */
  request(apiKey: number, version: number, body: (w: Writer) => void, timeoutMs: number): Promise<Reader> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const correlationId = this.nextCorrelation;
    this.nextCorrelation = (this.nextCorrelation + 1) & 0x7fffffff;
    const w = new Writer().int32(0).int16(apiKey).int16(version).int32(correlationId).string(this.clientId);
    body(w);
    const frame = w.finish();
    frame.writeInt32BE(frame.length - 4, 0);
    return new Promise((resolve, reject) => {
      // An answer that never comes: the connection is dropped, as a late answer would not be told apart.
      const timer = setTimeout(() => this.fail(new Error(`no answer from ${this.address} within ${timeoutMs} ms`)), timeoutMs);
      this.pending.set(correlationId, { resolve, reject, timer });
      this.socket.write(frame);
    });
  }

  close(): void {
    this.fail(new Error(`connection to ${this.address} closed by the producer`));
  }

  private receive(chunk: Buffer): void {
    this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk]);
    while (this.received.length >= 4) {
      const size = this.received.readInt32BE(0);
      if (this.received.length < 4 + size) return;
      const frame = this.received.subarray(4, 4 + size);
      this.received = this.received.subarray(4 + size);
      const correlationId = frame.readInt32BE(0);
      const pending = this.pending.get(correlationId);
      if (pending === undefined) return this.fail(new Error(`${this.address} answered an unknown request (correlation id ${correlationId})`));
      this.pending.delete(correlationId);
      clearTimeout(pending.timer);
      pending.resolve(new Reader(frame, 4));
    }
  }

  private fail(err: Error): void {
    if (this.failure === undefined) this.failure = err;
    this.markClosed();
    this.socket.destroy();
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(this.failure);
    }
    this.pending.clear();
  }
}
