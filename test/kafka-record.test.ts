// The kafka sink's records from a batch whose lines come from several writers (a daemon's shared sink): key, topic,
// value and headers are each line's own.
import { describe, expect, it } from 'vitest';
import { LineBatch } from '../src/lines/line-batch.js';
import type { StreamMetadata } from '../src/mesos/metadata.js';
import { compileTemplate } from '../src/sinks/template.js';
import { kafkaTopic, RecordEncoder, type RecordOptions } from '../src/sinks/kafka/record.js';

const meta = (fields: Partial<StreamMetadata>): StreamMetadata => ({
  stream: 'stdout',
  hostname: 'agent-7',
  sandbox: '/sandbox',
  executor_labels: {},
  task_labels: {},
  ...fields,
});

const WEB = meta({ agent_id: 'S1', framework_id: 'F1', executor_id: 'web.1', container_id: 'C1', task_id: 'web.1', task_labels: { team: 'a' } });
const DB = meta({ stream: 'stderr', agent_id: 'S1', framework_id: 'F1', executor_id: 'exec-db', container_id: 'C2', task_id: 'db/primary:1' });
const PATH_ONLY = meta({ executor_id: 'E9', container_id: 'C9' });
const STANDALONE = meta({ container_id: 'C10' });

/** A batch of [line bytes (no newline), writer, partial] at `time`. */
function batchOf(lines: [Buffer | string, StreamMetadata, boolean?][], time = Date.UTC(2024, 0, 2, 3, 4, 5, 678)): LineBatch {
  const parts = lines.map(([line, , partial]) => Buffer.concat([Buffer.from(line), Buffer.from(partial === true ? '' : '\n')]));
  const data = Buffer.concat(parts);
  const starts = new Uint32Array(lines.length);
  const stops = new Uint32Array(lines.length);
  let at = 0;
  parts.forEach((part, i) => {
    starts[i] = at;
    stops[i] = at + Buffer.from(lines[i][0]).length;
    at += part.length;
  });
  const partials = Uint8Array.from(lines.map(([, , partial]) => (partial === true ? 1 : 0)));
  return new LineBatch(data, starts, stops, partials, new Float64Array(lines.length).fill(time), lines.map(([, m]) => m), false, lines.length);
}

const encoder = (options: Partial<Omit<RecordOptions, 'topic'>> & { topic?: string } = {}): RecordEncoder =>
  new RecordEncoder({ key: 'task_id', format: 'json', headers: [], ...options, topic: compileTemplate('topic', options.topic ?? 'logs') });

describe('kafka records', () => {
  it('each line keyed, routed and described by its own writer', () => {
    const records = encoder({ topic: 'logs-{task_id}-{stream}-{date}', headers: ['stream', 'task_id'] }).encode(
      batchOf([
        ['web one', WEB],
        ['db one', DB],
        ['web two', WEB],
      ]),
    );
    expect(records.map((r) => [r.topic, r.key?.toString()])).toEqual([
      ['logs-web.1-stdout-2024.01.02', 'web.1'],
      ['logs-db_primary_1-stderr-2024.01.02', 'db/primary:1'],
      ['logs-web.1-stdout-2024.01.02', 'web.1'],
    ]);
    expect(records.map((r) => [...r.headers!].map(([k, v]) => `${k}=${v}`))).toEqual([
      ['stream=stdout', 'task_id=web.1'],
      ['stream=stderr', 'task_id=db/primary:1'],
      ['stream=stdout', 'task_id=web.1'],
    ]);
    expect(JSON.parse(records[0].value.toString())).toEqual({
      time: '2024-01-02T03:04:05.678Z',
      message: 'web one',
      stream: 'stdout',
      hostname: 'agent-7',
      agent_id: 'S1',
      framework_id: 'F1',
      executor_id: 'web.1',
      container_id: 'C1',
      task_id: 'web.1',
      task_labels: { team: 'a' },
    });
    expect(JSON.parse(records[1].value.toString())).toMatchObject({ message: 'db one', stream: 'stderr', task_id: 'db/primary:1', container_id: 'C2' });
    expect(records[0].timestamp).toBe(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
  });

  it('key: the task id, else the executor id, else the container id; container_id; none', () => {
    const batch = batchOf([
      ['a', WEB],
      ['b', PATH_ONLY],
      ['c', STANDALONE],
    ]);
    expect(encoder().encode(batch).map((r) => r.key?.toString())).toEqual(['web.1', 'E9', 'C10']);
    expect(encoder({ key: 'container_id' }).encode(batch).map((r) => r.key?.toString())).toEqual(['C1', 'C9', 'C10']);
    expect(encoder({ key: 'none' }).encode(batch).map((r) => r.key)).toEqual([undefined, undefined, undefined]);
  });

  it('JSON: invalid UTF-8 replaced, quotes and controls escaped, partial marked; raw: the bytes as they came', () => {
    const bad = Buffer.from([0x62, 0x61, 0x64, 0x20, 0xc3, 0x28]);
    const batch = batchOf([
      [bad, WEB],
      ['say "hi"\t\\ \u0001', WEB],
      ['cut', WEB, true],
    ]);
    const json = encoder().encode(batch).map((r) => JSON.parse(r.value.toString()) as Record<string, unknown>);
    expect(json.map((v) => v.message)).toEqual(['bad \ufffd(', 'say "hi"\t\\ \u0001', 'cut']);
    expect(json.map((v) => v.partial)).toEqual([undefined, undefined, true]);
    const raw = encoder({ format: 'raw' }).encode(batch).map((r) => r.value);
    expect(raw).toEqual([bad, Buffer.from('say "hi"\t\\ \u0001'), Buffer.from('cut')]);
  });

  it('topic names Kafka takes: other characters become _, at most 249, never . or ..', () => {
    expect(kafkaTopic('mesos-db/primary:1')).toBe('mesos-db_primary_1');
    expect(kafkaTopic('é'.repeat(300))).toBe('_'.repeat(249));
    expect([kafkaTopic('.'), kafkaTopic('..'), kafkaTopic('')]).toEqual(['_', '_', '_']);
  });
});
