import type { LineBatch } from '../../lines/line-batch.js';
import type { RejectedLines } from '../send-outcome.js';
import type { ItemOutcome } from './bulk-response.js';

/**
 * Which documents of one batch Elasticsearch still owes an answer for. A `_bulk` answer may take some documents,
 * refuse some for good and ask to retry others (429): the next attempt of the same batch sends only those, in order,
 * and the batch is done once none is left.
 */
export class BatchProgress {
  /** 0: not taken yet; 1: delivered; 2: refused for good. */
  private readonly states: Uint8Array;
  private readonly refused: RejectedLines = { lines: 0, bytes: 0 };
  private delivered = 0;

  constructor(readonly batch: LineBatch) {
    this.states = new Uint8Array(batch.count);
  }

  /** The documents still to send, in order. */
  pending(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.states.length; i++) if (this.states[i] === 0) out.push(i);
    return out;
  }

  /** Whether part of the batch is settled already (a whole-request refusal then covers only the rest). */
  get started(): boolean {
    return this.delivered > 0 || this.refused.lines + this.refused.bytes > 0;
  }

  settle(i: number, outcome: Exclude<ItemOutcome, 'retry'>): void {
    if (outcome === 'delivered') {
      this.states[i] = 1;
      this.delivered++;
      return;
    }
    this.states[i] = 2;
    this.refused.lines += this.linesOf(i);
    this.refused.bytes += this.bytesOf(i);
  }

  /** What the peer refused for good, once no document is pending (undefined: none). */
  rejected(): RejectedLines | undefined {
    return this.refused.bytes === 0 ? undefined : { ...this.refused };
  }

  /**
   * A line is counted when its newline is: a piece of a cut line counts none, its last piece one; a last line
   * without newline at end of stream counts one (the batch's lines beyond its whole ones).
   */
  private linesOf(i: number): number {
    const { batch } = this;
    const own = batch.partials[i] === 1 ? 0 : 1;
    if (i < batch.count - 1) return own;
    let whole = 0;
    for (let k = 0; k < batch.count; k++) whole += 1 - batch.partials[k];
    return own + batch.lines - whole;
  }

  /** The stream bytes a line took: from its start to the next line's (its CR and newline included). */
  private bytesOf(i: number): number {
    const { batch } = this;
    const start = i === 0 ? 0 : batch.starts[i];
    const end = i === batch.count - 1 ? batch.bytes : batch.starts[i + 1];
    return end - start;
  }
}
