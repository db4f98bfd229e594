import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../diagnostics.js';
import { RateLimitedLog } from '../diagnostics.js';
import { FrameRing } from './frame-ring.js';

export interface ReplayLimits {
  /** Most bytes of recent frames kept for resending; 0 turns replay off. */
  maxBytes: number;
  /** Frames older than this (since the kernel took them) are taken as received. */
  maxAgeMs: number;
}

export interface StreamTransportOptions {
  /** Starts a connection: net.connect or tls.connect. */
  open: () => Socket;
  /** Where, for messages. */
  peer: string;
  /** `open` makes TLS connections (ready at secureConnect). */
  tls: boolean;
  connectTimeoutMs: number;
  replay: ReplayLimits;
  /** Called for each connection made after the first. */
  onReconnect: () => void;
  /** Called with the bytes the frame ring holds whenever that figure changes. */
  onHeld: (bytes: number) => void;
  /** Called with the stream lines and bytes of frames a lost connection may not have delivered, given up unsent. */
  onUnreplayable: (lines: number, bytes: number) => void;
  log: Logger;
}

const TLS13_SETTLE_MS = 250;
/**
 * A connection the peer closes sooner than this after it opened counts as a failed one: the next one waits,
 * MIN_RECONNECT_DELAY_MS doubling up to MAX_RECONNECT_DELAY_MS, so a peer that accepts and closes at once is not
 * hammered. (A connection that cannot be made fails the send, and the sink's own backoff applies.)
 */
const STABLE_CONNECTION_MS = 5000;
const MIN_RECONNECT_DELAY_MS = 100;
const MAX_RECONNECT_DELAY_MS = 30_000;

/**
 * One TCP or TLS connection at a time, opened on demand by `write`. Plain syslog has no acknowledgements: a write
 * the kernel took may still be lost when the peer dies. So the newest frames the kernel took are kept (in the ring
 * they are encoded into, bounded by bytes and age) and, after an unexpected loss, are written again ahead of
 * anything else on the next connection: at least once for those, with duplicates.
 *
 * A failed write keeps its frames where they were encoded, and they are what the next write sends: a refused
 * reconnect takes no room from the replay window, however many there are.
 */
export class StreamTransport {
  private socket: Socket | undefined;
  private ready: Promise<Socket> | undefined;
  private connections = 0;
  private closed = false;
  /** The frames encoded lately: the one being written and the replay window before it. */
  private readonly ring: FrameRing;
  /** A connection was lost: the replay window goes out first on the next one. */
  private resendPending = false;
  /** The frames of a write that failed: the next write sends them again. */
  private unsent: Buffer | undefined;
  /** Rejects the write in flight when the connection goes away. */
  private failWrite: ((err: Error) => void) | undefined;
  private readonly lossLog: RateLimitedLog;
  /** Connections in a row that the peer closed before they were stable, and when the next may start. */
  private shortLived = 0;
  private notBefore = 0;
  /** Ends a wait for the next connection (close() during it). */
  private cancelWait: (() => void) | undefined;

  constructor(private readonly options: StreamTransportOptions) {
    this.lossLog = new RateLimitedLog(options.log);
    this.ring = new FrameRing(options.replay.maxBytes, options.replay.maxAgeMs);
  }

  /** Space to encode the next frames into (plus scratch): valid until the next call; `write` them before asking again. */
  frameSpace(size: number, scratch: number): Buffer {
    const space = this.ring.reserve(size, scratch);
    this.options.onHeld(this.ring.windowBytes);
    return space;
  }

  /**
   * Writes a batch's frames, which `encode` puts into `frameSpace`, after the replay window if a connection was lost.
   * Resolves when the kernel has taken them. When it rejects, the frames are kept, and the next call (the sink's
   * retry of the same batch, carrying `lines` and `bytes` of the stream) writes them without encoding anything.
   */
  async write(encode: () => Buffer, lines: number, bytes: number): Promise<void> {
    const frames = (this.unsent ??= encode());
    await this.writeAfterReplay(frames);
    this.unsent = undefined;
    this.ring.written(Date.now(), lines, bytes);
  }

