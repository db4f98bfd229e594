import { SpoolStage, type SpoolConfig, type SpoolStageStats } from '../buffers/spool-stage.js';
import type { Logger } from '../diagnostics.js';
import { RateLimitedLog } from '../diagnostics.js';
import { BatchBuilder } from '../lines/batch-builder.js';
import type { LineBatch } from '../lines/line-batch.js';
import type { BufferConfig, DropReason, LineBuffer, LineOptions, SharedBudget, Taken } from '../lines/line-buffer.js';
import { LineTally } from '../lines/line-tally.js';
import type { StreamMetadata } from '../mesos/metadata.js';
import { Backoff } from './backoff.js';
import type { BatchOptions } from './batch-options.js';
import { RejectedBatch, RetryLater, type RejectedLines } from './send-outcome.js';
import { StreamQueue, type LineStats } from './stream-queue.js';

/** What a sink instance is built with. */
export interface SinkContext {
  /** The sink's name: its key under `sinks:`. */
  name: string;
  /** The sink's whole budget: the queues of all the streams it serves share it. */
  buffer: BufferConfig;
  log: Logger;
  /**
   * A per-stream sink's (SinkType.perStream) stream, as known at start; each line carries the metadata current when
   * its bytes arrived. A shared sink serves many streams and has none.
   */
  meta?: StreamMetadata;
  /** A disk buffer (`buffer.type: disk`, daemon mode): lines go through a spool in this directory (docs/spool.md). */
  spool?: SpoolConfig;
}

export interface SinkStats extends LineStats {
  reconnects: number;
  failedSends: number;
  /**
   * With a disk buffer: for its streams, lines in the spool count as buffered; the sink's sent and dropped count
   * what left the spool, and what the spool holds and dropped itself is here.
   */
  spool?: SpoolStageStats;
}

export interface SinkHealth {
  state: 'starting' | 'up' | 'down';
  lastError?: string;
  /** ms since the epoch of the last successful send. */
  lastSent?: number;
}

/** Lines of one queue awaiting confirmation, or sent and still in reach of a replay window. */
interface Part {
  queue: StreamQueue;
  lines: number;
  bytes: number;
}

/** Lines of one queue in the batch being sent. */
interface BatchPart {
  queue: StreamQueue;
  taken: Taken;
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
 * One configured output: its encoder and transport (in the subclass), one delivery loop that retries a failed batch
 * with exponential backoff (at least once, in order), counters and health. A daemon worker runs one per configured
 * sink for all its streams (a per-stream type runs one per stream); each stream feeds it through its own StreamQueue
 * (`attach`), and the loop builds each batch from the queues in turn, so a flooding stream cannot hold back a quiet
 * one, and each stream's lines stay in order. The queues share one budget (`buffer.max_bytes`); when it is full, the
 * stream holding the most gives up lines first.
 *
 * A subclass supplies `send` (resolve when the peer or kernel took the batch, reject to retry it, reject with
 * RejectedBatch to drop it, with RetryLater to wait as the peer asks) and `close`, and may supply `drain`. A batch may
 * hold lines of several streams: `batch.metas[i]` says whose line i is.
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
   * reuses the same memory, one buffer for its bytes and the builder's scratch arrays, instead of new allocations
   * that only a GC frees: at full speed those dead batches were ~2 MB of the helper's peak RSS.
   */
  protected reuseBatches = false;
  /**
   * A sent batch's lines count as sent only once the sink confirms them (`confirmSent`, e.g. when the peer
   * acknowledged them), not when `send` resolved; until then they count as buffered.
   */
  protected confirmsDelivery = false;
  private readonly limits: BufferConfig;
  private readonly budget: SharedBudget;
  private readonly tally = new LineTally();
  private queues: StreamQueue[] = [];
  /** Where the next batch starts taking lines: just past the queue the last one started with. */
  private cursor = 0;
  private builder: BatchBuilder | undefined;
  /** With reuseBatches, a batch takes at most an eighth of max_bytes: the reused buffer counts against it for good. */
  private readonly reusedBatchBytesCap: number;
  /** The most of the reused batch buffer one batch used: held for good. */
  private reusedBytes = 0;
  /** What the sink holds for lines already sent (a replay window), counted against the budget too. */
  private heldElsewhere = 0;
  /** The parts of the batch being sent, in batch order. */
  private parts: BatchPart[] = [];
  /** Settled lines awaiting confirmation (confirmsDelivery), oldest first: confirmations come in send order. */
  private readonly unconfirmed: Part[] = [];
  /** Sent lines, newest last, as far back as a replay window may take them back (`unsend`). */
  private readonly sentHistory: Part[] = [];
  private sentHistoryBytes = 0;
  private reconnects = 0;
  private failedSends = 0;
  private wake: (() => void) | undefined;
  private stopping = false;
  private aborted = false;
  private loop: Promise<void> | undefined;
  /** The disk buffer between the queues and delivery; undefined for a memory buffer, or one that could not open. */
  private spool: SpoolStage | undefined;

