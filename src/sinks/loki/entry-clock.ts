/** How long a Loki stream's last timestamp is kept after its last line, once there are many streams. */
const FORGET_AFTER_MS = 5 * 60_000;
const FORGET_ABOVE_STREAMS = 1000;
const NS_PER_MS = 1_000_000;

/**
 * Timestamps for Loki entries, in ns, strictly increasing per Loki stream: a line's arrival ms, or one ns after the
 * stream's previous entry when that is not earlier. Loki keeps one of two entries with the same stream, timestamp
 * and line (a task printing the same line twice within a millisecond would lose one), and orders entries of one
 * timestamp by their content rather than their arrival.
 */
export class EntryClock {
  /** Per stream key: the last entry's ms and its ns offset within that ms. */
  private readonly last = new Map<string, { ms: number; ns: number }>();

  /** The next timestamp of stream `key` for a line that arrived at `time` (ms since the epoch), as Loki's ns string. */
  stamp(key: string, time: number): string {
    const ms = Math.floor(time);
    let clock = this.last.get(key);
    if (clock === undefined) {
      if (this.last.size >= FORGET_ABOVE_STREAMS) this.forget(ms);
      this.last.set(key, (clock = { ms, ns: 0 }));
    } else if (ms > clock.ms) {
      clock.ms = ms;
      clock.ns = 0;
    } else if (++clock.ns === NS_PER_MS) {
      clock.ms++;
      clock.ns = 0;
    }
    return `${clock.ms}${String(clock.ns).padStart(6, '0')}`;
  }

  /**
   * Drops streams idle for FORGET_AFTER_MS: a later line of theirs arrives after their last timestamp anyway, unless
   * the clock went back that far.
   */
  private forget(now: number): void {
    for (const [key, clock] of this.last) if (clock.ms < now - FORGET_AFTER_MS) this.last.delete(key);
  }
}
