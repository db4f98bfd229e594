import type { LineBatch } from '../lines/line-batch.js';

export interface ReplayLimits {
  /** Most stream bytes kept; 0 keeps nothing. The newest batch is kept whatever its size. */
  maxBytes: number;
  /** Batches delivered longer ago than this are taken as received. */
  maxAgeMs: number;
}

/**
 * The batches a sink delivered lately, kept as taken (raw line bytes, not encoded) to be sent again after a loss the
 * protocol cannot see: a TCP connection that dies with frames the kernel took but the peer never read, an exec
 * process that dies with lines unread in its stdin. Sending them again turns that loss into duplicates (at least
 * once). What it holds counts against the sink's max_bytes, and it yields to new lines when the buffer is full.
 */
export class ReplayWindow {
  private entries: { batch: LineBatch; at: number }[] = [];
  private held = 0;

  constructor(private readonly limits: ReplayLimits = { maxBytes: 0, maxAgeMs: 0 }) {}

  /** Stream bytes held. */
  get bytes(): number {
    return this.held;
  }

  /** The batches held, oldest first. */
  get batches(): LineBatch[] {
    return this.entries.map((entry) => entry.batch);
  }

  add(batch: LineBatch, now: number): void {
    if (this.limits.maxBytes === 0) return;
    this.entries.push({ batch, at: now });
    this.held += batch.bytes;
    while (this.entries.length > 1 && this.held > this.limits.maxBytes) this.dropOldest();
  }

  /** Forgets batches delivered more than maxAgeMs before `now`. */
  expire(now: number): void {
    while (this.entries.length > 0 && this.entries[0].at < now - this.limits.maxAgeMs) this.dropOldest();
  }

  /** Gives up the oldest batches until `bytes` are freed, or none is left. */
  release(bytes: number): void {
    for (const target = this.held - bytes; this.entries.length > 0 && this.held > target; ) this.dropOldest();
  }

  private dropOldest(): void {
    this.held -= this.entries.shift()!.batch.bytes;
  }
}
