import type { Logger } from '../diagnostics.js';
import { RateLimitedLog } from '../diagnostics.js';
import type { LineBatch } from '../lines/line-batch.js';
import {
  LineBuffer,
  type BufferConfig,
  type DropReason,
  type LineCounters,
  type LineOptions,
} from '../lines/line-buffer.js';
import type { StreamMetadata } from '../mesos/metadata.js';
import { Backoff } from './backoff.js';
import { RejectedBatch, RetryLater, type RejectedLines } from './send-outcome.js';

/** What a sink instance is built with, for one stream. */
export interface SinkContext {
  /** The sink's name: its key under `sinks:`. */
  name: string;
  buffer: BufferConfig;
  /** How the stream is cut into lines (the config's `lines:`); a reload applies new values via reconfigureLines. */
  lines: LineOptions;
  log: Logger;
  /** Metadata known at start; each record carries the metadata current when its bytes arrived. */
  meta: StreamMetadata;
}

export interface SinkStats extends LineCounters {
  /** Derived: sent + dropped + buffered, the held lines counted at the time of asking. */
  linesIn: number;
  /** Taken in, neither sent nor dropped (held or in flight). */
  bufferedLines: number;
  bufferedBytes: number;
  /** Lines and bytes dropped, by reason; only reasons that dropped something. */
  droppedBy: Partial<Record<DropReason, { lines: number; bytes: number }>>;
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
 * What a running sink costs besides its buffers: V8 compiles and optimizes its code, and its transport keeps state.
 * Measured 0.2-0.6 MiB of peak RSS over max_bytes at 1-16 MiB (a stalled syslog sink against a sandbox-only helper).
 * So that max_bytes bounds all a sink adds to the helper, this much of it is set aside, and the buffer holds the
 * rest; never less than 3 MiB, or all of a smaller max_bytes, whose sink's fixed cost then comes on top.
 */
const SINK_WORKING_BYTES = 1 << 20;
const MIN_BUFFER_BYTES = 3 << 20;

/** What the buffer may hold of a sink's max_bytes. */
export const bufferBytesOf = (maxBytes: number): number =>
  Math.max(maxBytes - SINK_WORKING_BYTES, Math.min(maxBytes, MIN_BUFFER_BYTES));

/**
 * A forwarder for one stream. The base class owns what every sink shares: a bounded buffer (LineBuffer) filled
 * without ever blocking the caller, one delivery loop that retries a failed batch with exponential backoff (at least
 * once, in order), counters and health. A subclass supplies `send` (resolve when the peer or kernel took the batch,
 * reject to retry it, reject with RejectedBatch to drop it, with RetryLater to wait as the peer asks) and `close`,
 * and may supply `drain`.
 */
export abstract class Sink {
  readonly name: string;
  protected readonly log: Logger;
  protected readonly health: SinkHealth = { state: 'starting' };
  protected readonly errors: RateLimitedLog;
  protected maxBatchLines = 1024;
  protected maxBatchBytes = 1 << 20;
  /**
   * A batch smaller than maxBatchLines and maxBatchBytes waits up to this long for more lines (0: sent at once).
   * Request-per-batch sinks set it so that a trickle of lines does not become a trickle of requests.
   */
  protected batchDelayMs = 0;
  /** When the lines now waiting for a batch's delay began waiting. */
  private batchWaitSince: number | undefined;
  /**
   * The sink keeps nothing of a batch once its send settled (it copies or encodes the lines). Then every batch
   * reuses the same memory, one buffer for its bytes and the buffer's scratch arrays, instead of new allocations
   * that only a GC frees: at full speed those dead batches were ~2 MB of the helper's peak RSS.
   */
  protected reuseBatches = false;
  /**
   * A sent batch's lines count as sent only once the sink confirms them (`confirmSent`, e.g. when the peer
   * acknowledged them), not when `send` resolved; until then they count as buffered.
   */
  protected confirmsDelivery = false;
  private batchBytes: Buffer | undefined;
  /** With reuseBatches, a batch takes at most an eighth of max_bytes: the reused buffer counts against it for good. */
  private readonly reusedBatchBytesCap: number;
  private readonly lineBuffer: LineBuffer;
  private reconnects = 0;
  private failedSends = 0;
  private wake: (() => void) | undefined;
  private stopping = false;
  private aborted = false;
  private loop: Promise<void> | undefined;