  /** Resends the replay window, if a connection was lost since the last write; rejects as `write` does. */
  async resend(): Promise<void> {
    if (this.resendPending) await this.writeAfterReplay(undefined);
  }

  private async writeAfterReplay(frames: Buffer | undefined): Promise<void> {
    const socket = await this.connect();
    const replaying = this.resendPending;
    const buffers = replaying ? this.ring.replayable() : [];
    if (frames !== undefined) buffers.push(frames);
    await new Promise<void>((resolve, reject) => {
      this.failWrite = reject;
      const last = buffers.length - 1;
      for (let i = 0; i < last; i++) socket.write(buffers[i]);
      // Node completes a write cut short by destroy() without an error: the bytes were not all taken.
      socket.write(buffers[last], (err) => {
        if (err || socket.destroyed) reject(err ?? new Error(`connection to ${this.options.peer} closed`));
        else resolve();
      });
    }).finally(() => (this.failWrite = undefined));
    if (!replaying) return;
    // The replayed frames may die with this connection as they might have with the last: they are kept as new.
    this.ring.rewritten(Date.now());
    this.resendPending = false;
  }

  /**
   * Destroys the connection: a write in flight rejects, and so does every later one. A replay still pending is
   * given up: its lines are reported unreplayable (they were counted sent).
   */
  close(): void {
    this.closed = true;
    this.cancelWait?.();
    this.socket?.destroy();
    if (!this.resendPending) return;
    this.resendPending = false;
    const { lines, bytes } = this.ring.forget();
    if (lines === 0 && bytes === 0) return;
    this.options.onUnreplayable(lines, bytes);
    this.options.log.error(
      { peer: this.options.peer, lines, bytes },
      'syslog sink stopped before it could resend what a lost connection may not have delivered; counted as dropped (replay_overflow)',
    );
  }

  private connect(): Promise<Socket> {
    if (this.closed) return Promise.reject(new Error('the syslog sink is closed'));
    if (this.ready !== undefined) return this.ready;
    const wait = this.notBefore - Date.now();
    if (wait > 0) {
      this.ready = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, wait);
        this.cancelWait = () => {
          clearTimeout(timer);
          reject(new Error('the syslog sink is closed'));
        };
      })
        .finally(() => {
          this.cancelWait = undefined;
          this.ready = undefined;
        })
        .then(() => this.connect());
      return this.ready;
    }
    const { open, connectTimeoutMs, peer, tls } = this.options;
    // Outside the promise: if open() throws (a TLS key file unreadable just now), nothing is kept as `ready`, so
    // the next write tries again instead of failing for good.
    const socket = open();
    this.socket = socket;
    this.ready = new Promise<Socket>((resolve, reject) => {
      let lastError: Error | undefined;
      let connected = false;
      let connectedAt = 0;
      const timer = setTimeout(
        () => socket.destroy(new Error(`connecting to ${peer} timed out after ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
      const started = Date.now();
      const ready = (): void => {
        if (socket.destroyed) return;
        connected = true;
        connectedAt = Date.now();
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
        if (tls && (socket as TLSSocket).getProtocol() === 'TLSv1.3') {
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
        this.shortLived = Date.now() - connectedAt < STABLE_CONNECTION_MS ? this.shortLived + 1 : 0;
        const backoff = MIN_RECONNECT_DELAY_MS * 2 ** (this.shortLived - 1);
        const delay = this.shortLived === 0 ? 0 : Math.min(backoff, MAX_RECONNECT_DELAY_MS);
        this.notBefore = Date.now() + delay;
        this.failWrite?.(err);
        if (!this.closed) this.keepForReplay(err, delay);
      });
    });
    return this.ready;
  }

  private keepForReplay(err: Error, reconnectInMs: number): void {
    this.ring.expire(Date.now());
    const replay = this.ring.replayable();
    this.resendPending = replay.length > 0;
    const replayBytes = replay.reduce((sum, frames) => sum + frames.length, 0);
    this.lossLog.error(
      { peer: this.options.peer, err: err.message, replayBytes, reconnectInMs },
      'syslog connection lost; will reconnect and resend the newest frames',
    );
  }
}
