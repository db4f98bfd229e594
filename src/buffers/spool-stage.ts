import type { Logger } from '../diagnostics.js';
import type { LineBatch } from '../lines/line-batch.js';
import type { WhenFull } from '../lines/line-buffer.js';
import { DiskSpool, type SpoolStats } from './disk-spool.js';

/** A sink's disk buffer settings: its spool directory (for this process) and bounds. */
export interface SpoolConfig {
  dir: string;
  maxBytes: number;
  whenFull: WhenFull;
}

/** What the stage needs of the sink: its streams' lines, batched as it batches them. */
export interface StageSource {
  /** The next batch from the streams' queues, or undefined when none is due. */
  take(now: number): LineBatch | undefined;
  /** The batch last taken is in the spool (or dropped by it, counted there): the queues are done with its lines. */
  spooled(): void;
  /** When an unterminated line held in a queue is due to be flushed, if one is. */
  flushDueAt(): number | undefined;
  /** The sink is stopping: once the queues are empty, nothing more comes. */
  stopping(): boolean;
  aborted(): boolean;
  /** New lines are in the spool: the delivery loop may take them. */
  wakeDelivery(): void;
}

/** The spool's figures, and lines sent from it that a peer then refused or lost (by reason). */
export type SpoolStageStats = SpoolStats & { lostBy: Record<string, { lines: number; bytes: number }> };

interface Unconfirmed {
  batch: LineBatch;
  lines: number;
  bytes: number;
}

/**
 * A disk spool between a sink's stream queues and its delivery loop (docs/spool.md): the pump moves lines from the
 * queues into the spool as they come; the delivery loop takes its batches from the spool, in order, and each is
 * acknowledged (so its segment can go) once delivered, or once the peer confirmed it for sinks that confirm later.
 * Lines in the spool when it opens (a restart) come out before any new line.
 */
export class SpoolStage {
  private spool: DiskSpool | undefined;
  private readonly unconfirmed: Unconfirmed[] = [];
  private wakePump: (() => void) | undefined;
  private pumping: Promise<void> | undefined;
  /** The sink stops and the pump moved everything the queues held: the spool is all there is to deliver. */
  pumped = false;
  /** Lines the peer will never confirm, or a replay could not send again: counted here, by reason. */
  private readonly lost: Record<string, { lines: number; bytes: number }> = {};

  constructor(
    private readonly config: SpoolConfig,
    private readonly log: Logger,
    private readonly source: StageSource,
  ) {}

  /** Opens (recovers) the spool and starts the pump; false when it cannot (logged): the sink buffers in memory. */
  async open(): Promise<boolean> {
    try {
      this.spool = await DiskSpool.open(this.config.dir, { maxBytes: this.config.maxBytes, whenFull: this.config.whenFull }, this.log);
    } catch (err) {
      this.log.error({ dir: this.config.dir, err: (err as Error).message }, 'the disk buffer cannot be opened; buffering in memory');
      return false;
    }
    this.pumping = this.pump();
    return true;
  }

  /** The queues have new lines. */
  wake(): void {
    this.wakePump?.();
  }

  /** The next batch to deliver, in spool order; undefined when the spool has nothing more now. */
  take(maxLines: number, maxBytes: number): Promise<LineBatch | undefined> {
    return this.spool?.take(maxLines, maxBytes) ?? Promise.resolve(undefined);
  }

  /** The batch was sent: acknowledged now, or once the peer confirms its lines (`confirm`). */
  sent(batch: LineBatch, confirmLater: boolean): void {
    if (!confirmLater) return this.spool?.ack(batch);
    this.unconfirmed.push({ batch, lines: batch.lines, bytes: batch.bytes });
  }

  /** Lines of sent batches the peer confirmed, oldest first: batches wholly confirmed are acknowledged. */
  confirm(lines: number, bytes: number): void {
    this.settleUnconfirmed(lines, bytes);
  }

  /** Lines of sent batches that will never be confirmed, or that a replay cannot send again: counted, and done with. */
  drop(reason: string, lines: number, bytes: number, unconfirmed: boolean): void {
    const lost = (this.lost[reason] ??= { lines: 0, bytes: 0 });
    lost.lines += lines;
    lost.bytes += bytes;
    if (unconfirmed) this.settleUnconfirmed(lines, bytes);
  }

  /** Lines and stream bytes in the spool not yet taken. */
  waiting(): { lines: number; bytes: number } {
    return this.spool?.waiting() ?? { lines: 0, bytes: 0 };
  }

  get stats(): SpoolStageStats | undefined {
    return this.spool === undefined ? undefined : { ...this.spool.stats, lostBy: structuredClone(this.lost) };
  }

  /** After the delivery loop ended: the pump stops, and the spool is synced and closed (what it holds stays). */
  async close(): Promise<void> {
    this.wakePump?.();
    await this.pumping;
    await this.spool?.close();
  }

  private settleUnconfirmed(lines: number, bytes: number): void {
    while ((lines > 0 || bytes > 0) && this.unconfirmed.length > 0) {
      const first = this.unconfirmed[0];
      const l = Math.min(lines, first.lines);
      const b = Math.min(bytes, first.bytes);
      first.lines -= l;
      first.bytes -= b;
      lines -= l;
      bytes -= b;
      if (first.lines > 0 || first.bytes > 0) break;
      this.unconfirmed.shift();
      this.spool?.ack(first.batch);
    }
  }

  /** Queues to spool, until the sink stops and the queues are empty, or it is aborted. */
  private async pump(): Promise<void> {
    const spool = this.spool!;
    const source = this.source;
    while (!source.aborted()) {
      const batch = source.take(Date.now());
      if (batch === undefined) {
        if (source.stopping()) break;
        await this.idle(source.flushDueAt());
        continue;
      }
      // Busy: too much not yet written, or the disk failed. The queues keep filling meanwhile, within their budget.
      let result = spool.append(batch);
      while (result === 'busy' && !source.aborted()) {
        await Promise.race([spool.writable(), this.idle(undefined)]);
        result = spool.append(batch);
      }
      if (result === 'busy') break;
      source.spooled();
      source.wakeDelivery();
    }
    this.pumped = true;
    source.wakeDelivery();
  }

  private idle(until: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const timer = until === undefined ? undefined : setTimeout(() => this.wakePump?.(), Math.max(0, until - Date.now()));
      this.wakePump = () => {
        this.wakePump = undefined;
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
