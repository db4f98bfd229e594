import type { Logger } from '../diagnostics.js';
import { RateLimitedLog } from '../diagnostics.js';
import type { LogRecord } from '../lines/record.js';
import { RecordQueue } from './record-queue.js';

export type WhenFull = 'drop_oldest' | 'drop_newest';

export interface BufferConfig {
  /** Memory this sink may hold: line bytes plus RECORD_OVERHEAD_BYTES per line; beyond it `when_full` applies. */
  maxBytes: number;
  whenFull: WhenFull;
}

export type DropReason = 'buffer_full' | 'too_large';

export interface SinkStats {
  linesIn: number;
  bytesIn: number;
  linesSent: number;
  bytesSent: number;
  linesDropped: number;
  bytesDropped: number;
  droppedBy: Partial<Record<DropReason, number>>;
  reconnects: number;
  failedSends: number;
}

export interface SinkHealth {
  state: 'starting' | 'up' | 'down';
  lastError?: string;
  /** ms since the epoch of the last successful send. */
  lastSent?: number;
}

/**
 * What holding a line costs beyond its bytes (record object, Buffer view, queue slot: ~180 bytes on Node 20).
 * Counted against max_bytes, so a flood of empty or short lines is bounded too, not only long ones.
 */
export const RECORD_OVERHEAD_BYTES = 200;

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 30_000;

/**
 * A forwarder for one stream. The base class owns what every sink shares: a bounded buffer filled without ever
 * blocking the caller, the `when_full` policy, one delivery loop that retries a failed batch with exponential
 * backoff (at least once, in order), counters and health. A subclass supplies `send` (resolve when the peer or
 * kernel took the batch, reject to retry it) and `close`.
 */
export abstract class Sink {
  readonly stats: SinkStats = {
    linesIn: 0,
    bytesIn: 0,
    linesSent: 0,
    bytesSent: 0,
    linesDropped: 0,
    bytesDropped: 0,
    droppedBy: {},
    reconnects: 0,
    failedSends: 0,
  };
  protected readonly health: SinkHealth = { state: 'starting' };
  protected readonly errors: RateLimitedLog;
  protected maxBatchLines = 1024;
  protected maxBatchBytes = 1 << 20;
  private readonly queue = new RecordQueue();
  private inFlight: LogRecord[] = [];
  private inFlightBytes = 0;
  private wake: (() => void) | undefined;
  private stopping = false;
  private aborted = false;
  private loop: Promise<void> | undefined;

  constructor(
    readonly name: string,
    private readonly buffer: BufferConfig,
    protected readonly log: Logger,
  ) {
    this.errors = new RateLimitedLog(log);
  }

  /** Deliver a batch; reject to have it retried (after backoff) with the records still in order. */
  protected abstract send(batch: LogRecord[]): Promise<void>;
  /** Release the transport. Must make a pending `send` settle. */
  protected abstract close(): Promise<void>;

  /** Takes a record without blocking. When the buffer is full, `when_full` decides which record is dropped. */
  accept(record: LogRecord): void {
    const size = record.size;
    const cost = size + RECORD_OVERHEAD_BYTES;
    this.stats.linesIn++;
    this.stats.bytesIn += size;
    if (cost > this.buffer.maxBytes) return this.drop(record, 'too_large');
    while (this.heldCost() + cost > this.buffer.maxBytes) {
      const victim = this.buffer.whenFull === 'drop_oldest' ? this.queue.shift() : undefined;
      if (victim === undefined) return this.drop(record, 'buffer_full');
      this.drop(victim, 'buffer_full');
    }
    this.queue.push(record);
    this.wake?.();
  }

  start(): void {
    this.loop ??= this.deliverLoop();
  }

  /** Delivers what is buffered until `deadline` (ms since the epoch), then closes. Undelivered lines stay counted as buffered. */
  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    this.wake?.();
    const timer = setTimeout(() => this.abort(), Math.max(0, deadline - Date.now()));
    await (this.loop ?? Promise.resolve());
    clearTimeout(timer);
    await this.close().catch(() => undefined);
  }

  /** Records accepted but neither sent nor dropped: in = sent + dropped + buffered. */
  buffered(): { lines: number; bytes: number } {
    return { lines: this.queue.length + this.inFlight.length, bytes: this.queue.bytes + this.inFlightBytes };
  }

  status(): SinkHealth {
    return { ...this.health };
  }

  protected countReconnect(): void {
    this.stats.reconnects++;
  }

  private abort(): void {
    this.aborted = true;
    this.wake?.();
    void this.close().catch(() => undefined);
  }

  /** What the buffered records cost against max_bytes. */
  private heldCost(): number {
    const lines = this.queue.length + this.inFlight.length;
    return this.queue.bytes + this.inFlightBytes + lines * RECORD_OVERHEAD_BYTES;
  }

  private drop(record: LogRecord, reason: DropReason): void {
    this.stats.linesDropped++;
    this.stats.bytesDropped += record.size;
    this.stats.droppedBy[reason] = (this.stats.droppedBy[reason] ?? 0) + 1;
  }

  private async deliverLoop(): Promise<void> {
    let backoff = MIN_BACKOFF_MS;
    while (!this.aborted) {
      if (this.queue.length === 0) {
        if (this.stopping) return;
        // Clears itself: accept() wakes for every record, and calling a settled promise's resolve costs ~120 ns.
        await new Promise<void>((resolve) => (this.wake = () => ((this.wake = undefined), resolve())));
        this.wake = undefined;
        continue;
      }
      this.inFlight = this.queue.take(this.maxBatchLines, this.maxBatchBytes);
      this.inFlightBytes = this.inFlight.reduce((sum, r) => sum + r.size, 0);
      try {
        await this.send(this.inFlight);
        this.stats.linesSent += this.inFlight.length;
        this.stats.bytesSent += this.inFlightBytes;
        this.health.state = 'up';
        this.health.lastSent = Date.now();
        backoff = MIN_BACKOFF_MS;
      } catch (err) {
        this.queue.unshiftAll(this.inFlight);
        this.stats.failedSends++;
        this.health.state = 'down';
        this.health.lastError = (err as Error).message;
        this.errors.error({ sink: this.name, err: this.health.lastError, retryInMs: backoff }, 'sink send failed; will retry');
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      } finally {
        this.inFlight = [];
        this.inFlightBytes = 0;
      }
    }
  }

  /** Waits, but wakes early when the sink is aborted. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      // Aborted while a send was pending: nothing will wake this sleep, so do not start it.
      if (this.aborted) return resolve();
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        if (!this.aborted) return;
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
