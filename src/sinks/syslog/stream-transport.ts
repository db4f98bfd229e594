import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../../diagnostics.js';
import { RateLimitedLog } from '../../diagnostics.js';
import { FrameRing, type Carried } from './frame-ring.js';
import { socketFd, socketQueueAddon, type SocketQueueAddon } from './socket-queue.js';

export interface ReplayLimits {
  /** Most bytes of recent frames kept for resending; 0 turns replay off. */
  maxBytes: number;
  /** Acknowledged frames older than this are taken as read by the receiver. */
  maxAgeMs: number;
}

/** One connection: `socket` is what frames are written to, `tcp` the TCP socket under it (the same one for TCP). */
export interface Connection {
  socket: Socket;
  tcp: Socket;
}

export interface StreamTransportOptions {
  /** Starts a connection: net.connect, or tls.connect over a net.connect. */
  open: () => Connection;
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
  /** With `confirmsDelivery`: called with the stream lines and bytes of frames the peer acknowledged. */
  onAcknowledged: (lines: number, bytes: number) => void;
  /** With `confirmsDelivery`: called with those of frames written but never acknowledged, given up. */
  onUnacknowledged: (lines: number, bytes: number) => void;
  log: Logger;
}

/**
 * TLS sends plaintext in records of at most this many bytes, each readable only whole: when part of the ciphertext
 * is unacknowledged, so may be the rest of the record it ends in.
 */
const TLS_MAX_RECORD_BYTES = 16_384;
/**
 * While frames are unacknowledged the send queue is polled on every turn of the event loop when a write waits for
 * room in the window and the peer keeps acknowledging (the kernel has at most the window left to send meanwhile),
 * else every MIN_ACK_POLL_MS, backing off to MAX_ACK_POLL_MS while nothing moves (a stalled peer costs no CPU).
 */
const MIN_ACK_POLL_MS = 1;
const MAX_ACK_POLL_MS = 32;
let warnedNoAcknowledgements = false;

/** The window has no room for the next frames until the peer acknowledges some. */
class WindowFull extends Error {}

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
 * One TCP or TLS connection at a time, opened on demand by `write`. Plain syslog has no acknowledgements, but TCP
 * has: a frame counts as sent once the peer's TCP acknowledged it (read from the kernel's send queue through
 * native/socket-queue.c), and until then it stays in the ring it was encoded into. After an unexpected loss the
 * ring (those frames, and acknowledged ones a receiver may still have lost) is written again ahead of anything else
 * on the next connection: at least once, with duplicates. While the ring is full of unacknowledged frames, nothing
 * new is encoded, and lines wait in the sink's buffer.
 *
 * Without the addon, or with replay off, a frame counts as sent once the kernel took it, as `confirmsDelivery` says.
 *
 * A failed write keeps its frames where they were encoded, and they are what the next write sends: a refused
 * reconnect takes no room from the replay window, however many there are.
 */
export class StreamTransport {
  /** Lines count as sent when the peer acknowledged them (onAcknowledged), not when `write` resolves. */
  readonly confirmsDelivery: boolean;
  private socket: Socket | undefined;
  private tcp: Socket | undefined;
  /** Plaintext bytes written to the current connection. */
  private connectionBytes = 0;
  private ready: Promise<Socket> | undefined;
  private connections = 0;
  private closed = false;
  /** The frames encoded lately: the one being written and the replay window before it. */
  private readonly ring: FrameRing;
  private readonly queue: SocketQueueAddon | null;
  /** A connection was lost: the replay window goes out first on the next one. */
  private resendPending = false;
  /** The frames of a write that failed: the next write sends them again. */
  private unsent: Buffer | undefined;
  /** Rejects the write in flight when the connection goes away. */
  private failWrite: ((err: Error) => void) | undefined;
  /** Waiting for the peer to acknowledge more: settled by the next acknowledgement, or a lost connection. */
  private ackWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private ackPoll: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private ackPollAt = 0;
  private ackPollMs = MIN_ACK_POLL_MS;
  private readonly lossLog: RateLimitedLog;
  /** Connections in a row that the peer closed before they were stable, and when the next may start. */
  private shortLived = 0;
  private notBefore = 0;
  /** Ends a wait for the next connection (close() during it). */
  private cancelWait: (() => void) | undefined;

