import type { LogRecord } from '../lines/record.js';

/** FIFO of records with O(1) push/shift and a running byte total. */
export class RecordQueue {
  private items: LogRecord[] = [];
  private head = 0;
  bytes = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(record: LogRecord): void {
    this.items.push(record);
    this.bytes += record.size;
  }

  shift(): LogRecord | undefined {
    if (this.head >= this.items.length) return undefined;
    const record = this.items[this.head];
    this.items[this.head++] = undefined as unknown as LogRecord;
    this.bytes -= record.size;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return record;
  }

  /** Takes up to `maxLines` records and about `maxBytes` (always at least one record). */
  take(maxLines: number, maxBytes: number): LogRecord[] {
    const batch: LogRecord[] = [];
    let bytes = 0;
    while (batch.length < maxLines && this.length > 0) {
      const next = this.items[this.head];
      if (batch.length > 0 && bytes + next.size > maxBytes) break;
      bytes += next.size;
      batch.push(this.shift()!);
    }
    return batch;
  }

  /** Puts records back at the front (a batch whose delivery failed), keeping their order. */
  unshiftAll(records: LogRecord[]): void {
    this.items = [...records, ...this.items.slice(this.head)];
    this.head = 0;
    for (const record of records) this.bytes += record.size;
  }
}
