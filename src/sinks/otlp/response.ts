import type { HttpResponse } from '../../net/http-client.js';
import { readFields, VARINT } from './wire.js';

/** ExportLogsServiceResponse.partial_success: records the collector took the request but refused for good. */
export interface PartialSuccess {
  rejected: number;
  message: string;
}

const isJson = (response: HttpResponse): boolean => /^application\/json\b/i.test(response.headers['content-type'] ?? '');
const isProtobuf = (response: HttpResponse): boolean =>
  /^application\/(x-)?protobuf\b/i.test(response.headers['content-type'] ?? '');

/**
 * The partial_success of a 2xx answer (OTLP/HTTP: the body is an ExportLogsServiceResponse in the request's
 * encoding), or undefined when it reports nothing. An undecodable body is taken as full success: the status says so.
 */
export function partialSuccess(response: HttpResponse): PartialSuccess | undefined {
  if (response.body.length === 0) return undefined;
  let found: PartialSuccess | undefined;
  try {
    if (isJson(response)) {
      const partial = (JSON.parse(response.body.toString('utf8')) as { partialSuccess?: Record<string, unknown> }).partialSuccess;
      if (partial !== undefined && partial !== null) {
        found = { rejected: Number(partial.rejectedLogRecords ?? 0), message: String(partial.errorMessage ?? '') };
      }
    } else if (isProtobuf(response)) {
      // ExportLogsServiceResponse { partial_success = 1 } and ExportLogsPartialSuccess { rejected_log_records = 1,
      // error_message = 2 }.
      for (const outer of readFields(response.body)) {
        if (outer.field !== 1 || outer.bytes === undefined) continue;
        found = { rejected: 0, message: '' };
        for (const inner of readFields(outer.bytes)) {
          if (inner.field === 1 && inner.wireType === VARINT) found.rejected = inner.varint!;
          if (inner.field === 2 && inner.bytes !== undefined) found.message = Buffer.from(inner.bytes).toString('utf8');
        }
      }
    }
  } catch {
    return undefined;
  }
  if (found === undefined || (found.rejected <= 0 && found.message === '')) return undefined;
  if (!Number.isSafeInteger(found.rejected) || found.rejected < 0) found.rejected = 0;
  return found;
}

/**
 * The message of an error answer's google.rpc.Status (OTLP/HTTP: `message` is field 2, or JSON `message`), else the
 * body as it came, for checkStatus to log.
 */
export function statusMessage(response: HttpResponse): Buffer {
  try {
    if (isJson(response)) {
      const message = (JSON.parse(response.body.toString('utf8')) as { message?: unknown }).message;
      if (typeof message === 'string' && message !== '') return Buffer.from(message);
    } else if (isProtobuf(response)) {
      for (const field of readFields(response.body)) {
        if (field.field === 2 && field.bytes !== undefined && field.bytes.length > 0) return Buffer.from(field.bytes);
      }
    }
  } catch {
    // Not what the content type says: the raw body is all there is.
  }
  return response.body;
}
