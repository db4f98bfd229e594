// LineFramer: the byte stream cut into line records for the sinks. Real Buffers, real timers.
import { isUtf8 } from 'node:buffer';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { LineFramer, type LineFramerOptions } from '../src/lines/framer.js';
import { lineRecord, text, utf8Bytes, type LogRecord } from '../src/lines/record.js';
import type { StreamMetadata } from '../src/mesos/metadata.js';
import { RecordQueue } from '../src/sinks/record-queue.js';
import { sleep, waitFor } from './helpers/wait.js';

const META: StreamMetadata = {
  stream: 'stdout',
  hostname: hostname(),
  sandbox: '/var/lib/mesos/slaves/S1/frameworks/F1/executors/E1/runs/C1',
  agent_id: 'S1',
  framework_id: 'F1',
  executor_id: 'E1',
  container_id: 'C1',
  executor_labels: {},
  task_labels: {},
};

function framer(options: Partial<LineFramerOptions> = {}, meta: () => StreamMetadata = () => META) {
  const records: LogRecord[] = [];
  const f = new LineFramer({ maxLineBytes: 64 * 1024, partialFlushMs: 1000, ...options }, meta, (r) => records.push(r));
  return { f, records, lines: () => records.map((r) => r.bytes.toString('latin1')), partials: () => records.map((r) => r.partial) };
}

const push = (f: LineFramer, ...chunks: (string | Buffer)[]): void => {
  for (const chunk of chunks) f.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
};

