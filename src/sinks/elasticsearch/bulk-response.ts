import { peerMessage } from '../http-delivery.js';

/**
 * What the `_bulk` answer's items are reduced to: the request asks for `filter_path=errors,items.*.status,
 * items.*.error.type,items.*.error.reason`, so a large batch's answer stays small.
 */
export const BULK_FILTER_PATH = 'errors,items.*.status,items.*.error.type,items.*.error.reason';

const MAX_ERROR_CHARS = 512;

/** What became of one document. */
export type ItemOutcome = 'delivered' | 'retry' | 'rejected';

export interface ItemResult {
  outcome: ItemOutcome;
  status: number;
  /** `type: reason` of the item's error, when it has one. */
  error?: string;
}

/**
 * 2xx: stored. 409 (a `create` whose `_id` exists, which only an ingest pipeline setting `_id` can cause, since the
 * sink sets none): already stored, so delivered. 429 (`es_rejected_execution_exception`: a full write queue) and
 * 5xx (a shard unavailable): retried. Any other status (400 `mapper_parsing_exception`, 404 `index_not_found_exception`
 * when auto-create is off, 403): refused for good.
 */
export function itemOutcome(status: number): ItemOutcome {
  if ((status >= 200 && status < 300) || status === 409) return 'delivered';
  if (status === 429 || status >= 500) return 'retry';
  return 'rejected';
}

interface BulkItem {
  status?: unknown;
  error?: { type?: unknown; reason?: unknown };
}

/**
 * The outcome of each of `count` documents sent, from a 2xx answer; throws (the batch is retried) when the answer
 * is not a `_bulk` answer for that many documents.
 */
export function readBulkResponse(body: Buffer, count: number): ItemResult[] | 'all delivered' {
  let answer: { errors?: unknown; items?: unknown };
  try {
    answer = JSON.parse(body.toString('utf8')) as typeof answer;
  } catch {
    throw new Error(`the answer is not a _bulk answer (not JSON): ${peerMessage(body)}`);
  }
  if (answer?.errors === false) return 'all delivered';
  const items = answer?.items;
  if (answer?.errors !== true || !Array.isArray(items) || items.length !== count) {
    throw new Error(`the answer is not a _bulk answer for ${count} documents: ${peerMessage(body)}`);
  }
  return items.map((entry: unknown) => {
    // Each item is keyed by its action: {"create": {"status": 201}}.
    const item = (entry !== null && typeof entry === 'object' ? Object.values(entry)[0] : undefined) as BulkItem | undefined;
    const status = typeof item?.status === 'number' ? item.status : 0;
    // A reason may quote the document's field (a preview of the value): kept short for the log.
    const error =
      item?.error === undefined ? undefined : `${String(item.error.type)}: ${String(item.error.reason)}`.slice(0, MAX_ERROR_CHARS);
    return { outcome: status === 0 ? 'retry' : itemOutcome(status), status, ...(error === undefined ? {} : { error }) };
  });
}
