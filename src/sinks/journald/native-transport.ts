import { createRequire } from 'node:module';
import { getSystemErrorName } from 'node:util';
import { queueLimits, UnreadWindow, type SentDatagram } from './unread-window.js';

/** The part of the `unix-dgram` addon this sink uses. */
interface UnixDgramSocket {
  on(event: 'error', listener: (err: Error & { code?: number }) => void): void;
  on(event: 'writable' | 'congestion', listener: () => void): void;
  connect(path: string): void;
  /**
   * On a connected socket, without a callback: emits 'congestion' synchronously when the kernel said EAGAIN (and
   * polls for 'writable'), 'error' for any other failure. (With a callback it builds an Error object per EAGAIN.)
   */
  send(datagram: Buffer): void;
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
 * after an error, since a restarted journald has a new socket. When a connection that carried datagrams fails, the
 * peer socket is gone with what it held unread: the newest datagrams (UnreadWindow) go to the next connection first.
 */
export class NativeTransport {
  private socket: UnixDgramSocket | undefined;
  private connections = 0;
  /** Set by the socket's listeners during a synchronous send() or connect(). */
  private congested = false;
  private failure: (Error & { code?: number }) | undefined;
  private waiting: { since: number; resolve: () => void; reject: (err: Error) => void } | undefined;
  /** One timer for all congestion waits: at a full queue waits are short and many, and a timer each was measurable. */
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly unread = new UnreadWindow(queueLimits());
  /** Datagrams a failed connection may have lost, to send before anything new. */
  private replay: SentDatagram[] = [];
  private replayBytes = 0;

  constructor(
    private readonly dgram: UnixDgram,
    private readonly path: string,
    private readonly onReconnect: () => void,
  ) {}

  /** What the replay of a failed connection holds: the window and what is still to be sent again. */
  get heldBytes(): number {
    return this.unread.bytes + this.replayBytes;
  }

  /** Gives up the oldest datagrams kept for a replay, for new lines that need the room. */
  release(bytes: number): void {
    this.unread.release(bytes);
  }

  /**
   * Resolves once the kernel queued the datagram to journald (and the replay owed by a failed connection before
   * it); rejects with a DatagramError. `sent` says what the datagram carries of the stream.
   */
  async send(sent: SentDatagram): Promise<void> {
    while (this.replay.length > 0) {
      await this.sendOne(this.replay[0]);
      this.replayBytes -= this.replay.shift()!.datagram.length;
    }
    await this.sendOne(sent);
  }

  /** Gives up the replay still owed (at the stop deadline): the stream's lines and bytes it carried. */
  abandonReplay(): { lines: number; bytes: number } {
    const owed = { lines: 0, bytes: 0 };
    for (const sent of this.replay) {
      owed.lines += sent.lines;
      owed.bytes += sent.bytes;
    }
    this.replay = [];
    this.replayBytes = 0;
    return owed;
  }

  /** Drops the socket; a pending send rejects. */
  close(): void {
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.disconnect();
  }

  private async sendOne(sent: SentDatagram): Promise<void> {
    for (;;) {
      const socket = this.connect();
      this.congested = false;
      this.failure = undefined;
      socket.send(sent.datagram);
      if (this.failure !== undefined) {
        const code = errnoName(this.failure);
        this.connectionLost();
        throw new DatagramError(code, this.path);
      }
      if (!this.congested) {
        this.unread.add(sent);
        return;
      }
      await this.writable();
    }
  }

  private connect(): UnixDgramSocket {
    if (this.socket !== undefined) return this.socket;
    const socket = this.dgram.createSocket('unix_dgram');
    socket.on('error', (err) => (this.failure = err));
    socket.on('congestion', () => (this.congested = true));
    this.failure = undefined;
    socket.connect(this.path);
    if (this.failure !== undefined) {
      closeQuietly(socket);
      throw new DatagramError(errnoName(this.failure), this.path);
    }
    socket.on('writable', () => this.waiting?.resolve());
    if (this.connections++ > 0) this.onReconnect();
    this.socket = socket;
    return socket;
  }

  /** The peer failed a send: what it held unread is gone with it, so the newest datagrams are owed again. */
  private connectionLost(): void {
    const lost = this.unread.takeAll();
    if (lost.length > 0) {
      this.replay = [...lost, ...this.replay];
      this.replayBytes += lost.reduce((sum, { datagram }) => sum + datagram.length, 0);
    }
    this.disconnect();
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
      const done = (err?: Error): void => {
        this.waiting = undefined;
        if (err === undefined) resolve();
        else reject(err);
      };
      this.waiting = { since: Date.now(), resolve: () => done(), reject: done };
      this.stallTimer ??= setTimeout(() => this.checkStall(), CONGESTION_WAIT_MS);
    });
  }

  /** Fails a wait that has lasted CONGESTION_WAIT_MS; re-arms for the one in progress, if any. */
  private checkStall(): void {
    this.stallTimer = undefined;
    const waiting = this.waiting;
    if (waiting === undefined) return;
    const waited = Date.now() - waiting.since;
    if (waited >= CONGESTION_WAIT_MS) waiting.reject(new DatagramError('EAGAIN', this.path));
    else this.stallTimer = setTimeout(() => this.checkStall(), CONGESTION_WAIT_MS - waited);
  }
}