/** A small deterministic PRNG, so a failing split can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
}

describe('LineFramer', () => {
  it('joins lines across chunk boundaries', () => {
    const { f, lines, partials } = framer();
    push(f, 'ab', 'c\nde', 'f', '\ng\n', 'h\ni\n');
    expect(lines()).toEqual(['abc', 'def', 'g', 'h', 'i']);
    expect(partials()).toEqual([false, false, false, false, false]);
    f.end();
    expect(lines()).toHaveLength(5);
  });

  it('keeps empty lines', () => {
    const { f, lines } = framer();
    push(f, '\n\na\n\n', '\n');
    expect(lines()).toEqual(['', '', 'a', '', '']);
  });

  it('strips the CR of a CRLF line, also across chunks; keeps any other CR', () => {
    const { f, lines } = framer();
    push(f, 'a\r\nb\r', '\nc\rd\n\r\r\n', '\re\n');
    expect(lines()).toEqual(['a', 'b', 'c\rd', '\r', '\re']);
  });

  it('keeps invalid UTF-8 raw in bytes; utf8Bytes() and text() replace it', () => {
    const { f, records } = framer();
    const bad = Buffer.from([0x61, 0xff, 0xfe, 0x62, 0xc3]); // a, two invalid bytes, b, a truncated sequence
    f.push(Buffer.concat([bad, Buffer.from('\n')]));
    expect(records[0].bytes.equals(bad)).toBe(true);
    expect(utf8Bytes(records[0]).toString('utf8')).toBe('a\uFFFD\uFFFDb\uFFFD');
    expect(isUtf8(utf8Bytes(records[0]))).toBe(true);
    expect(text(records[0])).toBe('a\uFFFD\uFFFDb\uFFFD');
  });

  it('passes valid UTF-8 through utf8Bytes() without copying', () => {
    const { f, records } = framer();
    f.push(Buffer.from('grüße 😀\n'));
    // The same memory as the chunk: no copy was made.
    const bytes = utf8Bytes(records[0]);
    const view = records[0].bytes;
    expect([bytes.buffer, bytes.byteOffset, bytes.length]).toEqual([view.buffer, view.byteOffset, view.length]);
    expect(text(records[0])).toBe('grüße 😀');
  });

  it('keeps NUL bytes', () => {
    const { f, records } = framer();
    f.push(Buffer.from([0x61, 0x00, 0x62, 0x0a, 0x00, 0x0a]));
    expect(records.map((r) => [...r.bytes])).toEqual([[0x61, 0x00, 0x62], [0x00]]);
  });

  it('cuts a line longer than max_line_bytes into partial records', () => {
    const { f, records } = framer({ maxLineBytes: 64 });
    const line = 'x'.repeat(150);
    push(f, `${line}\nnext\n`);
    expect(records.map((r) => r.bytes.length)).toEqual([64, 64, 22, 4]);
    expect(records.map((r) => r.partial)).toEqual([true, true, false, false]);
    expect(Buffer.concat(records.slice(0, 3).map((r) => r.bytes)).toString()).toBe(line);
  });

  it('a line of exactly max_line_bytes is one record, also with its CRLF', () => {
    const { f, lines, partials } = framer({ maxLineBytes: 64 });
    const line = 'y'.repeat(64);
    push(f, `${line}\n${line}\r\n`, line.slice(0, 10), `${line.slice(10)}\r\n`, `${line}\r`, '\n');
    expect(lines()).toEqual([line, line, line, line]);
    expect(partials()).toEqual([false, false, false, false]);
  });

  it('cuts at a UTF-8 character boundary, for 2, 3 and 4 byte characters at every offset', () => {
    for (const char of ['é', '€', '😀']) {
      for (let offset = 0; offset < 4; offset++) {
        const { f, records } = framer({ maxLineBytes: 64 });
        const line = Buffer.from('a'.repeat(offset) + char.repeat(100));
        f.push(Buffer.concat([line, Buffer.from('\n')]));
        const what = `${char} after ${offset} ASCII bytes`;
        for (const [i, record] of records.entries()) {
          expect(isUtf8(record.bytes), what).toBe(true);
          expect(record.bytes.length, what).toBeLessThanOrEqual(64);
          // Backing off to a boundary costs at most 3 bytes.
          if (i < records.length - 1) expect(record.bytes.length, what).toBeGreaterThan(60);
        }
        expect(Buffer.concat(records.map((r) => r.bytes)).equals(line), what).toBe(true);
        expect(records.at(-1)!.partial).toBe(false);
      }
    }
  });

  it('cuts invalid UTF-8 at the limit rather than backing off forever', () => {
    const { f, records } = framer({ maxLineBytes: 64 });
    const line = Buffer.alloc(200, 0x80); // continuation bytes only
    f.push(Buffer.concat([line, Buffer.from('\n')]));
    expect(records.map((r) => r.bytes.length)).toEqual([64, 64, 64, 8]);
    expect(Buffer.concat(records.map((r) => r.bytes)).equals(line)).toBe(true);
  });

  it('frames a 32 MB line arriving in 64 KiB chunks in bounded memory and linear time', () => {
    const max = 64 * 1024;
    let emitted = 0;
    let records = 0;
    let largest = 0;
    let held = 0;
    const f = new LineFramer({ maxLineBytes: max, partialFlushMs: 1000 }, () => META, (r) => {
      emitted += r.bytes.length;
      records++;
      largest = Math.max(largest, r.bytes.length);
    });
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    const total = 32 * 1024 * 1024;
    const started = performance.now();
    for (let pushed = chunk.length; pushed <= total; pushed += chunk.length) {
      f.push(chunk);
      // What the framer still holds is what came in and has not gone out.
      held = Math.max(held, pushed - emitted);
    }
    f.push(Buffer.from('\n'));
    const elapsed = performance.now() - started;
    expect(emitted).toBe(total);
    expect(records).toBe(total / max);
    expect(largest).toBe(max);
    expect(held).toBeLessThanOrEqual(max);
    expect(elapsed).toBeLessThan(500);
  });

  it('frames a 32 MB line under a 64 MB limit as one record in linear time', () => {
    const { f, records } = framer({ maxLineBytes: 64 * 1024 * 1024 });
    const chunk = Buffer.alloc(64 * 1024, 0x79);
    const started = performance.now();
    for (let i = 0; i < 512; i++) f.push(chunk);
    f.push(Buffer.from('\n'));
    expect(performance.now() - started).toBeLessThan(500);
    expect(records).toHaveLength(1);
    expect(records[0].bytes.length).toBe(32 * 1024 * 1024);
    expect(records[0].partial).toBe(false);
  });

  it('frames a 4 MB line arriving 100 bytes at a time in linear time', () => {
    const { f, records } = framer({ maxLineBytes: 64 * 1024 });
    const chunk = Buffer.alloc(100, 0x7a);
    const started = performance.now();
    for (let i = 0; i < 40_000; i++) f.push(chunk);
    f.end();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(records.reduce((sum, r) => sum + r.bytes.length, 0)).toBe(4_000_000);
    expect(records.every((r) => r.bytes.length <= 64 * 1024)).toBe(true);
  });

  it('flushes an unterminated line after partial_flush_ms of silence, as partial', async () => {
    const { f, records, lines } = framer({ partialFlushMs: 150 });
    const started = Date.now();
    push(f, 'done\nprogress');
    expect(lines()).toEqual(['done']);
    await waitFor(() => records.length === 2, { timeoutMs: 2000, what: 'the idle flush' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(records[1].bytes.toString()).toBe('progress');
    expect(records[1].partial).toBe(true);
    // The rest of the line arrives later: it is a record of its own.
    push(f, ' 100%\n');
    expect(lines()).toEqual(['done', 'progress', ' 100%']);
    expect(records[2].partial).toBe(false);
  });

  it('each new byte restarts the idle clock', async () => {
    const { f, lines } = framer({ partialFlushMs: 300 });
    push(f, 'a');
    await sleep(150);
    push(f, 'b');
    await sleep(150);
    push(f, 'c');
    await sleep(150);
    expect(lines()).toEqual([]);
    await waitFor(() => lines().length === 1, { timeoutMs: 2000, what: 'the idle flush' });
    expect(lines()).toEqual(['abc']);
  });

  it('the newline that ends an idle-flushed line adds no empty record', async () => {
    const { f, records, lines } = framer({ partialFlushMs: 50 });
    push(f, 'waiting...');
    await waitFor(() => records.length === 1, { timeoutMs: 2000, what: 'the idle flush' });
    push(f, '\nnext\n');
    expect(lines()).toEqual(['waiting...', 'next']);
    push(f, 'more\r');
    await waitFor(() => records.length === 3, { timeoutMs: 2000, what: 'the idle flush' });
    push(f, '\n', '\n');
    // The first newline ends the flushed line; the second is an empty line of its own.
    expect(lines()).toEqual(['waiting...', 'next', 'more\r', '']);
  });

  it('end() emits the unterminated last line as partial, once', async () => {
    const { f, records } = framer({ partialFlushMs: 50 });
    push(f, 'a\nlast');
    f.end();
    expect(records.map((r) => [r.bytes.toString(), r.partial])).toEqual([
      ['a', false],
      ['last', true],
    ]);
    await sleep(120);
    expect(records).toHaveLength(2);
  });

  it('end() after a complete line emits nothing more', () => {
    const { f, records } = framer();
    push(f, 'a\n');
    f.end();
    expect(records).toHaveLength(1);
  });

  it('keeps order and content under any chunking', () => {
    const random = prng(42);
    const expected: string[] = [];
    const parts: Buffer[] = [];
    for (let i = 0; i < 5000; i++) {
      const line = `${i} ${'é•x'.repeat(Math.floor(random() * 60))}`;
      expected.push(line);
      parts.push(Buffer.from(`${line}${random() < 0.3 ? '\r' : ''}\n`));
    }
    const input = Buffer.concat(parts);
    for (let round = 0; round < 5; round++) {
      const { f, records } = framer({ maxLineBytes: 512 });
      for (let at = 0; at < input.length; ) {
        const size = 1 + Math.floor(random() ** 3 * 8192);
        f.push(input.subarray(at, at + size));
        at += size;
      }
      f.end();
      expect(records.every((r) => !r.partial)).toBe(true);
      expect(records.map((r) => r.bytes.toString())).toEqual(expected);
    }
  });

  it('stamps each record with the metadata current when it is framed', () => {
    let meta = META;
    const { f, records } = framer({}, () => meta);
    push(f, 'one\ntw');
    meta = { ...META, task_id: 'web.1' };
    push(f, 'o\n');
    expect(records[0].meta.task_id).toBeUndefined();
    expect(records[1].meta.task_id).toBe('web.1');
  });

  it('stamps arrival time', () => {
    const { f, records } = framer();
    const before = Date.now();
    push(f, 'x\n');
    expect(records[0].time).toBeGreaterThanOrEqual(before);
    expect(records[0].time).toBeLessThanOrEqual(Date.now());
  });

  it('skip(): chunks nobody frames; framing resumes at the next line start', async () => {
    const { f, lines } = framer({ partialFlushMs: 50 });
    push(f, 'a\nb');
    f.skip(Buffer.from('cd'));
    push(f, 'e\nf\n');
    // "b" was pending when skipping began and "bcde" is one line: none of it is framed.
    expect(lines()).toEqual(['a', 'f']);
    f.skip(Buffer.from('x\n'));
    push(f, 'y\n');
    expect(lines()).toEqual(['a', 'f', 'y']);
    f.skip(Buffer.from('x'));
    push(f, 'still the same line');
    push(f, ' until here\nz\n');
    expect(lines()).toEqual(['a', 'f', 'y', 'z']);
    push(f, 'pending');
    f.skip(Buffer.from('more\n'));
    await sleep(120);
    // The idle flush of the dropped partial line does not fire.
    expect(lines()).toEqual(['a', 'f', 'y', 'z']);
  });

  it('reconfigure() applies a new limit from the next chunk', () => {
    const { f, records } = framer({ maxLineBytes: 1024 });
    push(f, `${'a'.repeat(100)}\n`);
    f.reconfigure({ maxLineBytes: 64, partialFlushMs: 1000 });
    push(f, `${'b'.repeat(100)}\n`);
    expect(records.map((r) => r.bytes.length)).toEqual([100, 64, 36]);
  });
});

describe('RecordQueue', () => {
  const rec = (s: string): LogRecord => lineRecord(Buffer.from(s), false, 0, META);
  const texts = (records: LogRecord[]): string[] => records.map((r) => r.bytes.toString());

  it('is FIFO and keeps a byte total', () => {
    const q = new RecordQueue();
    expect(q.shift()).toBeUndefined();
    for (const s of ['a', 'bb', 'ccc']) q.push(rec(s));
    expect(q.length).toBe(3);
    expect(q.bytes).toBe(6);
    expect(q.shift()!.bytes.toString()).toBe('a');
    expect(q.length).toBe(2);
    expect(q.bytes).toBe(5);
  });

  it('take() respects the line and byte limits and always takes one record', () => {
    const q = new RecordQueue();
    for (let i = 0; i < 10; i++) q.push(rec(`${i}`.repeat(10)));
    expect(texts(q.take(3, 1 << 20))).toEqual(['0'.repeat(10), '1'.repeat(10), '2'.repeat(10)]);
    expect(q.take(100, 25)).toHaveLength(2);
    expect(q.take(100, 1)).toHaveLength(1);
    expect(q.length).toBe(4);
    expect(q.bytes).toBe(40);
  });

  it('unshiftAll() puts a failed batch back in front, in order', () => {
    const q = new RecordQueue();
    for (const s of ['a', 'b', 'c', 'd']) q.push(rec(s));
    const batch = q.take(2, 1 << 20);
    q.push(rec('e'));
    q.unshiftAll(batch);
    expect(q.bytes).toBe(5);
    expect(texts(q.take(100, 1 << 20))).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(q.bytes).toBe(0);
  });

  it('stays correct across compaction of a long queue', () => {
    const q = new RecordQueue();
    let next = 0;
    let expect_ = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 1000; i++) q.push(rec(String(next++)));
      for (let i = 0; i < 900; i++) expect(q.shift()!.bytes.toString()).toBe(String(expect_++));
    }
    expect(q.length).toBe(next - expect_);
    let bytes = 0;
    for (let i = expect_; i < next; i++) bytes += String(i).length;
    expect(q.bytes).toBe(bytes);
  });
});