  constructor(private readonly options: StreamTransportOptions) {
    this.lossLog = new RateLimitedLog(options.log);
    this.ring = new FrameRing(options.replay.maxBytes, options.replay.maxAgeMs);
    this.queue = options.replay.maxBytes > 0 ? socketQueueAddon() : null;
    this.confirmsDelivery = this.queue !== null;
    if (options.replay.maxBytes > 0 && this.queue === null && !warnedNoAcknowledgements) {
      warnedNoAcknowledgements = true;
      options.log.warn(
        'native/socket-queue.c is not built (or not on Linux): syslog tcp/tls count a line sent when the kernel took it, not when the receiver acknowledged it',
      );
    }
  }

  /** Space to encode the next frames into (plus scratch): valid until the next call; `write` them before asking again. */
  frameSpace(size: number, scratch: number): Buffer {
    const space = this.ring.reserve(size, scratch);
    if (space === undefined) throw new WindowFull();
    this.options.onHeld(this.ring.windowBytes);
    return space;
  }

  /**
   * Writes a batch's frames, which `encode` puts into `frameSpace` once the window has room, after the replay
   * window if a connection was lost. Resolves when the kernel has taken them. When it rejects, the frames are kept,
   * and the next call (the sink's retry of the same batch, carrying `lines` and `bytes` of the stream) writes them
   * without encoding anything.
   */
  async write(encode: () => Buffer, lines: number, bytes: number): Promise<void> {
    if (this.unsent === undefined) {
      // A replay owed goes out first: its frames are what must be acknowledged to make room.
      await this.resend();
      this.unsent = await this.encodeWhenRoom(encode);
    }
    const until = await this.writeAfterReplay(this.unsent);
    this.unsent = undefined;
    this.ring.written(until, lines, bytes);
    if (this.confirmsDelivery) this.pollAcknowledgements(0);
    else this.ring.acknowledge(until, Date.now());
  }

  /** Resends the replay window, if a connection was lost since the last write; rejects as `write` does. */
  private async resend(): Promise<void> {
    if (this.resendPending) await this.writeAfterReplay(undefined);
  }

  /** At stop: resends what a lost connection owes, then waits until the peer acknowledged every frame. */
  async drain(): Promise<void> {
    await this.resend();
    while (this.ring.unacknowledged) await this.acknowledgement();
  }

  private async encodeWhenRoom(encode: () => Buffer): Promise<Buffer> {
    for (;;) {
      try {
        return encode();
      } catch (err) {
        if (!(err instanceof WindowFull)) throw err;
      }
      if (this.countAcknowledged()) continue;
      await this.acknowledgement();
    }
  }

  /** Resolves when the peer acknowledged more frames; rejects when the connection is lost or the sink closed. */
  private acknowledgement(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the syslog sink is closed'));
    return new Promise<void>((resolve, reject) => {
      this.ackWaiters.push({ resolve, reject });
      this.pollAcknowledgements(0);
    });
  }

  /** Writes `frames` (if any) after the replay window if one is owed; resolves with where they end on the connection. */
  private async writeAfterReplay(frames: Buffer | undefined): Promise<number> {
    const socket = await this.connect();
    const replaying = this.resendPending;
    const buffers = replaying ? this.ring.replay(this.connectionBytes) : [];
    if (frames !== undefined) buffers.push(frames);
    for (const buffer of buffers) this.connectionBytes += buffer.length;
    const until = this.connectionBytes;
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
    if (replaying) this.resendPending = false;
    return until;
  }

  /**
   * How much of what was written on this connection the peer has surely acknowledged: all of it but what the
   * kernel's send queue and Node still hold, and, under TLS, the rest of a record partly unacknowledged (ciphertext
   * is never shorter than its plaintext). -1 when the socket cannot tell.
   */
  private acknowledgedBytes(): number {
    const { socket, tcp, queue } = this;
    const fd = tcp === undefined ? undefined : socketFd(tcp);
    if (socket === undefined || tcp === undefined || fd === undefined || queue === null) return -1;
    const queued = queue.unacknowledged(fd);
    if (queued < 0) return -1;
    const inNode = socket.writableLength + (tcp === socket ? 0 : tcp.writableLength);
    const partRecord = this.options.tls && queued > 0 ? TLS_MAX_RECORD_BYTES : 0;
    return this.connectionBytes - inNode - queued - partRecord;
  }