  constructor(context: SinkContext) {
    this.name = context.name;
    // Every message of a sink names it, once: sinks log through this child, not context.log.
    this.log = context.log.child({ sink: context.name });
    const buffer = { ...context.buffer, maxBytes: bufferBytesOf(context.buffer.maxBytes) };
    this.lineBuffer = new LineBuffer(buffer, context.lines, (bytes) => this.makeRoom(bytes));
    this.reusedBatchBytesCap = Math.max(1, Math.floor(context.buffer.maxBytes / 8));
    this.errors = new RateLimitedLog(this.log);
  }

  /**
   * Deliver a batch; reject to have it retried (after backoff): the same batch, so lines stay in order. Resolve with
   * RejectedLines when the peer refused part of it for good.
   */
  protected abstract send(batch: LineBatch): Promise<void | RejectedLines>;
  /** Release the transport. Must make a pending `send` settle. */
  protected abstract close(): Promise<void>;

  /**
   * At stop, once every batch is sent: what the transport still owes for lines already sent (a replay after a lost
   * connection, or the peer's acknowledgement). Reject to have it retried after backoff, as a failed send, until the
   * stop deadline.
   */
  protected drain(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Takes a chunk of the stream (copied; the caller may reuse it) without blocking. When the buffer is full,
   * `when_full` decides which lines are dropped.
   */
  append(chunk: Buffer, time: number, meta: StreamMetadata): void {
    this.lineBuffer.append(chunk, time, meta);
    this.wake?.();
  }

  /**
   * The sink (re)joins a running stream: the stream went on without it, or it was just added. An unterminated line
   * it holds never ends here and is dropped. `openLine` is the stream's current line so far (it is taken first,
   * so that line arrives whole); undefined when unknown, and then the rest of the current line is skipped.
   */
  rejoin(openLine: Buffer | undefined, time: number, meta: StreamMetadata): void {
    this.lineBuffer.dropUnterminated('detached');
    if (openLine === undefined) this.lineBuffer.skipToNextLine();
    else if (openLine.length > 0) this.append(openLine, time, meta);
  }

  /** The stream goes on without this sink (a reload removed or replaced it): an unterminated line it holds is dropped. */
  detach(): void {
    this.lineBuffer.dropUnterminated('detached');
  }

  reconfigureLines(options: LineOptions): void {
    this.lineBuffer.reconfigure(options);
  }

  start(): void {
    this.loop ??= this.deliverLoop();
  }

  /**
   * The stream ended for this sink: delivers what is buffered (an unterminated last line too) until `deadline`
   * (ms since the epoch), then closes. Undelivered lines stay counted as buffered.
   */
  async stop(deadline: number): Promise<void> {
    this.lineBuffer.end();
    this.stopping = true;
    this.wake?.();
    const timer = setTimeout(() => this.abort(), Math.max(0, deadline - Date.now()));
    await (this.loop ?? Promise.resolve());
    clearTimeout(timer);
    await this.close().catch(() => undefined);
  }

  /** The counters; buffered lines are counted by scanning what is held, once per call. */
  get stats(): SinkStats {
    const counters = this.lineBuffer.counters;
    const buffered = this.lineBuffer.buffered();
    return {
      linesIn: counters.linesSent + counters.linesDropped + buffered.lines,
      ...counters,
      bufferedLines: buffered.lines,
      bufferedBytes: buffered.bytes,
      droppedBy: Object.fromEntries(
        Object.entries(this.lineBuffer.droppedBy)
          .filter(([, dropped]) => dropped.bytes > 0)
          .map(([reason, dropped]) => [reason, { ...dropped }]),
      ),
      reconnects: this.reconnects,
      failedSends: this.failedSends,
    };
  }

  /** Lines dropped so far (cheap, unlike `stats`). */
  droppedLines(): number {
    return this.lineBuffer.counters.linesDropped;
  }

  /** Lines and bytes taken in but neither sent nor dropped: in = sent + dropped + buffered. */
  buffered(): { lines: number; bytes: number } {
    return this.lineBuffer.buffered();
  }

  status(): SinkHealth {
    return { ...this.health };
  }

  /**
   * What the sink holds besides its buffer for lines already delivered (a replay window): it counts against
   * max_bytes, so the buffer holds that much less.
   */
  protected holdElsewhere(bytes: number): void {
    this.lineBuffer.holdElsewhere(bytes);
  }

  /**
   * New lines need `bytes` more room than the buffer has: a sink gives up what it holds elsewhere (lines already
   * delivered once) before `when_full` drops lines not delivered yet.
   */
  protected makeRoom(_bytes: number): void {}

  /**
   * Lines counted sent that the sink can no longer vouch for (a lost connection may not have delivered them) nor
   * send again: they count as dropped for `reason` instead.
   */
  protected unsend(reason: DropReason, lines: number, bytes: number): void {
    this.lineBuffer.unsend(reason, lines, bytes);
  }

  /** Lines of sent batches the peer acknowledged (with `confirmsDelivery`): they count as sent. */
  protected confirmSent(lines: number, bytes: number): void {
    this.lineBuffer.confirm(lines, bytes);
  }

  /** Lines of sent batches that will never be confirmed (with `confirmsDelivery`): they count as dropped for `reason`. */
  protected dropUnconfirmed(reason: DropReason, lines: number, bytes: number): void {
    this.lineBuffer.dropUnconfirmed(reason, lines, bytes);
  }

  /** Lines of a settled batch the peer refused for good: no longer counted as sent (or to be confirmed) but dropped. */
  private dropRejectedPart(rejected: RejectedLines): void {
    if (this.confirmsDelivery) this.lineBuffer.dropUnconfirmed('rejected', rejected.lines, rejected.bytes);
    else this.lineBuffer.unsend('rejected', rejected.lines, rejected.bytes);
  }

  protected countReconnect(): void {
    this.reconnects++;
  }

  private abort(): void {
    this.aborted = true;
    this.wake?.();
    void this.close().catch(() => undefined);
  }

  private async deliverLoop(): Promise<void> {
    const backoff = new Backoff();
    let batch: LineBatch | undefined;
    while (!this.aborted) {
      if (batch === undefined && this.batchDelayMs > 0 && !this.stopping) {
        const due = this.batchDue();
        if (due !== undefined) {
          await this.idle(due);
          continue;
        }
      }
      batch ??= this.lineBuffer.take(this.maxBatchLines, this.batchBytesLimit(), Date.now(), this.reusableBatchBytes());
      if (batch !== undefined) this.batchWaitSince = undefined;
      if (batch === undefined && !this.stopping) {
        await this.idle(this.lineBuffer.flushDueAt());
        continue;
      }
      try {
        if (batch === undefined) return await this.drain();
        const rejected = await this.send(batch);
        this.lineBuffer.settle(batch, this.confirmsDelivery);
        if (rejected !== undefined) this.dropRejectedPart(rejected);
        batch = undefined;
        this.health.state = 'up';
        this.health.lastSent = Date.now();
        backoff.reset();
      } catch (err) {
        if (this.aborted) {
          // abort() closed the transport at the stop deadline: the peer did not fail it, and nothing is retried.
          this.health.state = 'down';
          this.health.lastError = 'a send was still pending at the stop deadline';
          break;
        }
        if (err instanceof RejectedBatch && batch !== undefined) {
          // The peer answered: it is up, and this batch will never be taken. Retrying it would block the stream.
          this.lineBuffer.settle(batch, true);
          this.lineBuffer.dropUnconfirmed('rejected', batch.lines, batch.bytes);
          this.errors.error({ err: err.message, status: err.status, lines: batch.lines }, 'peer rejected a batch; its lines are dropped (rejected), not retried');
          batch = undefined;
          this.health.state = 'up';
          continue;
        }
        this.failedSends++;
        this.health.state = 'down';
        this.health.lastError = (err as Error).message;
        const wait = Math.round(backoff.next(err instanceof RetryLater ? err.afterMs : undefined));
        this.errors.error({ err: this.health.lastError, retryInMs: wait }, 'sink send failed; will retry');
        await this.sleep(wait);
      }
    }
  }

  /** While a small batch should wait for more lines: until when. */
  private batchDue(): number | undefined {
    const waiting = this.lineBuffer.waiting();
    if (waiting.bytes === 0 || waiting.lines >= this.maxBatchLines || waiting.bytes >= this.batchBytesLimit()) return undefined;
    const now = Date.now();
    this.batchWaitSince ??= now;
    const due = this.batchWaitSince + this.batchDelayMs;
    return due > now ? due : undefined;
  }

  private batchBytesLimit(): number {
    return this.reuseBatches ? Math.min(this.maxBatchBytes, this.reusedBatchBytesCap) : this.maxBatchBytes;
  }

  /** Allocated on first use; pages a batch never reached stay untouched, so they cost no memory. */
  private reusableBatchBytes(): Buffer | undefined {
    if (!this.reuseBatches) return undefined;
    return (this.batchBytes ??= Buffer.allocUnsafeSlow(this.batchBytesLimit()));
  }

  /** Waits for new input, or until an unterminated line is due to be flushed. */
  private idle(flushAt: number | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = flushAt === undefined ? undefined : setTimeout(() => this.wake?.(), Math.max(0, flushAt - Date.now()));
      // Clears itself: append() wakes for every chunk, and calling a settled promise's resolve is not free.
      this.wake = () => {
        this.wake = undefined;
        clearTimeout(timer);
        resolve();
      };
    });
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
