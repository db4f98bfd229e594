import { createRequire } from 'node:module';
import { getSystemErrorName } from 'node:util';

/** The part of the `unix-dgram` addon this sink uses. */
interface UnixDgramSocket {
  on(event: 'error', listener: (err: Error) => void): void;
  on(event: 'writable', listener: () => void): void;
  connect(path: string): void;
  /** On a connected socket: calls back synchronously, with code 1 ('congestion') when the kernel said EAGAIN. */
  send(datagram: Buffer, callback: (err?: Error & { code?: number }) => void): void;
  close(): void;
}

interface UnixDgram {
  createSocket(type: 'unix_dgram'): UnixDgramSocket;
}

let addon: UnixDgram | Error | undefined;

/**
 * Loads the native addon on first use. It is not in the bundle (a .node file cannot be bundled): Node resolves it
 * from node_modules next to the running file or above it (the repository's, or the one a release ships beside the
 * bundle). Returns the error when it is missing or was built for another Node.
 */
export function loadUnixDgram(): UnixDgram | Error {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)('unix-dgram') as UnixDgram;
    } catch (err) {
      addon = err as Error;
    }
  }
  return addon;
}

/** EAGAIN lasting this long means journald is stalled rather than busy: fail the send and let the sink back off. */
const CONGESTION_WAIT_MS = 1000;
const CONGESTION = 1;

/** A send error, with the errno name the addon reports only as a negative number. */
export class DatagramError extends Error {
  constructor(
    readonly code: string,
    socketPath: string,
  ) {
    super(`journald socket ${socketPath}: ${code}`);
  }
}

function closeQuietly(socket: UnixDgramSocket): void {
  try {
    socket.close();
  } catch {
    // The descriptor is gone either way.
  }
}

function errnoName(err: Error & { code?: number | string }): string {
  return typeof err.code === 'number' && err.code < 0 ? getSystemErrorName(err.code) : String(err.code ?? err.message);
}

/**
 * A unix datagram socket connected to journald's native socket, one datagram per entry. Connected lazily and again
 * after an error, since a restarted journald has a new socket.
 */
export class NativeTransport {
  private socket: UnixDgramSocket | undefined;
  private connections = 0;
  private waiting: { resolve: () => void; reject: (err: Error) => void } | undefined;

  constructor(
    private readonly dgram: UnixDgram,
    private readonly path: string,
    private readonly onReconnect: () => void,
  ) {}

  /** Resolves once the kernel queued the datagram to journald; rejects with a DatagramError. */
  async send(datagram: Buffer): Promise<void> {
    for (;;) {
      const socket = this.connect();
      let failure: (Error & { code?: number }) | undefined;
      socket.send(datagram, (err) => (failure = err));
      if (failure === undefined) return;
      if (failure.code !== CONGESTION) {
        this.disconnect();
        throw new DatagramError(errnoName(failure), this.path);
      }
      await this.writable();
    }
  }

  /** Drops the socket; a pending send rejects. */
  close(): void {
    this.disconnect();
  }

  private connect(): UnixDgramSocket {
    if (this.socket !== undefined) return this.socket;
    const socket = this.dgram.createSocket('unix_dgram');
    let failure: Error | undefined;
    socket.on('error', (err) => (failure = err));
    socket.connect(this.path);
    if (failure !== undefined) {
      closeQuietly(socket);
      throw new DatagramError(errnoName(failure), this.path);
    }
    socket.on('writable', () => this.waiting?.resolve());
    if (this.connections++ > 0) this.onReconnect();
    this.socket = socket;
    return socket;
  }

  private disconnect(): void {
    const socket = this.socket;
    this.socket = undefined;
    this.waiting?.reject(new DatagramError('closed', this.path));
    if (socket !== undefined) closeQuietly(socket);
  }

  /** Waits for journald to make room in its queue, or rejects with EAGAIN after CONGESTION_WAIT_MS. */
  private writable(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new DatagramError('EAGAIN', this.path)), CONGESTION_WAIT_MS);
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.waiting = undefined;
        if (err === undefined) resolve();
        else reject(err);
      };
      this.waiting = { resolve: () => done(), reject: done };
    });
  }
}
