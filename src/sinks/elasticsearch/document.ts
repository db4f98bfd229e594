import type { LineBatch } from '../../lines/line-batch.js';
import type { StreamMetadata } from '../../mesos/metadata.js';
import { recordFields } from '../../mesos/record-fields.js';
import type { ByteWriter } from '../../lines/byte-writer.js';

/** `log.level` of a stream, the names of SEVERITY's 6 and 3 (info for stdout, error for stderr). */
const LEVEL = { stdout: 'info', stderr: 'error' } as const;

/**
 * Elasticsearch reads a dot in a field name as an object path, so labels `app` and `app.version` on two tasks would
 * map one field as both a string and an object, and the second document would be refused. Dots become `_`, as Beats'
 * `labels.dedot` does.
 */
const dedot = (labels: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(labels).map(([key, value]) => [key.replaceAll('.', '_'), value]));

/** The fields every line of one metadata shares, as the JSON after `message`: `,"stream":...}`, closing brace included. */
function metadataMembers(meta: StreamMetadata): string {
  const fields: Record<string, unknown> = { ...recordFields(meta), log: { level: LEVEL[meta.stream] } };
  if (fields.task_labels !== undefined) fields.task_labels = dedot(meta.task_labels);
  if (fields.executor_labels !== undefined) fields.executor_labels = dedot(meta.executor_labels);
  return `,${JSON.stringify(fields).slice(1)}`;
}

const OPEN = Buffer.from('{"@timestamp":"');
const MESSAGE = Buffer.from('","message":"');
const CLOSE_MESSAGE = Buffer.from('"');
const PARTIAL = Buffer.from(',"partial":true');

/**
 * The `_source` of each line, one JSON object: `@timestamp` (RFC 3339, ms, UTC), `message`, `partial` (only when
 * the line did not end in a newline), then the record fields every sink shares (`stream`, the ids, the labels) and
 * `log.level`.
 */
export class DocumentEncoder {
  /** Per metadata object: a stream's lines share one until its metadata changes (agent enrichment). */
  private readonly members = new WeakMap<StreamMetadata, Buffer>();
  /** The lines of one arrival share its time. */
  private stampTime = Number.NaN;
  private stamp = Buffer.alloc(0);

  /** Writes line i's document, without a newline. */
  write(out: ByteWriter, batch: LineBatch, i: number): void {
    const meta = batch.metas[i];
    let members = this.members.get(meta);
    if (members === undefined) {
      members = Buffer.from(metadataMembers(meta));
      this.members.set(meta, members);
    }
    const time = batch.times[i];
    if (time !== this.stampTime) {
      this.stampTime = time;
      this.stamp = Buffer.from(new Date(time).toISOString());
    }
    out.bytes(OPEN);
    out.bytes(this.stamp);
    out.bytes(MESSAGE);
    out.jsonString(batch.utf8(i));
    out.bytes(CLOSE_MESSAGE);
    if (batch.partials[i] === 1) out.bytes(PARTIAL);
    out.bytes(members);
  }
}
