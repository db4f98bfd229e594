/**
 * The wait between retries of a failed send: exponential from MIN_MS to MAX_MS with full jitter in its upper half,
 * so that the streams of many agents do not retry in step after an outage. A peer's own wait (Retry-After) is
 * honoured, capped at MAX_HINT_MS.
 */
const MIN_MS = 100;
const MAX_MS = 30_000;
const MAX_HINT_MS = 300_000;

export class Backoff {
  private ceiling = MIN_MS;

  /** The wait before the next try; `hintMs` is the peer's, when it gave one. */
  next(hintMs?: number): number {
    const wait = this.ceiling / 2 + Math.random() * (this.ceiling / 2);
    this.ceiling = Math.min(this.ceiling * 2, MAX_MS);
    return hintMs === undefined ? wait : Math.max(wait, Math.min(hintMs, MAX_HINT_MS));
  }

  reset(): void {
    this.ceiling = MIN_MS;
  }
}
