import type { Socket } from 'node:net';
import { answerHelo, isHelo, type SecurityOptions } from './handshake.js';
import { MsgpackReader, type ReadValue } from './msgpack-read.js';

export interface ForwardConnectionOptions {
  /** Starts the connection: net.connect, or tls.connect. */
  open: () => Socket;
  tls: boolean;
  /** Where, for messages. */
  peer: string;
  /** For connecting and the handshake together. */
  connectTimeoutMs: number;
  /** With it, the server's HELO is awaited and answered before anything is sent. */
  security?: SecurityOptions;
}

interface AckWait {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * One connection to a Forward server, in its transport phase (after the handshake, when there is one): writes
 * messages and matches the server's `{ack: chunk}` answers to them. Once it closes, for any reason, every wait
 * rejects, and it is not used again.
 */
export class ForwardConnection {
  private readonly reader = new MsgpackReader();
  private readonly acks = new Map<string, AckWait>();
  private onValue: (value: ReadValue) => void = (value) => this.transportValue(value);
  private closeError: Error | undefined;

  private readonly socket: Socket;
  /** Resolves once the connection is in its transport phase; rejects when connecting or the handshake fails or takes too long. */
  readonly ready: Promise<void>;

  /** Connects, and does the handshake when `security` is set. */
  constructor(private readonly options: ForwardConnectionOptions) {
    this.socket = options.open();
    this.ready = this.start();
  }

  get closed(): boolean {
    return this.closeError !== undefined;
  }

  private start(): Promise<void> {
    const { socket, options } = this;
    return new Promise<void>((resolve, reject) => {
      let lastError: Error | undefined;
      let ready = false;
      const timer = setTimeout(() => {
        const phase = options.security === undefined ? 'connecting to' : 'connecting to and handshaking with';
        socket.destroy(new Error(`${phase} ${options.peer} timed out after ${options.connectTimeoutMs} ms`));
      }, options.connectTimeoutMs);
      const established = (): void => {
        clearTimeout(timer);
        ready = true;
        resolve();
      };
      socket.on('error', (err) => (lastError = err));
      socket.on('data', (chunk: Buffer) => this.read(chunk));
      // The server closing its side ends the connection: what it did not acknowledge is resent on a new one.
      socket.on('end', () => socket.destroy());
      socket.once('close', () => {
        clearTimeout(timer);
        const err = lastError ?? new Error(`connection to ${options.peer} closed`);
        this.closeError = err;
        for (const wait of this.acks.values()) {
          clearTimeout(wait.timer);
          wait.reject(err);
        }
        this.acks.clear();
        if (!ready) reject(err);
      });
      socket.once(options.tls ? 'secureConnect' : 'connect', () => {
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 30_000);
        const { security } = options;
        if (security === undefined) return established();
        this.onValue = (helo) => {
          const { ping, checkPong } = answerHelo(helo, security);
          this.onValue = (pong) => {
            checkPong(pong);
            this.onValue = (value) => this.transportValue(value);
            established();
          };
          socket.write(ping);
        };
      });
    });
  }

  private read(chunk: Buffer): void {
    try {
      this.reader.push(chunk);
      for (let value = this.reader.next(); value !== undefined; value = this.reader.next()) this.onValue(value);
    } catch (err) {
      this.socket.destroy(err as Error);
    }
  }

  private transportValue(value: ReadValue): void {
    if (isHelo(value)) {
      throw new Error(`${this.options.peer} asks for the shared-key handshake (it sent HELO): set security.shared_key`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value)) return;
    const chunk = (value as Record<string, ReadValue>).ack;
    if (typeof chunk !== 'string') return;
    const wait = this.acks.get(chunk);
    if (wait === undefined) return;
    this.acks.delete(chunk);
    clearTimeout(wait.timer);
    wait.resolve();
  }

  /**
   * Resolves when the server acknowledges `chunk`. After `timeoutMs` without, the connection is destroyed (with
   * every other wait on it): the server may be stuck or the connection half dead, and only a new one can tell.
   * Ask before writing the message, so that an ack cannot come first.
   */
  acknowledged(chunk: string, timeoutMs: number): Promise<void> {
    if (this.closeError !== undefined) return Promise.reject(this.closeError);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.socket.destroy(new Error(`no ack from ${this.options.peer} for chunk ${chunk} within ${timeoutMs} ms; reconnecting to send it again`));
      }, timeoutMs);
      this.acks.set(chunk, { resolve, reject, timer });
    });
  }

  /** Resolves when the kernel took `bytes`; rejects if the connection closes first. */
  write(bytes: Buffer): Promise<void> {
    if (this.closeError !== undefined) return Promise.reject(this.closeError);
    return new Promise<void>((resolve, reject) => {
      // Node completes a write cut short by destroy() without an error: the bytes were not all taken.
      this.socket.write(bytes, (err) => {
        if (err || this.socket.destroyed) reject(err ?? this.closeError ?? new Error(`connection to ${this.options.peer} closed`));
        else resolve();
      });
    });
  }

  destroy(err: Error): void {
    this.socket.destroy(err);
  }
}
