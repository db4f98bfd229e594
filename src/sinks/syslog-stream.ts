import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

export interface StreamTransportOptions {
  /** Starts a connection: net.connect or tls.connect. */
  open: () => Socket;
  /** Where, for messages. */
  peer: string;
  connectTimeoutMs: number;
  /** Called for each connection made after the first. */
  onReconnect: () => void;
  /** Called when an established connection goes away unasked: what the kernel took may not have been read. */
  onLost: (err: Error) => void;
}

const TLS13_SETTLE_MS = 250;

/**
 * One TCP or TLS connection at a time, opened on demand by `write`. Plain syslog has no acknowledgements: a write
 * the kernel took may still be lost when the peer dies, so an unexpected loss is reported (`onLost`) for the sink to
 * send its newest lines again.
 */
export class StreamTransport {
  private socket: Socket | undefined;
  private ready: Promise<Socket> | undefined;
  private connections = 0;
  private closed = false;
  /** Rejects the write in flight when the connection goes away. */
  private failWrite: ((err: Error) => void) | undefined;

  constructor(private readonly options: StreamTransportOptions) {}

  /** Resolves when the kernel has taken `frames` (which may then be reused); rejects if the connection fails. */
  async write(frames: Buffer): Promise<void> {
    const socket = await this.connect();
    await new Promise<void>((resolve, reject) => {
      this.failWrite = reject;
      // Node completes a write cut short by destroy() without an error: the bytes were not all taken.
      socket.write(frames, (err) => {
        if (err || socket.destroyed) reject(err ?? new Error(`connection to ${this.options.peer} closed`));
        else resolve();
      });
    }).finally(() => (this.failWrite = undefined));
  }

  /** Destroys the connection: a write in flight rejects, and so does every later one. */
  close(): void {
    this.closed = true;
    this.socket?.destroy();
  }

  private connect(): Promise<Socket> {
    if (this.closed) return Promise.reject(new Error('the syslog sink is closed'));
    this.ready ??= new Promise<Socket>((resolve, reject) => {
      const { open, connectTimeoutMs, peer } = this.options;
      const socket = open();
      const tls = socket instanceof TLSSocket;
      this.socket = socket;
      let lastError: Error | undefined;
      let connected = false;
      const timer = setTimeout(
        () => socket.destroy(new Error(`connecting to ${peer} timed out after ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
      const started = Date.now();
      const ready = (): void => {
        if (socket.destroyed) return;
        connected = true;
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 30_000);
        if (this.connections++ > 0) this.options.onReconnect();
        resolve(socket);
      };
      socket.on('error', (err) => (lastError = err));
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        // TLS 1.3 completes the client's side of the handshake before the server has checked the client
        // certificate, and a refusal comes a round trip later (rsyslog sends no session ticket to confirm). Waiting
        // twice the handshake, and at least TLS13_SETTLE_MS, keeps a refused connection from taking a batch that
        // would then count as sent.
        if (tls && socket.getProtocol() === 'TLSv1.3') {
          setTimeout(ready, Math.max(TLS13_SETTLE_MS, 2 * (Date.now() - started)));
        } else ready();
      });
      // A syslog receiver sends nothing; reading lets us see its FIN, and then we close too.
      socket.on('end', () => socket.destroy());
      socket.resume();
      socket.once('close', () => {
        clearTimeout(timer);
        const err = lastError ?? new Error(`connection to ${peer} closed`);
        this.socket = undefined;
        this.ready = undefined;
        if (!connected) return reject(err);
        this.failWrite?.(err);
        if (!this.closed) this.options.onLost(err);
      });
    });
    return this.ready;
  }
}
