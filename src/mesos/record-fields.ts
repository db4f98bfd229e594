import type { StreamMetadata } from './metadata.js';

/** The ids a record carries when the stream has them, under their StreamMetadata names, in this order. */
export const ID_FIELDS = [
  'hostname',
  'agent_id',
  'framework_id',
  'executor_id',
  'container_id',
  'task_id',
  'task_name',
  'framework_name',
  'executor_name',
  'user',
] as const;

/** Who wrote a line, as the members of a JSON record: `stream`, the ids it has, and its labels when it has any. */
export interface RecordFields {
  stream: StreamMetadata['stream'];
  [id: string]: string | Record<string, string>;
}

/**
 * The writer of a line as JSON record fields (the http sink's NDJSON and JSON array): `stream`, then ID_FIELDS
 * (unknown ones left out), then `task_labels` and `executor_labels` as objects when not empty.
 */
export function recordFields(meta: StreamMetadata): RecordFields {
  const fields: RecordFields = { stream: meta.stream };
  for (const name of ID_FIELDS) {
    const value = meta[name];
    if (value !== undefined) fields[name] = value;
  }
  if (Object.keys(meta.task_labels).length > 0) fields.task_labels = { ...meta.task_labels };
  if (Object.keys(meta.executor_labels).length > 0) fields.executor_labels = { ...meta.executor_labels };
  return fields;
}

/**
 * A label key as part of a field name that every store takes and every query language can name unquoted
 * (Prometheus/Loki label names, Splunk field names): characters outside `[A-Za-z0-9_]` become `_`.
 */
export const labelFieldName = (kind: 'task_label' | 'executor_label', key: string): string => `${kind}_${key.replace(/[^A-Za-z0-9_]/g, '_')}`;

/**
 * The same fields flat, every value a string, for stores whose fields cannot nest (Splunk HEC indexed fields, Loki
 * structured metadata): each label becomes a field of its own, named by labelFieldName. Two keys that differ only in
 * the characters it replaces map to one name: the task label wins over the executor label, the later key over the
 * earlier one.
 */
export function flatRecordFields(meta: StreamMetadata): Record<string, string> {
  const fields: Record<string, string> = { stream: meta.stream };
  for (const name of ID_FIELDS) {
    const value = meta[name];
    if (value !== undefined) fields[name] = value;
  }
  for (const [key, value] of Object.entries(meta.executor_labels)) fields[labelFieldName('executor_label', key)] = value;
  for (const [key, value] of Object.entries(meta.task_labels)) fields[labelFieldName('task_label', key)] = value;
  return fields;
}
