// The otlp sink's encoders and answer parsing, in-process: what they make is decoded with protobufjs from the
// upstream definitions (test/fixtures/otlp-logs.proto) or checked against the OTLP/JSON mapping.
import { describe, expect, it } from 'vitest';
import { LineBatch } from '../src/lines/line-batch.js';
import type { StreamMetadata } from '../src/mesos/metadata.js';
import { JsonLogsEncoder } from '../src/sinks/otlp/json-encoder.js';
import { ProtobufLogsEncoder } from '../src/sinks/otlp/protobuf-encoder.js';
import { partialSuccess, statusMessage } from '../src/sinks/otlp/response.js';
import { decodeJson, decodeProtobuf, partialSuccessBody, statusBody } from './helpers/otlp-receiver.js';

const base = { hostname: 'agent-7', sandbox: '/sandbox', executor_labels: {}, task_labels: {} };
const web: StreamMetadata = {
  ...base,
  stream: 'stdout',
  agent_id: 'S1',
  framework_id: 'F1',
  framework_name: 'marathon',
  executor_id: 'web.1',
  executor_name: 'Command Executor',
  container_id: 'C1.C2',
  task_id: 'web.1',
  task_name: 'web',
  task_labels: { team: 'payments' },
  executor_labels: { 'tier.x': 'front' },
};
const webErr: StreamMetadata = { ...web, stream: 'stderr' };
const db: StreamMetadata = { ...base, stream: 'stdout', executor_id: 'db.3', container_id: 'C9' };

/** A batch of these lines (each a string, or raw bytes), their writers and times. */
function batchOf(lines: { text: string | Buffer; meta: StreamMetadata; time?: number; partial?: boolean }[]): LineBatch {
  const parts = lines.map((line) => (Buffer.isBuffer(line.text) ? line.text : Buffer.from(line.text)));
  const starts = new Uint32Array(lines.length);
  const stops = new Uint32Array(lines.length);
  let at = 0;
  parts.forEach((part, i) => {
    starts[i] = at;
    stops[i] = at + part.length;
    at += part.length + 1;
  });
  const data = Buffer.concat(parts.flatMap((part) => [part, Buffer.from('\n')]));
  return new LineBatch(
    data,
    starts,
    stops,
    Uint8Array.from(lines.map((line) => (line.partial ? 1 : 0))),
    Float64Array.from(lines.map((line) => line.time ?? 1_765_000_000_123)),
    lines.map((line) => line.meta),
    lines.every((line) => !Buffer.isBuffer(line.text)),
    lines.length,
  );
}

const WEB_RESOURCE = {
  'service.name': 'web',
  'host.name': 'agent-7',
  'mesos.agent.id': 'S1',
  'mesos.framework.id': 'F1',
  'mesos.framework.name': 'marathon',
  'mesos.executor.id': 'web.1',
  'mesos.executor.name': 'Command Executor',
  'mesos.container.id': 'C1.C2',
  'mesos.task.id': 'web.1',
  'mesos.task.name': 'web',
  'mesos.task.label.team': 'payments',
  'mesos.executor.label.tier.x': 'front',
};

describe('otlp encoders', () => {
  const batch = batchOf([
    { text: 'web out 0', meta: web, time: 1_765_000_000_123.456 },
    { text: 'db out 0', meta: db },
    { text: 'web err 0', meta: webErr, partial: true },
    // The same writer in a metadata object of its own (as after a reload): the same resource.
    { text: 'web out 1', meta: { ...web } },
    { text: Buffer.from([0x62, 0x61, 0x64, 0x20, 0xff, 0xc3, 0x28]), meta: db },
  ]);

  for (const [name, encode, decode] of [
    ['protobuf', (b: LineBatch) => new ProtobufLogsEncoder().encode(b), decodeProtobuf],
    ['json', (b: LineBatch) => new JsonLogsEncoder().encode(b), decodeJson],
  ] as const) {
    it(`${name}: one ResourceLogs per writer (stdout and stderr of a task share one), lines in batch order within each`, () => {
      const records = decode(encode(batch));
      expect(records.map((r) => [r.resourceIndex, r.body])).toEqual([
        [0, 'web out 0'],
        [0, 'web err 0'],
        [0, 'web out 1'],
        [1, 'db out 0'],
        [1, 'bad \ufffd\ufffd('],
      ]);
      expect(records[0].resource).toEqual(WEB_RESOURCE);
      // No task name or id: service.name falls back to the executor id; ids the metadata lacks are left out.
      expect(records[3].resource).toEqual({ 'service.name': 'db.3', 'host.name': 'agent-7', 'mesos.executor.id': 'db.3', 'mesos.container.id': 'C9' });
      expect(records[0]).toMatchObject({
        scope: 'mesos-log-splitter',
        timeUnixNano: 1_765_000_000_123_456_000n,
        observedTimeUnixNano: 1_765_000_000_123_456_000n,
        severityNumber: 9,
        severityText: 'INFO',
        attributes: { 'log.iostream': 'stdout' },
      });
      expect(records[1]).toMatchObject({
        timeUnixNano: 1_765_000_000_123_000_000n,
        severityNumber: 17,
        severityText: 'ERROR',
        attributes: { 'log.iostream': 'stderr', 'mesos.line.partial': true },
      });
      expect(Object.keys(records[2].attributes)).toEqual(['log.iostream']);
    });
  }

  it('protobuf: a batch of 1024 lines of 150 bytes, one writer, decodes whole', () => {
    const lines = Array.from({ length: 1024 }, (_, i) => ({ text: `line ${i} `.padEnd(149, 'x'), meta: web }));
    const records = decodeProtobuf(new ProtobufLogsEncoder().encode(batchOf(lines)));
    expect(records.map((r) => r.body)).toEqual(lines.map((line) => line.text));
    expect(new Set(records.map((r) => r.resourceIndex))).toEqual(new Set([0]));
  });
});

describe('otlp answers', () => {
  const answer = (contentType: string, body: Uint8Array | string) => ({
    status: 200,
    headers: { 'content-type': contentType },
    body: Buffer.from(body),
  });

  it('partial_success, protobuf and JSON; none when the answer reports nothing or cannot be read', () => {
    expect(partialSuccess(answer('application/x-protobuf', partialSuccessBody(7, 'too old')))).toEqual({ rejected: 7, message: 'too old' });
    const json = JSON.stringify({ partialSuccess: { rejectedLogRecords: '3', errorMessage: 'dup' } });
    expect(partialSuccess(answer('application/json', json))).toEqual({ rejected: 3, message: 'dup' });
    expect(partialSuccess(answer('application/json', '{}'))).toBeUndefined();
    expect(partialSuccess(answer('application/x-protobuf', partialSuccessBody(0, '')))).toBeUndefined();
    expect(partialSuccess(answer('application/x-protobuf', Buffer.from([0x0a, 0x05, 0x08])))).toBeUndefined();
    expect(partialSuccess(answer('text/plain', 'ok'))).toBeUndefined();
  });

  it("an error's google.rpc.Status message, protobuf and JSON, else the body as it came", () => {
    expect(statusMessage(answer('application/x-protobuf', statusBody(3, 'bad record'))).toString()).toBe('bad record');
    expect(statusMessage(answer('application/json', '{"code":3,"message":"bad json"}')).toString()).toBe('bad json');
    expect(statusMessage(answer('text/plain', 'plain words')).toString()).toBe('plain words');
  });
});