  constructor(context: SinkContext) {
    this.name = context.name;
    // Every message of a sink names it, once: sinks log through this child, not context.log.
    this.log = context.log.child({ sink: context.name });
    this.limits = { ...context.buffer, maxBytes: bufferBytesOf(context.buffer.maxBytes) };
    this.reusedBatchBytesCap = Math.max(1, Math.floor(context.buffer.maxBytes / 8));
    this.errors = new RateLimitedLog(this.log);
    this.budget = {
      heldOutside: (buffer) => this.heldOutside(buffer),
      makeRoom: (buffer, bytes) => this.makeRoomFor(buffer, bytes),
    };
    if (context.spool !== undefined) {
      this.spool = new SpoolStage(context.spool, this.log, {
        take: (now) => this.takeBatch(now),
        spooled: () => this.settleSpooled(),
        flushDueAt: () => this.flushDueAt(),
        stopping: () => this.stopping,
        aborted: () => this.aborted,
        wakeDelivery: () => this.wake?.(),
      });
    }
  }

  /** Batches as the sink's `batch:` options say (a network sink's lines, bytes and delay). */
  protected batchBy(batch: BatchOptions): void {
    this.maxBatchLines = batch.max_lines;
    this.maxBatchBytes = batch.max_bytes;
    this.batchDelayMs = batch.max_delay_ms;
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

  /** A queue for one more stream, with the stream's `lines` options. */
  attach(lines: LineOptions): StreamQueue {
    const queue = new StreamQueue(
      { wake: () => (this.spool === undefined ? this.wake?.() : this.spool.wake()), release: (done) => this.forget(done) },
      this.limits,
      lines,
      this.budget,
      this.tally,
    );
    this.queues.push(queue);
    return queue;
  }

  start(): void {
    this.loop ??= this.spool === undefined ? this.deliverLoop() : this.deliverSpooled();
  }

  /**
   * The sink goes: its queues end, and it delivers what they hold (an unterminated last line too) until `deadline`
   * (ms since the epoch), then closes. Undelivered lines stay counted as buffered.
   */
  async stop(deadline: number): Promise<void> {
    for (const queue of this.queues) queue.end();
    this.stopping = true;
    this.wake?.();
    const timer = setTimeout(() => this.abort(), Math.max(0, deadline - Date.now()));
    await (this.loop ?? Promise.resolve());
    clearTimeout(timer);
    await this.spool?.close();
    await this.close().catch(() => undefined);
  }

  /**
   * The counters over every stream the sink served; buffered lines are those its queues hold (ended streams' too,
   * until delivered), counted by scanning them, and with a disk buffer everything the spool holds (lines recovered
   * from a previous run included).
   */
  get stats(): SinkStats {
    const counters = this.tally.counters;
    let bufferedLines = 0;
    let bufferedBytes = 0;
    for (const queue of this.queues) {
      const buffered = queue.buffered();
      // Spooled lines are counted once, below, with everything the spool holds (ended streams' and recovered ones).
      const spooled = queue.lines.spooled();
      bufferedLines += buffered.lines - spooled.lines;
      bufferedBytes += buffered.bytes - spooled.bytes;
    }
    const spool = this.spool?.stats;
    if (spool !== undefined) {
      bufferedLines += spool.heldLines;
      bufferedBytes += spool.heldBytes;
    }
    return {
      linesIn: counters.linesSent + counters.linesDropped + bufferedLines,
      ...counters,
      bufferedLines,
      bufferedBytes,
      droppedBy: this.tally.droppedByReason(),
      ...this.transportStats(),
      ...(spool === undefined ? {} : { spool }),
    };
  }

  /** How the transport fared: connections made after the first, and failed sends. */
  transportStats(): { reconnects: number; failedSends: number } {
    return { reconnects: this.reconnects, failedSends: this.failedSends };
  }

  /** Streams whose queues the sink drains now. */
  get streams(): number {
    return this.queues.length;
  }

  /** What the sink holds against its budget: its queues, batches in their own memory, its reused batch memory and replay window. */
  heldBytes(): number {
    return this.heldOutside(undefined);
  }

  /** The budget its queues share (max_bytes less the sink's working set). */
  get budgetBytes(): number {
    return this.limits.maxBytes;
  }

  status(): SinkHealth {
    return { ...this.health };
  }

  /**
   * What the sink holds besides its queues for lines already delivered (a replay window): it counts against the
   * budget, so the queues hold that much less.
   */
  protected holdElsewhere(bytes: number): void {
    this.heldElsewhere = bytes;
    this.trimSentHistory();
  }

  /**
   * New lines need `bytes` more room than the budget has: a sink gives up what it holds elsewhere (lines already
   * delivered once) before lines not delivered yet are dropped.
   */
  protected makeRoom(_bytes: number): void {}

  /**
   * Lines counted sent that the sink can no longer vouch for (a lost connection may not have delivered them) nor
   * send again: they count as dropped for `reason` instead. They are the newest lines sent.
   */
  protected unsend(reason: DropReason, lines: number, bytes: number): void {
    if (this.spool !== undefined) {
      this.spool.drop(reason, lines, bytes, false);
      return this.spoolSettled({ lines: -lines, bytes: -bytes }, { reason, lines, bytes });
    }
    const history = this.sentHistory;
    while ((lines > 0 || bytes > 0) && history.length > 0) {
      const part = history[history.length - 1];
      const l = Math.min(lines, part.lines);
      const b = Math.min(bytes, part.bytes);
      part.queue.lines.unsend(reason, l, b);
      part.lines -= l;
      part.bytes -= b;
      this.sentHistoryBytes -= b;
      lines -= l;
      bytes -= b;
      if (part.lines === 0 && part.bytes === 0) history.pop();
    }
  }

  /** Lines of sent batches the peer acknowledged (with `confirmsDelivery`), the oldest first: they count as sent. */
  protected confirmSent(lines: number, bytes: number): void {
    if (this.spool !== undefined) {
      this.spool.confirm(lines, bytes);
      return this.spoolSettled({ lines, bytes });
    }
    this.takeUnconfirmed(lines, bytes, (queue, l, b) => {
      queue.lines.confirm(l, b);
      this.remember(queue, l, b);
    });
  }

  /** Lines of sent batches that will never be confirmed (with `confirmsDelivery`): they count as dropped for `reason`. */
  protected dropUnconfirmed(reason: DropReason, lines: number, bytes: number): void {
    if (this.spool !== undefined) {
      this.spool.drop(reason, lines, bytes, true);
      return this.spoolSettled({ lines: 0, bytes: 0 }, { reason, lines, bytes });
    }
    this.takeUnconfirmed(lines, bytes, (queue, l, b) => queue.lines.dropUnconfirmed(reason, l, b));
  }

  protected countReconnect(): void {
    this.reconnects++;
  }

  private forget(queue: StreamQueue): void {
    this.queues = this.queues.filter((q) => q !== queue);
  }

  /** Everything held against the budget but `buffer`'s own: the other queues and the sink's own memory. */
  private heldOutside(buffer: LineBuffer | undefined): number {
    let held = this.heldElsewhere + this.reusedBytes;
    for (const queue of this.queues) if (queue.lines !== buffer) held += queue.lines.ownCost();
    return held;
  }

  /** The replay window goes first; then the streams that hold more than the one that needs room shed lines, the largest first. */
  private makeRoomFor(buffer: LineBuffer, bytes: number): void {
    const before = this.heldElsewhere;
    this.makeRoom(bytes);
    let needed = bytes - (before - this.heldElsewhere);
    while (needed > 0) {
      let largest: StreamQueue | undefined;
      let most = buffer.held();
      for (const queue of this.queues) {
        const held = queue.lines.held();
        if (queue.lines !== buffer && held > most) {
          largest = queue;
          most = held;
        }
      }
      if (largest === undefined) return;
      largest.lines.shed(Math.min(needed, most - buffer.held()));
      largest.checkDelivered();
      const freed = most - largest.lines.held();
      if (freed <= 0) return;
      needed -= freed;
    }
  }

  private takeUnconfirmed(lines: number, bytes: number, apply: (queue: StreamQueue, lines: number, bytes: number) => void): void {
    const fifo = this.unconfirmed;
    while ((lines > 0 || bytes > 0) && fifo.length > 0) {
      const part = fifo[0];
      const l = Math.min(lines, part.lines);
      const b = Math.min(bytes, part.bytes);
      apply(part.queue, l, b);
      part.queue.checkDelivered();
      part.lines -= l;
      part.bytes -= b;
      lines -= l;
      bytes -= b;
      if (part.lines === 0 && part.bytes === 0) fifo.shift();
    }
  }

  /** Sent lines a replay window may still take back (`unsend`). */
  private remember(queue: StreamQueue, lines: number, bytes: number): void {
    const last = this.sentHistory.at(-1);
    if (last?.queue === queue) {
      last.lines += lines;
      last.bytes += bytes;
    } else this.sentHistory.push({ queue, lines, bytes });
    this.sentHistoryBytes += bytes;
    this.trimSentHistory();
  }

  /**
   * A replay window holds its lines encoded, never in fewer bytes than the stream had (a header per line at least):
   * history covering twice its size is enough.
   */
  private trimSentHistory(): void {
    const history = this.sentHistory;
    while (history.length > 1 && this.sentHistoryBytes - history[0].bytes >= 2 * this.heldElsewhere) {
      this.sentHistoryBytes -= history[0].bytes;
      history.shift();
    }
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
      batch ??= this.spool === undefined ? this.takeBatch(Date.now()) : await this.spool.take(this.maxBatchLines, this.batchBytesLimit());
      if (batch !== undefined) this.batchWaitSince = undefined;
      // With a disk buffer, the sink is done once the pump moved everything into the spool and it gave all back.
      if (batch === undefined && !(this.stopping && (this.spool?.pumped ?? true))) {
        // Lines the pump appended while the spool was read woke no one: look again soon.
        await this.idle(this.spool === undefined ? this.flushDueAt() : this.spool.waiting().bytes > 0 ? Date.now() + 50 : undefined);
        continue;
      }
      try {
        if (batch === undefined) return await this.drain();
        const rejected = await this.send(batch);
        if (this.spool === undefined) this.settleParts(rejected || undefined);
        else {
          this.spool.sent(batch, this.confirmsDelivery);
          const refused = rejected || { lines: 0, bytes: 0 };
          if (rejected) this.spool.drop('rejected', rejected.lines, rejected.bytes, false);
          if (!this.confirmsDelivery) {
            this.spoolSettled({ lines: batch.lines - refused.lines, bytes: batch.bytes - refused.bytes }, { reason: 'rejected', ...refused });
          }
        }
        batch = undefined;
        this.health.state = 'up';
        this.health.lastSent = Date.now();
        backoff.reset();
      } catch (err) {
        if (this.aborted) {
          // abort() closed the transport at the stop deadline: the peer did not fail it, and nothing is retried. A
          // retry of a failing peer keeps that failure as the sink's last error: it says more.
          if (this.health.state !== 'down') this.health.lastError = 'a send was still pending at the stop deadline';
          this.health.state = 'down';
          break;
        }
        if (err instanceof RejectedBatch && batch !== undefined) {
          // The peer answered: it is up, and this batch will never be taken. Retrying it would block the streams.
          if (this.spool === undefined) this.settleParts({ lines: batch.lines, bytes: batch.bytes });
          else {
            this.spool.sent(batch, false);
            this.spool.drop('rejected', batch.lines, batch.bytes, false);
            this.spoolSettled({ lines: 0, bytes: 0 }, { reason: 'rejected', lines: batch.lines, bytes: batch.bytes });
          }
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

  /**
   * One batch from the queues in turn, starting past the one the last batch started with: each queue with lines
   * due gets an equal share of what is left of the batch's bytes, then those that had more share the rest, until
   * the batch is full or every queue is empty. A flooding stream thus takes at most its share of each batch, and a
   * quiet stream's lines go out in the next batch.
   */
  private takeBatch(now: number): LineBatch | undefined {
    const queues = this.queues;
    const n = queues.length;
    if (n === 0) return undefined;
    const builder = (this.builder ??= new BatchBuilder(this.reuseBatches ? Buffer.allocUnsafeSlow(this.batchBytesLimit()) : undefined));
    builder.reset();
    const maxLines = this.maxBatchLines;
    const maxBytes = this.batchBytesLimit();
    this.parts = [];
    let active = Array.from({ length: n }, (_, i) => queues[(this.cursor + i) % n]);
    let first: StreamQueue | undefined;
    while (active.length > 0 && builder.count < maxLines && builder.bytes < maxBytes) {
      const share = Math.ceil((maxBytes - builder.bytes) / active.length);
      const more: StreamQueue[] = [];
      for (const queue of active) {
        if (builder.count >= maxLines || builder.bytes >= maxBytes) break;
        const taken = queue.lines.take(builder, maxLines - builder.count, share, now);
        if (taken === undefined) continue;
        first ??= queue;
        this.addPart(queue, taken);
        more.push(queue);
      }
      active = more;
    }
    if (first === undefined) return undefined;
    this.cursor = (queues.indexOf(first) + 1) % n;
    if (builder.inReusedMemory) this.reusedBytes = Math.max(this.reusedBytes, builder.bytes);
    return builder.build();
  }

  private addPart(queue: StreamQueue, taken: Taken): void {
    const last = this.parts.at(-1);
    if (last?.queue === queue && last.taken.own === taken.own) {
      last.taken.lines += taken.lines;
      last.taken.bytes += taken.bytes;
    } else this.parts.push({ queue, taken });
  }

  /** Opens the disk buffer (a spool left by a previous run is recovered first), then delivers from it. */
  private async deliverSpooled(): Promise<void> {
    if (!(await this.spool!.open())) this.spool = undefined;
    await this.deliverLoop();
  }

  /**
   * The pump's batch is in the disk spool (or dropped there, counted by it): its streams are done with its lines,
   * which stay counted as buffered for them; the sink counts them sent when delivered from the spool (spoolSent).
   */
  private settleSpooled(): void {
    for (const { queue, taken } of this.parts) {
      queue.lines.settleToSpool(taken);
      queue.checkDelivered();
    }
    this.parts = [];
  }

  /** Lines delivered from the disk spool (or that it dropped): the sink's own counters, as the spool can tell no stream. */
  private spoolSettled(sent: { lines: number; bytes: number }, dropped?: { reason: DropReason; lines: number; bytes: number }): void {
    this.tally.sent(sent.lines, sent.bytes);
    if (dropped !== undefined) this.tally.dropped(dropped.reason, dropped.lines, dropped.bytes);
  }

  /**
   * The batch was delivered, but for `rejected`, which the peer refused for good: those count as dropped. A peer
   * that says only how many (not which) refused is charged from the batch's end.
   */
  private settleParts(rejected: RejectedLines | undefined): void {
    let refusedLines = rejected?.lines ?? 0;
    let refusedBytes = rejected?.bytes ?? 0;
    const refusals = this.parts.map(() => ({ lines: 0, bytes: 0 }));
    for (let i = this.parts.length - 1; i >= 0 && (refusedLines > 0 || refusedBytes > 0); i--) {
      const { taken } = this.parts[i];
      refusals[i] = { lines: Math.min(refusedLines, taken.lines), bytes: Math.min(refusedBytes, taken.bytes) };
      refusedLines -= refusals[i].lines;
      refusedBytes -= refusals[i].bytes;
    }
    this.parts.forEach(({ queue, taken }, i) => {
      const refused = refusals[i];
      const anyRefused = refused.lines > 0 || refused.bytes > 0;
      queue.lines.settle(taken, this.confirmsDelivery || anyRefused);
      if (anyRefused) queue.lines.dropUnconfirmed('rejected', refused.lines, refused.bytes);
      const lines = taken.lines - refused.lines;
      const bytes = taken.bytes - refused.bytes;
      if (this.confirmsDelivery) this.unconfirmed.push({ queue, lines, bytes });
      else {
        if (anyRefused) queue.lines.confirm(lines, bytes);
        this.remember(queue, lines, bytes);
      }
      queue.checkDelivered();
    });
    this.parts = [];
  }

  /** While a small batch should wait for more lines: until when. */
  private batchDue(): number | undefined {
    // With a disk buffer, what waits is in the spool: the pump moves lines there as they come.
    const { lines, bytes } = this.spool?.waiting() ?? this.queued();
    if (bytes === 0 || lines >= this.maxBatchLines || bytes >= this.batchBytesLimit()) return undefined;
    const now = Date.now();
    this.batchWaitSince ??= now;
    const due = this.batchWaitSince + this.batchDelayMs;
    return due > now ? due : undefined;
  }

  /** Whole lines held in the queues and not yet taken, and the bytes held. */
  private queued(): { lines: number; bytes: number } {
    let lines = 0;
    let bytes = 0;
    for (const queue of this.queues) {
      const waiting = queue.lines.waiting();
      lines += waiting.lines;
      bytes += waiting.bytes;
    }
    return { lines, bytes };
  }

  /** When the first unterminated line held is due to be flushed, if one is. */
  private flushDueAt(): number | undefined {
    let due: number | undefined;
    for (const queue of this.queues) {
      const at = queue.lines.flushDueAt();
      if (at !== undefined && (due === undefined || at < due)) due = at;
    }
    return due;
  }

  private batchBytesLimit(): number {
    return this.reuseBatches ? Math.min(this.maxBatchBytes, this.reusedBatchBytesCap) : this.maxBatchBytes;
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
