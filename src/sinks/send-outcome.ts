/**
 * How a failed send tells the delivery loop what to do. Any other error is retried with backoff.
 */

/**
 * The peer refused the batch for good (a 4xx other than 429, a record it cannot take): it is not sent again. Its
 * lines count as dropped (`rejected`), and the peer's message is logged.
 */
export class RejectedBatch extends Error {
  constructor(
    message: string,
    /** The peer's status (an HTTP code), for the log and the counters. */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** A retriable failure with the peer's own wait (HTTP Retry-After, a throttle hint): retried no sooner. */
export class RetryLater extends Error {
  constructor(
    message: string,
    readonly afterMs: number,
  ) {
    super(message);
  }
}

/**
 * What `send` resolves with when the peer took the batch but refused some of its lines for good (per-item errors in
 * a bulk answer): those count as dropped (`rejected`), the rest as delivered. The sink logs the reasons itself.
 */
export interface RejectedLines {
  lines: number;
  bytes: number;
}
