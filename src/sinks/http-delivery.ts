import type { HttpResponse } from '../net/http-client.js';
import { RejectedBatch, RetryLater } from './send-outcome.js';

/** How much of a peer's error body goes to the log. */
const MESSAGE_BYTES = 512;

/**
 * The delivery rule for every HTTP sink: 2xx delivered; 429 and 5xx retried (after Retry-After when given);
 * any other status rejected for good, with the peer's message.
 */
export function checkStatus(response: HttpResponse, now = Date.now()): void {
  const { status } = response;
  if (status >= 200 && status < 300) return;
  const message = `HTTP ${status}: ${peerMessage(response.body)}`;
  if (status === 429 || status >= 500) {
    const after = retryAfterMs(response.headers['retry-after'], now);
    throw after === undefined ? new Error(message) : new RetryLater(message, after);
  }
  throw new RejectedBatch(message, status);
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 10.2.3), in ms from `now`. */
export function retryAfterMs(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The start of a peer's error body, printable, for the log. */
export function peerMessage(body: Buffer): string {
  const text = body.subarray(0, MESSAGE_BYTES).toString('utf8').replace(/[^\x20-\x7e]+/g, ' ').trim();
  return text === '' ? '(no body)' : text;
}
