import type { LineBatch } from '../../lines/line-batch.js';
import type { StreamMetadata } from '../../mesos/metadata.js';
import { ID_FIELDS, recordFields } from '../../mesos/record-fields.js';
import type { Template } from '../template.js';

export const KEYS = ['task_id', 'container_id', 'none'] as const;
export type KeyChoice = (typeof KEYS)[number];

export const FORMATS = ['json', 'raw'] as const;
export type Format = (typeof FORMATS)[number];

/** Fields a record header may carry: `stream` and the ids. */
export const HEADER_FIELDS = ['stream', ...ID_FIELDS] as const;
export type HeaderField = (typeof HEADER_FIELDS)[number];

/** What one line becomes. */
export interface KafkaRecord {
  topic: string;
  key?: Buffer;
  value: Buffer;
  headers?: [Buffer, Buffer][];
  /** ms since the epoch */
  timestamp: number;
}

/** Kafka topic names: at most 249 of `[A-Za-z0-9._-]`. */
const MAX_TOPIC = 249;
const TOPIC_CHARACTER = /[^A-Za-z0-9._-]/g;

/** A rendered topic Kafka takes: other characters become `_` (a task id may hold any), cut at 249. */
export const kafkaTopic = (name: string): string => {
  const topic = name.replace(TOPIC_CHARACTER, '_').slice(0, MAX_TOPIC);
  // `.` and `..` are refused by the broker.
  return topic === '' || topic === '.' || topic === '..' ? '_' : topic;
};

/** The key that keeps a writer's lines in order: the task, else the executor, else the container. */
function keyOf(choice: KeyChoice, meta: StreamMetadata): string | undefined {
  if (choice === 'none') return undefined;
  if (choice === 'container_id') return meta.container_id;
  return meta.task_id ?? meta.executor_id ?? meta.container_id;
}

/** What every line of one metadata object shares: cached, since a stream's lines share one until it changes. */
interface Shared {
  key: Buffer | undefined;
  /** `,"stream":...}`: the JSON members after `message`, with the closing brace. */
  members: string;
  headers: [Buffer, Buffer][] | undefined;
  /** The topic, when the template does not use the line's time. */
  topic: string | undefined;
}

export interface RecordOptions {
  topic: Template;
  key: KeyChoice;
  format: Format;
  headers: HeaderField[];
}

/**
 * Turns a batch's lines into Kafka records. JSON values are `{"time","message",["partial"],"stream",ids,labels}`;
 * raw values are the line's bytes without its newline.
 */
export class RecordEncoder {
  private readonly shared = new WeakMap<StreamMetadata, Shared>();

  constructor(private readonly options: RecordOptions) {}

  encode(batch: LineBatch): KafkaRecord[] {
    const records: KafkaRecord[] = new Array(batch.count);
    for (let i = 0; i < batch.count; i++) {
      const meta = batch.metas[i];
      const shared = this.sharedOf(meta);
      const time = batch.times[i];
      const record: KafkaRecord = {
        topic: shared.topic ?? kafkaTopic(this.options.topic.render(meta, time)),
        value: this.options.format === 'raw' ? Buffer.from(batch.raw(i)) : this.json(batch, i, shared),
        timestamp: Math.round(time),
      };
      if (shared.key !== undefined) record.key = shared.key;
      if (shared.headers !== undefined) record.headers = shared.headers;
      records[i] = record;
    }
    return records;
  }

  private json(batch: LineBatch, i: number, shared: Shared): Buffer {
    const line = batch.utf8(i);
    const message = Buffer.from(line.buffer, line.byteOffset, line.length).toString('utf8');
    const time = new Date(batch.times[i]).toISOString();
    const partial = batch.partials[i] === 1 ? ',"partial":true' : '';
    return Buffer.from(`{"time":"${time}","message":${JSON.stringify(message)}${partial}${shared.members}`);
  }

  private sharedOf(meta: StreamMetadata): Shared {
    let shared = this.shared.get(meta);
    if (shared !== undefined) return shared;
    const key = keyOf(this.options.key, meta);
    const fields = recordFields(meta);
    const headers: [Buffer, Buffer][] = [];
    for (const name of this.options.headers) {
      const value = fields[name];
      if (typeof value === 'string') headers.push([Buffer.from(name), Buffer.from(value)]);
    }
    shared = {
      key: key === undefined ? undefined : Buffer.from(key),
      members: `,${JSON.stringify(fields).slice(1)}`,
      headers: headers.length > 0 ? headers : undefined,
      topic: this.options.topic.usesTime ? undefined : kafkaTopic(this.options.topic.render(meta, 0)),
    };
    this.shared.set(meta, shared);
    return shared;
  }
}