  /** Counts the frames the peer acknowledged since the last count as sent (onAcknowledged); whether there were any. */
  private countAcknowledged(): boolean {
    const upTo = this.acknowledgedBytes();
    if (upTo < 0) return false;
    const acknowledged = this.ring.acknowledge(upTo, Date.now());
    if (acknowledged.lines === 0 && acknowledged.bytes === 0) return false;
    this.options.onAcknowledged(acknowledged.lines, acknowledged.bytes);
    return true;
  }

  /**
   * In `ms` (0: on the next turn of the event loop) or sooner, if already due, counts what the peer acknowledged;
   * again while frames are unacknowledged.
   */
  private pollAcknowledgements(ms: number): void {
    const at = Date.now() + ms;
    if (this.ackPoll !== undefined) {
      if (this.ackPollAt <= at) return;
      this.cancelAckPoll();
    }
    this.ackPollAt = at;
    const poll = (): void => {
      this.ackPoll = undefined;
      const progress = this.countAcknowledged();
      this.ackPollMs = progress ? MIN_ACK_POLL_MS : Math.min(this.ackPollMs * 2, MAX_ACK_POLL_MS);
      if (progress || !this.ring.unacknowledged) this.settleAckWaiters();
      const waiting = this.ackWaiters.length > 0;
      // A peer that stopped reading is not polled on every turn: only while it keeps acknowledging.
      if (this.ring.unacknowledged && this.socket !== undefined) this.pollAcknowledgements(waiting && progress ? 0 : this.ackPollMs);
    };
    this.ackPoll = ms === 0 ? setImmediate(poll) : setTimeout(poll, ms);
  }

  private cancelAckPoll(): void {
    if (this.ackPoll === undefined) return;
    clearTimeout(this.ackPoll as NodeJS.Timeout);
    clearImmediate(this.ackPoll as NodeJS.Immediate);
    this.ackPoll = undefined;
  }

  private settleAckWaiters(err?: Error): void {
    const waiters = this.ackWaiters;
    this.ackWaiters = [];
    for (const waiter of waiters) {
      if (err === undefined) waiter.resolve();
      else waiter.reject(err);
    }
  }

  /**
   * Destroys the connection: a write in flight rejects, and so does every later one. Frames the peer did not
   * acknowledge, and a replay still pending, are given up: their lines count as dropped (replay_overflow).
   */
  close(): void {
    if (this.closed) return;
    this.countAcknowledged();
    this.closed = true;
    this.cancelWait?.();
    this.cancelAckPoll();
    this.settleAckWaiters(new Error('the syslog sink is closed'));
    this.socket?.destroy();
    const { acknowledged, unacknowledged } = this.ring.forget();
    const owed: Carried = this.resendPending ? acknowledged : { lines: 0, bytes: 0 };
    this.resendPending = false;
    if (owed.bytes > 0 || owed.lines > 0) this.options.onUnreplayable(owed.lines, owed.bytes);
    if (unacknowledged.bytes > 0 || unacknowledged.lines > 0) this.options.onUnacknowledged(unacknowledged.lines, unacknowledged.bytes);
    const lines = owed.lines + unacknowledged.lines;
    const bytes = owed.bytes + unacknowledged.bytes;
    if (lines === 0 && bytes === 0) return;
    this.options.log.error(
      { peer: this.options.peer, lines, bytes },
      'syslog sink stopped before the receiver acknowledged, or a lost connection could resend, what it wrote; counted as dropped (replay_overflow)',
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
    const { socket, tcp } = open();
    this.socket = socket;
    this.tcp = tcp;
    this.connectionBytes = 0;
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
        this.tcp = undefined;
        this.ready = undefined;
        if (!connected) return reject(err);
        // What it had not seen acknowledged goes out again on the next connection.
        this.ring.connectionLost();
        this.settleAckWaiters(err);
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
