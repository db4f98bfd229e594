// LineBuffer: one sink's raw stream bytes, cut into line records when a batch is taken. Used directly: time is the
// `now` handed to take(), so idle flushes are deterministic.
import { isUtf8 } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import {
  CHUNK_ENTRY_BYTES,
  LineBuffer,
  type BufferConfig,
  type LineOptions,
  type Taken,
} from '../src/lines/line-buffer.js';
import type { LineBatch } from '../src/lines/line-batch.js';
import { BatchBuilder } from '../src/lines/batch-builder.js';
import { utf8Bytes, type LogRecord } from '../src/lines/record.js';
import { metadataFromPath, type StreamMetadata } from '../src/mesos/metadata.js';

const META = metadataFromPath('/var/lib/mesos/slaves/S1/frameworks/F1/executors/E1/runs/C1/stdout');

/** Arrival time of the chunks unless a test says otherwise. */
const T = 1_700_000_000_000;

function make(lines: Partial<LineOptions> = {}, limits: Partial<BufferConfig> = {}): LineBuffer {
  return new LineBuffer(
    { maxBytes: 64 * 1024 * 1024, whenFull: 'drop_oldest', ...limits },
    { maxLineBytes: 64 * 1024, partialFlushMs: 1000, ...lines },
  );
}

const bytes = (chunk: string | Buffer): Buffer => (typeof chunk === 'string' ? Buffer.from(chunk) : chunk);

const put = (b: LineBuffer, chunk: string | Buffer, time = T, meta = META): void => b.append(bytes(chunk), time, meta);

/**
 * One take() as a batch of its own, as a sink with one stream builds it; with `into`, in reused memory. The batch
 * carries what settle() needs.
 */
function take(b: LineBuffer, maxLines: number, maxBytes: number, now: number, into?: Buffer): (LineBatch & Taken) | undefined {
  const builder = new BatchBuilder(into);
  const taken = b.take(builder, maxLines, maxBytes, now);
  return taken && Object.assign(builder.build(), { own: taken.own });
}

/** Takes and settles batches until nothing more is due at `now`: what a sink that keeps up would send. */
function drain(b: LineBuffer, now = T, maxLines = 1024, maxBytes = 1 << 20): LogRecord[] {
  const records: LogRecord[] = [];
  for (let batch = take(b, maxLines, maxBytes, now); batch; batch = take(b, maxLines, maxBytes, now)) {
    records.push(...batch.records);
    b.settle(batch);
  }
  return records;
}

const texts = (records: LogRecord[]): string[] => records.map((r) => r.bytes.toString());
const partials = (records: LogRecord[]): boolean[] => records.map((r) => r.partial);
const newlines = (buf: Buffer): number => buf.reduce((n, byte) => n + (byte === 0x0a ? 1 : 0), 0);

/** in = sent + dropped + buffered, for lines (against what was written) and bytes. */
function expectBalanced(b: LineBuffer, linesWritten: number, bytesWritten: number): void {
  const { linesSent, linesDropped, bytesIn, bytesSent, bytesDropped } = b.counters;
  const held = b.buffered();
  expect(linesSent + linesDropped + held.lines, 'lines: sent + dropped + buffered').toBe(linesWritten);
  expect(bytesIn, 'bytesIn').toBe(bytesWritten);
  expect(bytesSent + bytesDropped + held.bytes, 'bytes: sent + dropped + buffered').toBe(bytesWritten);
}

/** A small deterministic PRNG, so a failing split can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
}

/** What a sink does when it rejoins the stream mid-line without the line's start. */
const rejoinMidLine = (b: LineBuffer): void => {
  b.dropUnterminated('detached');
  b.skipToNextLine();
};

describe('LineBuffer: cutting lines', () => {
  it('joins lines across chunk boundaries, and holds a line until its newline comes', () => {
    const b = make();
    put(b, 'ab');
    expect(take(b, 1024, 1 << 20, T)).toBeUndefined();
    const records: LogRecord[] = [];
    for (const chunk of ['c\nde', 'f', '\ng\n', 'h\ni\n']) {
      put(b, chunk);
      records.push(...drain(b));
    }
    expect(texts(records)).toEqual(['abc', 'def', 'g', 'h', 'i']);
    expect(partials(records)).toEqual([false, false, false, false, false]);
    b.end();
    expect(drain(b)).toEqual([]);
    expect(b.counters).toEqual({ bytesIn: 14, linesSent: 5, bytesSent: 14, linesDropped: 0, bytesDropped: 0 });
    expect(b.buffered()).toEqual({ lines: 0, bytes: 0 });
  });

  it('keeps empty lines', () => {
    const b = make();
    put(b, '\n\na\n\n');
    put(b, '\n');
    expect(texts(drain(b))).toEqual(['', '', 'a', '', '']);
    expect(b.counters.linesSent).toBe(5);
  });

  it('strips the CR of a CRLF line, also across chunks; keeps any other CR; counts the CRs as bytes', () => {
    const b = make();
    const records: LogRecord[] = [];
    for (const chunk of ['a\r\nb\r', '\nc\rd\n\r\r\n', '\re\n']) {
      put(b, chunk);
      records.push(...drain(b));
    }
    expect(texts(records)).toEqual(['a', 'b', 'c\rd', '\r', '\re']);
    expect(records.map((r) => r.size)).toEqual([1, 1, 3, 1, 2]);
    expect(b.counters.bytesSent).toBe(16);
    expect(b.counters.linesSent).toBe(5);
  });

  it('keeps invalid UTF-8 raw in bytes; utf8Bytes() replaces it', () => {
    const b = make();
    const bad = Buffer.from([0x61, 0xff, 0xfe, 0x62, 0xc3]); // a, two invalid bytes, b, a truncated sequence
    put(b, Buffer.concat([bad, Buffer.from('\n')]));
    const [record] = drain(b);
    expect(record.bytes.equals(bad)).toBe(true);
    expect(utf8Bytes(record).toString('utf8')).toBe('a\uFFFD\uFFFDb\uFFFD');
    expect(isUtf8(utf8Bytes(record))).toBe(true);
  });

  it('passes valid UTF-8 through utf8Bytes() without copying', () => {
    const b = make();
    put(b, 'grüße 😀\n');
    const [record] = drain(b);
    const out = utf8Bytes(record);
    const view = record.bytes;
    expect([out.buffer, out.byteOffset, out.length]).toEqual([view.buffer, view.byteOffset, view.length]);
    expect(out.toString()).toBe('grüße 😀');
  });

  it('a batch gives each line as a view of its bytes; utf8() replaces only the lines that need it', () => {
    const b = make();
    put(b, Buffer.concat([Buffer.from('grüße\r\n'), Buffer.from([0x61, 0xff, 0x0a]), Buffer.from('ok\n')]));
    const batch = take(b, 1024, 1 << 20, T)!;
    expect(batch.validUtf8).toBe(false);
    expect(batch.count).toBe(3);
    expect(Buffer.from(batch.raw(0)).toString()).toBe('grüße');
    expect(batch.utf8(0).buffer).toBe(batch.data.buffer); // valid: no copy
    expect(Buffer.from(batch.raw(1))).toEqual(Buffer.from([0x61, 0xff]));
    expect(Buffer.from(batch.utf8(1)).toString()).toBe('a\uFFFD');
    expect(Buffer.from(batch.utf8(2)).toString()).toBe('ok');
    expect([batch.lines, batch.bytes]).toEqual([3, 9 + 3 + 3]); // grüße is 7 bytes
  });

  it('keeps NUL bytes', () => {
    const b = make();
    put(b, Buffer.from([0x61, 0x00, 0x62, 0x0a, 0x00, 0x0a]));
    expect(drain(b).map((r) => [...r.bytes])).toEqual([[0x61, 0x00, 0x62], [0x00]]);
  });

  it('cuts a line longer than max_line_bytes into partial records; only its newline counts as a line', () => {
    const b = make({ maxLineBytes: 64 });
    const line = 'x'.repeat(150);
    put(b, `${line}\nnext\n`);
    const records = drain(b);
    expect(records.map((r) => r.size)).toEqual([64, 64, 22, 4]);
    expect(partials(records)).toEqual([true, true, false, false]);
    expect(texts(records.slice(0, 3)).join('')).toBe(line);
    expect(b.counters).toEqual({ bytesIn: 156, linesSent: 2, bytesSent: 156, linesDropped: 0, bytesDropped: 0 });
  });

  it('a line of exactly max_line_bytes is one record, also with its CRLF split over chunks', () => {
    const b = make({ maxLineBytes: 64 });
    const line = 'y'.repeat(64);
    const records: LogRecord[] = [];
    // Taking after every chunk: a held 65th byte may be the CR of a CRLF and must not be cut off as a piece.
    for (const chunk of [`${line}\n${line}\r\n`, line.slice(0, 10), `${line.slice(10)}\r\n`, `${line}\r`, '\n']) {
      put(b, chunk);
      records.push(...drain(b));
    }
    expect(texts(records)).toEqual([line, line, line, line]);
    expect(partials(records)).toEqual([false, false, false, false]);
  });

  it('cuts at a UTF-8 character boundary, for 2, 3 and 4 byte characters at every offset', () => {
    for (const char of ['é', '€', '😀']) {
      for (let offset = 0; offset < 4; offset++) {
        const b = make({ maxLineBytes: 64 });
        const line = Buffer.from('a'.repeat(offset) + char.repeat(100));
        put(b, Buffer.concat([line, Buffer.from('\n')]));
        const records = drain(b);
        const what = `${char} after ${offset} ASCII bytes`;
        for (const [i, record] of records.entries()) {
          expect(isUtf8(record.bytes), what).toBe(true);
          expect(record.size, what).toBeLessThanOrEqual(64);
          // Backing off to a boundary costs at most 3 bytes.
          if (i < records.length - 1) expect(record.size, what).toBeGreaterThan(60);
        }
        expect(Buffer.concat(records.map((r) => r.bytes)).equals(line), what).toBe(true);
        expect(records.at(-1)!.partial, what).toBe(false);
        expect(b.counters.linesSent, what).toBe(1);
      }
    }
  });

  it('cuts at a UTF-8 boundary also where a character straddles two of its segments', () => {
    // 3-byte characters after 1 ASCII byte: some character spans every 32 KiB segment boundary.
    const b = make({ maxLineBytes: 1000 });
    const line = Buffer.from(`a${'€'.repeat(40_000)}`);
    put(b, Buffer.concat([line, Buffer.from('\n')]));
    const records = drain(b);
    expect(records.slice(0, -1).every((r) => isUtf8(r.bytes) && r.size <= 1000 && r.size > 996)).toBe(true);
    expect(isUtf8(records.at(-1)!.bytes)).toBe(true);
    expect(Buffer.concat(records.map((r) => r.bytes)).equals(line)).toBe(true);
  });

  it('cuts invalid UTF-8 at the limit rather than backing off forever', () => {
    const b = make({ maxLineBytes: 64 });
    const line = Buffer.alloc(200, 0x80); // continuation bytes only
    put(b, Buffer.concat([line, Buffer.from('\n')]));
    const records = drain(b);
    expect(records.map((r) => r.size)).toEqual([64, 64, 64, 8]);
    expect(Buffer.concat(records.map((r) => r.bytes)).equals(line)).toBe(true);
  });

  it('cuts a 32 MB line arriving in 64 KiB chunks as it comes: bounded holding, linear time', () => {
    const max = 64 * 1024;
    const b = make({ maxLineBytes: max });
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    const total = 32 * 1024 * 1024;
    let sent = 0;
    let records = 0;
    let largest = 0;
    let held = 0;
    const started = performance.now();
    for (let i = 0; i < total / chunk.length; i++) {
      put(b, chunk, T + i);
      for (const r of drain(b, T + i)) {
        sent += r.size;
        records++;
        largest = Math.max(largest, r.size);
        expect(r.partial).toBe(true);
      }
      held = Math.max(held, b.buffered().bytes);
    }
    put(b, '\n', T + total);
    const last = drain(b, T + total);
    const elapsed = performance.now() - started;
    expect(last.map((r) => [r.size, r.partial])).toEqual([[max, false]]);
    expect(sent + last[0].size).toBe(total);
    expect(records + 1).toBe(total / max);
    expect(largest).toBe(max);
    // A piece is cut once more than max + 1 bytes are held (the extra byte may be a CR).
    expect(held).toBeLessThanOrEqual(max + 1);
    expect(b.counters).toEqual({ bytesIn: total + 1, linesSent: 1, bytesSent: total + 1, linesDropped: 0, bytesDropped: 0 });
    expect(elapsed).toBeLessThan(1000);
  });

  it('holds a 32 MB line in 64 KiB chunks in a large buffer, then cuts it at once in linear time', () => {
    const b = make({ maxLineBytes: 64 * 1024 }, { maxBytes: 64 * 1024 * 1024 });
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    const started = performance.now();
    for (let i = 0; i < 512; i++) put(b, chunk, T + i);
    put(b, '\n', T + 512);
    expect(b.buffered()).toEqual({ lines: 1, bytes: 32 * 1024 * 1024 + 1 });
    const records = drain(b, T + 512);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(records).toHaveLength(512);
    expect(records.every((r) => r.size === 64 * 1024)).toBe(true);
    expect(records.filter((r) => !r.partial)).toHaveLength(1);
    expect(records.at(-1)!.partial).toBe(false);
    expect(b.counters.linesDropped).toBe(0);
  });

  it('sends a 32 MB line under a 64 MB limit as one record in linear time', () => {
    const b = make({ maxLineBytes: 64 * 1024 * 1024 }, { maxBytes: 64 * 1024 * 1024 });
    const chunk = Buffer.alloc(64 * 1024, 0x79);
    const started = performance.now();
    for (let i = 0; i < 512; i++) {
      put(b, chunk, T + i);
      expect(take(b, 1024, 1 << 20, T + i)).toBeUndefined();
    }
    put(b, '\n', T + 512);
    const records = drain(b, T + 512);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(records).toHaveLength(1);
    expect(records[0].size).toBe(32 * 1024 * 1024);
    expect(records[0].bytes.equals(Buffer.alloc(32 * 1024 * 1024, 0x79))).toBe(true);
    expect(records[0].partial).toBe(false);
  });

  it('cuts a 4 MB line arriving 100 bytes at a time in linear time', () => {
    const b = make({ maxLineBytes: 64 * 1024 });
    const chunk = Buffer.alloc(100, 0x7a);
    const records: LogRecord[] = [];
    const started = performance.now();
    for (let i = 0; i < 40_000; i++) {
      put(b, chunk, T + i);
      records.push(...drain(b, T + i));
    }
    b.end();
    records.push(...drain(b, T + 40_000));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(records.reduce((sum, r) => sum + r.size, 0)).toBe(4_000_000);
    expect(records.map((r) => r.size)).toEqual([...Array<number>(61).fill(64 * 1024), 4_000_000 - 61 * 64 * 1024]);
    // Never ended by a newline: every record is partial, and the line counts once, at end().
    expect(records.every((r) => r.partial)).toBe(true);
    expect(b.counters.linesSent).toBe(1);
  });
});

describe('LineBuffer: idle flush and end of stream', () => {
  it('flushes an unterminated line after partial_flush_ms without input, as partial', () => {
    const b = make({ partialFlushMs: 150 });
    put(b, 'done\nprogress', T);
    expect(texts(drain(b, T))).toEqual(['done']);
    expect(b.flushDueAt()).toBe(T + 150);
    expect(take(b, 1024, 1 << 20, T + 149)).toBeUndefined();
    const flushed = drain(b, T + 150);
    expect(flushed.map((r) => [r.bytes.toString(), r.partial, r.time])).toEqual([['progress', true, T]]);
    expect(b.flushDueAt()).toBeUndefined();
    // Not a line yet: its newline has not come.
    expect(b.counters.linesSent).toBe(1);
    // The rest of the line arrives later: it is a record of its own.
    put(b, ' 100%\n', T + 200);
    const rest = drain(b, T + 200);
    expect(rest.map((r) => [r.bytes.toString(), r.partial])).toEqual([[' 100%', false]]);
    expect(b.counters).toEqual({ bytesIn: 19, linesSent: 2, bytesSent: 19, linesDropped: 0, bytesDropped: 0 });
  });

  it('each new byte restarts the idle clock', () => {
    const b = make({ partialFlushMs: 300 });
    put(b, 'a', T);
    expect(drain(b, T + 150)).toEqual([]);
    put(b, 'b', T + 150);
    expect(drain(b, T + 300)).toEqual([]);
    put(b, 'c', T + 300);
    expect(drain(b, T + 450)).toEqual([]);
    expect(b.flushDueAt()).toBe(T + 600);
    expect(drain(b, T + 599)).toEqual([]);
    const records = drain(b, T + 600);
    expect(records.map((r) => [r.bytes.toString(), r.partial, r.time])).toEqual([['abc', true, T + 300]]);
  });

  it('the newline that ends an idle-flushed line adds no empty record', () => {
    const b = make({ partialFlushMs: 50 });
    const records: LogRecord[] = [];
    put(b, 'waiting...', T);
    records.push(...drain(b, T + 50));
    expect(texts(records)).toEqual(['waiting...']);
    put(b, '\nnext\n', T + 60);
    records.push(...drain(b, T + 60));
    expect(texts(records)).toEqual(['waiting...', 'next']);
    put(b, 'more\r', T + 70);
    records.push(...drain(b, T + 120));
    // Flushed before its newline came, the CR is the line's own byte.
    expect(texts(records)).toEqual(['waiting...', 'next', 'more\r']);
    // Nothing new: the owed newline stays owed.
    expect(drain(b, T + 500)).toEqual([]);
    put(b, '\n', T + 600);
    put(b, '\n', T + 601);
    records.push(...drain(b, T + 601));
    // The first newline ends the flushed line; the second is an empty line of its own.
    expect(texts(records)).toEqual(['waiting...', 'next', 'more\r', '']);
    expect(partials(records)).toEqual([true, false, true, false]);
    expect(b.counters).toEqual({ bytesIn: 23, linesSent: 4, bytesSent: 23, linesDropped: 0, bytesDropped: 0 });
    expect(b.buffered()).toEqual({ lines: 0, bytes: 0 });
  });

  it('after an idle flush, a next byte other than a newline starts a new line', () => {
    const b = make({ partialFlushMs: 50 });
    put(b, 'abc', T);
    expect(texts(drain(b, T + 50))).toEqual(['abc']);
    put(b, 'def\n', T + 60);
    expect(drain(b, T + 60).map((r) => [r.bytes.toString(), r.partial])).toEqual([['def', false]]);
    expect(b.counters.linesSent).toBe(1);
  });

  it('end() sends the unterminated last line as partial, once, and counts it as a line', () => {
    const b = make({ partialFlushMs: 50 });
    put(b, 'a\nlast', T);
    expect(b.buffered()).toEqual({ lines: 1, bytes: 6 });
    b.end();
    expect(b.buffered()).toEqual({ lines: 2, bytes: 6 });
    expect(b.flushDueAt()).toBeUndefined();
    expect(drain(b, T).map((r) => [r.bytes.toString(), r.partial])).toEqual([
      ['a', false],
      ['last', true],
    ]);
    expect(drain(b, T + 10_000)).toEqual([]);
    expect(b.counters).toEqual({ bytesIn: 6, linesSent: 2, bytesSent: 6, linesDropped: 0, bytesDropped: 0 });
    expect(b.buffered()).toEqual({ lines: 0, bytes: 0 });
  });

  it('end() after a complete line sends nothing more', () => {
    const b = make();
    put(b, 'a\n');
    b.end();
    expect(texts(drain(b, T + 10_000))).toEqual(['a']);
    expect(b.counters.linesSent).toBe(1);
  });

  it('end() after an idle flush sends nothing more; the flushed last line still counts as a line', () => {
    const b = make({ partialFlushMs: 50 });
    put(b, 'a\npart', T);
    expect(texts(drain(b, T + 50))).toEqual(['a', 'part']);
    b.end();
    expect(drain(b, T + 100)).toEqual([]);
    expect(b.buffered()).toEqual({ lines: 0, bytes: 0 });
    // One newline plus the unterminated last line, as when end() comes before the idle flush.
    expect(b.counters).toEqual({ bytesIn: 6, linesSent: 2, bytesSent: 6, linesDropped: 0, bytesDropped: 0 });
  });

  it('an unterminated line flushed after idle or at end is cut to max_line_bytes too', () => {
    // max + 1 bytes are held back (the last may be a CR); flushed as they are, they would make a record too long.
    for (const ended of [false, true]) {
      const b = make({ maxLineBytes: 64, partialFlushMs: 50 });
      put(b, 'y'.repeat(65), T);
      expect(drain(b, T), `ended: ${ended}`).toEqual([]);
      if (ended) b.end();
      const records = drain(b, T + 50);
      expect(records.map((r) => [r.size, r.partial]), `ended: ${ended}`).toEqual([
        [64, true],
        [1, true],
      ]);
    }
  });
});

describe('LineBuffer: order, metadata, joining, reconfiguring', () => {
  it('keeps order and content under any chunking and any take limits', () => {
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
      const b = make({ maxLineBytes: 512 });
      const records: LogRecord[] = [];
      for (let at = 0; at < input.length; ) {
        const size = 1 + Math.floor(random() ** 3 * 8192);
        const now = T + at;
        put(b, input.subarray(at, at + size), now);
        at += size;
        if (random() < 0.5) {
          const batch = take(b, 1 + Math.floor(random() * 50), 1 + Math.floor(random() * 4096), now);
          if (batch) {
            records.push(...batch.records);
            b.settle(batch);
          }
        }
      }
      b.end();
      records.push(...drain(b, T + input.length));
      expect(records.every((r) => !r.partial)).toBe(true);
      expect(texts(records)).toEqual(expected);
      expect(b.counters).toEqual({
        bytesIn: input.length,
        linesSent: 5000,
        bytesSent: input.length,
        linesDropped: 0,
        bytesDropped: 0,
      });
    }
  });

  it('stamps a line with the time and metadata of the chunk holding its newline', () => {
    const b = make();
    const enriched: StreamMetadata = { ...META, task_id: 'web.1' };
    put(b, 'one\ntw', T, META);
    put(b, 'o\nthree\n', T + 5, enriched);
    const records = drain(b, T + 5);
    expect(records.map((r) => [r.bytes.toString(), r.time])).toEqual([
      ['one', T],
      ['two', T + 5],
      ['three', T + 5],
    ]);
    expect(records[0].meta).toBe(META);
    expect(records[1].meta).toBe(enriched);
    expect(records[2].meta).toBe(enriched);
  });

  it('does not merge arrivals of the same time from different writers', () => {
    const b = make();
    const other: StreamMetadata = { ...META, task_id: 'web.2' };
    put(b, 'a\n', T, META);
    put(b, 'b\n', T, other);
    put(b, 'c\n', T, META);
    expect(drain(b).map((r) => r.meta)).toEqual([META, other, META]);
    expect(drain(b).length).toBe(0);
  });

  it('stamps a piece of a long line with the arrival of its last byte', () => {
    const b = make({ maxLineBytes: 4 });
    put(b, 'abc', T + 1);
    put(b, 'defgh', T + 2);
    put(b, '\n', T + 3);
    expect(drain(b, T + 3).map((r) => [r.bytes.toString(), r.partial, r.time])).toEqual([
      ['abcd', true, T + 2],
      ['efgh', false, T + 3],
    ]);
  });

  it('rejoining mid-line (dropUnterminated + skipToNextLine): bytes up to the next newline are not taken, and count as dropped (detached) with their line', () => {
    const b = make({ partialFlushMs: 50 });
    rejoinMidLine(b);
    put(b, 'cd', T);
    put(b, 'e\nf\n', T + 1);
    expect(texts(drain(b, T + 1))).toEqual(['f']);
    rejoinMidLine(b);
    put(b, 'still the same line', T + 2);
    // The unseen line's bytes are not held: nothing to flush after idle.
    expect(b.flushDueAt()).toBeUndefined();
    expect(drain(b, T + 10_000)).toEqual([]);
    put(b, ' until here\nz\n', T + 3);
    expect(texts(drain(b, T + 3))).toEqual(['z']);
    rejoinMidLine(b);
    // The newline ends the unseen line: no empty record.
    put(b, '\nnext\n', T + 4);
    expect(texts(drain(b, T + 4))).toEqual(['next']);
    // Skipped: 'cd' 'e\n', 'still the same line' ' until here\n', '\n': three lines, 36 bytes.
    expect(b.counters).toEqual({ bytesIn: 45, linesSent: 3, bytesSent: 9, linesDropped: 3, bytesDropped: 36 });
    expect(b.droppedBy.detached).toEqual({ lines: 3, bytes: 36 });
  });

  it('rejoining mid-line and the stream ends inside that line: its rest counts as one dropped line (detached)', () => {
    const b = make();
    rejoinMidLine(b);
    put(b, 'rest of a line that never ends', T);
    b.end();
    expect(drain(b, T)).toEqual([]);
    expect(b.counters).toEqual({ bytesIn: 30, linesSent: 0, bytesSent: 0, linesDropped: 1, bytesDropped: 30 });
    expect(b.buffered()).toEqual({ lines: 0, bytes: 0 });
  });

  it('rejoining mid-line while the start of a line is held: the held start is not spliced onto a later line', () => {
    const b = make({ partialFlushMs: 50 });
    put(b, 'a\nb', T);
    // The stream went on (bytes this buffer never got) and the buffer joins it again mid-line.
    rejoinMidLine(b);
    put(b, 'e\nf\n', T + 1);
    const records = drain(b, T + 1_000);
    // The old framer dropped the held start ("b" and "bcde" were one line); at most it may go as a partial piece.
    expect(texts(records)).not.toContain('bf');
    expect(records.filter((r) => !r.partial).map((r) => r.bytes.toString())).toEqual(['a', 'f']);
    expect(b.counters.bytesSent + b.counters.bytesDropped + b.buffered().bytes).toBe(b.counters.bytesIn);
  });

  it('reconfigure() applies the new limits to what is taken next', () => {
    const b = make({ maxLineBytes: 1024 });
    put(b, `${'a'.repeat(100)}\n`);
    expect(drain(b).map((r) => r.size)).toEqual([100]);
    b.reconfigure({ maxLineBytes: 64, partialFlushMs: 1000 });
    put(b, `${'b'.repeat(100)}\n`);
    expect(drain(b).map((r) => r.size)).toEqual([64, 36]);
    // Lines are cut when taken, so held lines are cut under the new limit too.
    put(b, `${'c'.repeat(100)}\n`);
    b.reconfigure({ maxLineBytes: 1024, partialFlushMs: 1000 });
    expect(drain(b).map((r) => r.size)).toEqual([100]);
    put(b, 'tail', T);
    expect(b.flushDueAt()).toBe(T + 1000);
    b.reconfigure({ maxLineBytes: 1024, partialFlushMs: 10 });
    expect(b.flushDueAt()).toBe(T + 10);
    expect(texts(drain(b, T + 10))).toEqual(['tail']);
  });
});

describe('LineBuffer: segments and take()', () => {
  it('keeps many MB in order across its 32 KiB segments, lines spanning several, taken a few at a time', () => {
    const random = prng(7);
    const b = make({ maxLineBytes: 1024 * 1024 }, { maxBytes: 4 * 1024 * 1024 });
    const expected: string[] = [];
    const parts: Buffer[] = [];
    for (let i = 0; expected.length < 4000; i++) {
      // Mostly short lines, some longer than a segment.
      const size = random() < 0.03 ? 32 * 1024 + Math.floor(random() * 70_000) : Math.floor(random() * 2000);
      const line = `${i}:${String.fromCharCode(97 + (i % 26)).repeat(size)}`;
      expected.push(line);
      parts.push(Buffer.from(`${line}\n`));
    }
    const input = Buffer.concat(parts);
    expect(input.length).toBeGreaterThan(8 * 1024 * 1024);
    const records: LogRecord[] = [];
    let at = 0;
    let now = T;
    while (at < input.length) {
      // Fill to some hundreds of KiB, then take part of it: the head moves through segments while bytes are held.
      while (at < input.length && b.buffered().bytes < 600 * 1024) {
        const size = 1 + Math.floor(random() * 40_000);
        now = T + at;
        put(b, input.subarray(at, at + size), now);
        at += size;
      }
      for (let k = Math.floor(random() * 30); k > 0; k--) {
        const batch = take(b, 1 + Math.floor(random() * 40), 1 << 20, now);
        if (!batch) break;
        records.push(...batch.records);
        b.settle(batch);
      }
    }
    records.push(...drain(b, now));
    expect(b.counters.linesDropped).toBe(0);
    expect(records.length).toBe(expected.length);
    for (let i = 0; i < expected.length; i++) {
      if (records[i].bytes.toString() !== expected[i]) expect(records[i].bytes.toString(), `line ${i}`).toBe(expected[i]);
    }
    expect(b.counters.bytesSent).toBe(input.length);
    expect(b.buffered()).toEqual({ lines: 0, bytes: 0 });
  });

  it('take() respects maxLines and stops after the line that reaches maxBytes, always taking one', () => {
    const b = make();
    for (let i = 0; i < 10; i++) put(b, `${String(i).repeat(9)}\n`);
    const first = take(b, 3, 1 << 20, T)!;
    expect(texts(first.records)).toEqual(['000000000', '111111111', '222222222']);
    expect([first.lines, first.bytes]).toEqual([3, 30]);
    // Lines are taken while fewer than maxBytes were: 0, 10 and 20 bytes before each.
    const second = take(b, 100, 25, T)!;
    expect(texts(second.records)).toEqual(['333333333', '444444444', '555555555']);
    expect([second.lines, second.bytes]).toEqual([3, 30]);
    const third = take(b, 100, 1, T)!;
    expect(texts(third.records)).toEqual(['666666666']);
    expect(b.buffered()).toEqual({ lines: 10, bytes: 100 });
    for (const batch of [first, second, third]) b.settle(batch);
    expect(b.buffered()).toEqual({ lines: 3, bytes: 30 });
    expect(b.counters.linesSent).toBe(7);
    expect(b.counters.bytesSent).toBe(70);
  });

  it('a builder with reused memory: bytes go there when they fit, arrays are views of its scratch', () => {
    const b = make();
    const into = Buffer.alloc(12);
    const builder = new BatchBuilder(into);
    put(b, 'one\ntwo\nthree\nfour and more\nfive\n');
    const took = b.take(builder, 2, 1 << 20, T)!;
    const first = builder.build();
    expect(took.own).toBe(false);
    expect(first.data.buffer).toBe(into.buffer);
    expect(first.data.toString()).toBe('one\ntwo\n');
    expect(texts(first.records)).toEqual(['one', 'two']);
    b.settle(took);
    builder.reset();
    const tookAgain = b.take(builder, 2, 1 << 20, T)!;
    const second = builder.build();
    expect(tookAgain.own).toBe(true);
    expect(second.data.buffer).not.toBe(into.buffer);
    expect(texts(second.records)).toEqual(['three', 'four and more']);
    expect(second.starts.buffer).toBe(first.starts.buffer);
    b.settle(tookAgain);
    // Without reused memory, a batch owns all it holds.
    const third = take(b, 2, 1 << 20, T)!;
    expect(third.starts.buffer).not.toBe(second.starts.buffer);
    expect(texts(third.records)).toEqual(['five']);
  });

  it('a batch in its own memory counts against max_bytes until settled; one in reused memory is for the sink to count', () => {
    // max_bytes 64: an arrival costs 32, so an empty buffer has room for 32 bytes, less what stays pinned.
    const line = `${'y'.repeat(24)}\n`;
    const own = make({}, { maxBytes: 64 });
    put(own, 'one\ntwo\n');
    const inFlight = take(own, 10, 1 << 20, T)!;
    put(own, line);
    expect(own.counters.linesDropped).toBe(1);
    own.settle(inFlight);
    put(own, line);
    expect(own.counters.linesDropped).toBe(1);
    const reused = make({}, { maxBytes: 64 });
    put(reused, 'one\ntwo\n');
    const reusedInFlight = take(reused, 10, 1 << 20, T, Buffer.alloc(16))!;
    put(reused, line);
    expect(reused.counters.linesDropped).toBe(0);
    reused.settle(reusedInFlight);
    expect(texts(drain(reused))).toEqual(['y'.repeat(24)]);
  });

  it('take() counts the pieces of a long line against maxLines, and the line when its last piece goes', () => {
    const b = make({ maxLineBytes: 64 });
    put(b, `${'x'.repeat(150)}\r\nok\n`);
    const pieces = take(b, 2, 1 << 20, T)!;
    expect(pieces.records.map((r) => [r.size, r.partial])).toEqual([
      [64, true],
      [64, true],
    ]);
    expect([pieces.lines, pieces.bytes]).toEqual([0, 128]);
    const rest = take(b, 1, 1, T)!;
    expect(rest.records.map((r) => [r.bytes.toString(), r.partial])).toEqual([['x'.repeat(22), false]]);
    expect([rest.lines, rest.bytes]).toEqual([1, 24]);
    const last = take(b, 1, 1, T)!;
    expect(texts(last.records)).toEqual(['ok']);
    expect(take(b, 1, 1, T)).toBeUndefined();
  });
});

describe('LineBuffer: when_full drop_oldest', () => {
  /** Ten 10-byte lines numbered from `first`: "0000000k\n" style, one chunk. */
  const tenLines = (first: number): Buffer =>
    Buffer.from(Array.from({ length: 10 }, (_, j) => `${String(first + j).padStart(9, '0')}\n`).join(''));

  it('keeps the newest whole lines, in order, and the counters add up', () => {
    const max = 1000;
    const b = make({}, { maxBytes: max, whenFull: 'drop_oldest' });
    for (let k = 0; k < 20; k++) {
      put(b, tenLines(k * 10), T + k);
      // Every chunk is its own arrival here, so the cost is exactly bytes + one entry per chunk still held.
      const held = b.buffered().bytes;
      // Whole lines go from the front, so the held bytes span the last ceil(held / 100) chunks.
      const arrivals = Math.ceil(held / 100);
      expect(held + arrivals * CHUNK_ENTRY_BYTES, `after chunk ${k}`).toBeLessThanOrEqual(max);
    }
    const held = b.buffered();
    const kept = held.lines;
    // Each new chunk evicts only the oldest lines it needs room for: 7 whole chunks and 4 lines of an eighth
    // (740 bytes + 8 arrivals * 32 = 996 <= 1000); one more line would not fit.
    expect(kept).toBe(74);
    expect(held.bytes).toBe(kept * 10);
    const records = drain(b, T + 20);
    const numbers = records.map((r) => Number(r.bytes.toString()));
    expect(numbers).toEqual(Array.from({ length: kept }, (_, i) => 200 - kept + i));
    expect(records.every((r) => !r.partial && r.size === 9)).toBe(true);
    expect(b.counters).toEqual({
      bytesIn: 2000,
      linesSent: kept,
      bytesSent: kept * 10,
      linesDropped: 200 - kept,
      bytesDropped: (200 - kept) * 10,
    });
    expectBalanced(b, 200, 2000);
  });

  it('evicts exactly the oldest lines it needs while arrivals stay held', () => {
    // 7 chunks of 100 bytes, one arrival each: 924. The 8th needs 56 more bytes: 6 whole lines go.
    const b = make({}, { maxBytes: 1000, whenFull: 'drop_oldest' });
    for (let k = 0; k < 8; k++) put(b, tenLines(k * 10), T + k);
    expect(b.counters.linesDropped).toBe(6);
    expect(b.counters.bytesDropped).toBe(60);
    expect(drain(b, T + 8).map((r) => Number(r.bytes.toString()))).toEqual(Array.from({ length: 74 }, (_, i) => 6 + i));
  });

  it('never evicts the batch in flight; its bytes count against max_bytes until settled', () => {
    const b = make({}, { maxBytes: 1000, whenFull: 'drop_oldest' });
    for (let k = 0; k < 5; k++) put(b, tenLines(k * 10), T);
    const inFlight = take(b, 20, 1 << 20, T)!;
    expect(inFlight.bytes).toBe(200);
    // Held: 300 bytes in one arrival; in flight 200. Room for new bytes: 1000 - 200 - 32 - 300 - 32 = 436.
    for (let k = 5; k < 15; k++) put(b, tenLines(k * 10), T + k);
    expect(texts(inFlight.records)).toEqual(Array.from({ length: 20 }, (_, i) => String(i).padStart(9, '0')));
    expect(b.counters.linesDropped).toBeGreaterThan(0);
    // Buffered: the 20 in flight and every later line not dropped.
    expect(b.buffered().lines).toBe(150 - b.counters.linesDropped);
    expect(b.counters.linesSent).toBe(0);
    b.settle(inFlight);
    expect(b.counters.linesSent).toBe(20);
    const rest = drain(b, T + 15).map((r) => Number(r.bytes.toString()));
    // The newest lines, in order, after the batch.
    expect(rest.at(-1)).toBe(149);
    expect(rest).toEqual(Array.from({ length: rest.length }, (_, i) => 150 - rest.length + i));
    expect(b.counters.linesDropped).toBe(150 - 20 - rest.length);
    expectBalanced(b, 150, 1500);
  });

  it('a chunk bigger than the whole buffer: all held goes, and the chunk keeps its newest whole lines that fit', () => {
    const max = 132; // room for 100 bytes and one arrival
    const b = make({}, { maxBytes: max, whenFull: 'drop_oldest' });
    put(b, 'old-1\nold-2\n', T);
    const lines = Array.from({ length: 40 }, (_, i) => `line-${i}-${'z'.repeat(i % 7)}`);
    const chunk = Buffer.from(lines.map((l) => `${l}\n`).join(''));
    put(b, chunk, T + 1);
    // The newest whole lines whose bytes (newlines included) fit in 100.
    const fit: string[] = [];
    for (let i = lines.length - 1, used = 0; i >= 0 && (used += lines[i].length + 1) <= 100; i--) fit.unshift(lines[i]);
    const keptBytes = fit.reduce((n, l) => n + l.length + 1, 0);
    expect(b.buffered()).toEqual({ lines: fit.length, bytes: keptBytes });
    expect(texts(drain(b, T + 1))).toEqual(fit);
    expect(b.counters.linesDropped).toBe(2 + 40 - fit.length);
    expect(b.counters.bytesDropped).toBe(12 + chunk.length - keptBytes);
    expectBalanced(b, 42, 12 + chunk.length);
  });

  it('a chunk bigger than what a batch in flight leaves: the batch stays, the chunk keeps what fits beside it', () => {
    const b = make({}, { maxBytes: 332, whenFull: 'drop_oldest' });
    put(b, tenLines(0), T);
    put(b, tenLines(10), T);
    const inFlight = take(b, 10, 1 << 20, T)!;
    // 100 bytes in flight: the new chunk alone may hold 332 - 100 - 32 = 200 bytes, so all held lines go as well.
    const chunk = Buffer.concat([tenLines(20), tenLines(30), tenLines(40)]);
    put(b, chunk, T + 1);
    expect(b.buffered()).toEqual({ lines: 30, bytes: 300 });
    b.settle(inFlight);
    expect(inFlight.records.map((r) => Number(r.bytes.toString()))).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(drain(b, T + 1).map((r) => Number(r.bytes.toString()))).toEqual(Array.from({ length: 20 }, (_, i) => 30 + i));
    expect(b.counters.linesDropped).toBe(20);
    expectBalanced(b, 50, 500);
  });
});

describe('LineBuffer: when_full drop_newest', () => {
  const numbered = (from: number, count: number): Buffer =>
    Buffer.from(Array.from({ length: count }, (_, i) => `${String(from + i).padStart(9, '0')}\n`).join(''));

  it('keeps the oldest lines and the whole lines of a chunk that fit; drops the rest', () => {
    const b = make({}, { maxBytes: 532, whenFull: 'drop_newest' });
    put(b, numbered(0, 40), T);
    // Held 400 + 32; the new arrival costs 32: 68 bytes of room, so 6 whole lines of the chunk.
    put(b, numbered(40, 30), T + 1);
    expect(b.counters.linesDropped).toBe(24);
    expect(b.counters.bytesDropped).toBe(240);
    put(b, numbered(70, 5), T + 2);
    expect(b.counters.linesDropped).toBe(29);
    const records = drain(b, T + 2);
    expect(records.map((r) => Number(r.bytes.toString()))).toEqual(Array.from({ length: 46 }, (_, i) => i));
    expectBalanced(b, 75, 750);
    // Room again: later lines are accepted.
    put(b, numbered(75, 3), T + 3);
    expect(drain(b, T + 3).map((r) => Number(r.bytes.toString()))).toEqual([75, 76, 77]);
    expect(b.counters.linesDropped).toBe(29);
    expectBalanced(b, 78, 780);
  });

  it('a broken-off line that the stream ends without a newline counts as one dropped line at end()', () => {
    const b = make({}, { maxBytes: 100, whenFull: 'drop_newest' });
    put(b, 'keep1\nkeep2\n', T);
    put(b, `tail-${'x'.repeat(200)}`, T + 1);
    put(b, 'more of the same tail', T + 2);
    b.end();
    expect(texts(drain(b, T + 3))).toEqual(['keep1', 'keep2']);
    expect(b.counters.linesDropped).toBe(1);
    // The stream's lines: two whole ones and the unterminated last one, as drop_oldest counts them.
    expectBalanced(b, 3, 12 + 205 + 21);
  });

  it('drops the line it breaks off entirely: its held start, the rest of the chunk, and its continuation', () => {
    const b = make({}, { maxBytes: 100, whenFull: 'drop_newest' });
    put(b, 'keep1\nkeep2\nbro', T);
    const big = `ken-off-${'x'.repeat(200)}`;
    put(b, big, T + 1);
    // No whole line of the chunk fits: the held "bro" goes too.
    expect(b.buffered()).toEqual({ lines: 2, bytes: 12 });
    expect(b.flushDueAt()).toBeUndefined();
    // The continuation, up to its newline, is dropped even though there is room again.
    expect(texts(drain(b, T + 10_000))).toEqual(['keep1', 'keep2']);
    put(b, 'still-the-same', T + 2);
    put(b, '-line\nnext\n', T + 3);
    expect(texts(drain(b, T + 3))).toEqual(['next']);
    const written = 15 + big.length + 14 + 11;
    expect(b.counters).toEqual({
      bytesIn: written,
      linesSent: 3,
      bytesSent: 17,
      linesDropped: 1,
      bytesDropped: written - 17,
    });
    expectBalanced(b, 4, written);
  });

  it('keeps the lines of a chunk that complete a held start, and drops the line broken off after them', () => {
    const b = make({}, { maxBytes: 100, whenFull: 'drop_newest' });
    put(b, 'a\nb', T);
    put(b, `-end\nc\n${'d'.repeat(300)}\nbroken-start`, T + 1);
    expect(texts(drain(b, T + 10_000))).toEqual(['a', 'b-end', 'c']);
    // The dropped 'ddd' line counts; the broken-off one counts when its newline comes.
    expect(b.counters.linesDropped).toBe(1);
    put(b, '-rest\nok\n', T + 2);
    expect(texts(drain(b, T + 2))).toEqual(['ok']);
    expect(b.counters.linesDropped).toBe(2);
    expectBalanced(b, 6, 3 + 7 + 301 + 12 + 9);
  });

  it('a dropped chunk ending in a newline leaves nothing to drop from the next one', () => {
    const b = make({}, { maxBytes: 64, whenFull: 'drop_newest' });
    put(b, 'x'.repeat(20) + '\n', T);
    put(b, `${'y'.repeat(40)}\n`, T + 1);
    expect(b.counters.linesDropped).toBe(1);
    expect(texts(drain(b, T + 1))).toEqual(['x'.repeat(20)]);
    put(b, 'z\n', T + 2);
    expect(texts(drain(b, T + 2))).toEqual(['z']);
    expectBalanced(b, 3, 21 + 41 + 2);
  });

  it('a line dropped after its idle flush: the newline ending it is not sent as an empty record', () => {
    const b = make({ partialFlushMs: 50 }, { maxBytes: 100, whenFull: 'drop_newest' });
    put(b, 'head', T);
    expect(texts(drain(b, T + 50))).toEqual(['head']);
    put(b, `${'t'.repeat(200)}`, T + 60);
    put(b, '\nafter\n', T + 70);
    expect(texts(drain(b, T + 70))).toEqual(['after']);
    expectBalanced(b, 2, 4 + 200 + 7);
  });
});

describe('LineBuffer: the max_bytes bound and counters', () => {
  it('a flood of 1-byte chunks is bounded by the 32 bytes each distinct arrival costs', () => {
    for (const whenFull of ['drop_oldest', 'drop_newest'] as const) {
      const max = 100 * (1 + CHUNK_ENTRY_BYTES); // 100 one-byte arrivals
      const b = make({}, { maxBytes: max, whenFull });
      let outstanding = 0;
      let inFlight: (LineBatch & Taken) | undefined;
      const stream = Buffer.from('ab\n\nc\ndef\n'.repeat(100));
      for (let i = 0; i < stream.length; i++) {
        put(b, stream.subarray(i, i + 1), T + i);
        if (i === 200) {
          inFlight = take(b, 5, 1 << 20, T + i);
          outstanding = inFlight!.bytes;
        }
        if (i === 600) {
          b.settle(inFlight!);
          outstanding = 0;
        }
        // Every held byte is an arrival of its own; what is in flight holds no arrivals.
        const held = b.buffered().bytes - outstanding;
        expect(held + outstanding + held * CHUNK_ENTRY_BYTES, `${whenFull} at byte ${i}`).toBeLessThanOrEqual(max);
      }
      expectBalanced(b, newlines(stream), stream.length);
      expect(b.counters.linesDropped, whenFull).toBeGreaterThan(0);
    }
  });

  it('arrivals of the same time and writer share one entry', () => {
    const max = 100 + 2 * CHUNK_ENTRY_BYTES;
    const same = make({}, { maxBytes: max, whenFull: 'drop_newest' });
    for (let i = 0; i < 150; i++) put(same, '\n', T, META);
    expect(same.buffered()).toEqual({ lines: 100, bytes: 100 });
    expect(same.counters.linesDropped).toBe(50);
    const distinct = make({}, { maxBytes: max, whenFull: 'drop_newest' });
    for (let i = 0; i < 150; i++) put(distinct, '\n', T + i, META);
    // 33 bytes each: 4 fit under 164 with room kept for the next arrival's entry.
    expect(distinct.buffered()).toEqual({ lines: 4, bytes: 4 });
  });

  it('drop_oldest counts what it evicts from large arrivals that share a time (an entry holds at most 64 KiB)', () => {
    const random = prng(99);
    const b = make({}, { maxBytes: 1 << 20, whenFull: 'drop_oldest' });
    let written = 0;
    let bytes = 0;
    for (let i = 0; i < 300; i++) {
      const lines = Array.from({ length: 1 + Math.floor(random() * 1500) }, (_, k) => `${i}.${k}${'y'.repeat(Math.floor(random() * 120))}\n`);
      const chunk = Buffer.from(lines.join(''));
      put(b, chunk, T + Math.floor(i / 10));
      written += lines.length;
      bytes += chunk.length;
      const held = b.buffered();
      expect(held.bytes).toBeLessThanOrEqual(1 << 20);
      expect(b.counters.linesDropped + held.lines, `after arrival ${i}`).toBe(written);
      expect(b.counters.bytesDropped + held.bytes).toBe(bytes);
    }
    // What is held is whole lines, the newest ones.
    const kept = drain(b, T + 1000).map((r) => r.bytes.toString());
    expect(kept.every((line) => /^\d+\.\d+y*$/.test(line))).toBe(true);
    expect(kept.at(-1)).toMatch(/^299\./);
    expectBalanced(b, written, bytes);
  });

  it('drop_oldest under a flood of tiny arrivals evicts only as many lines as it needs', () => {
    const max = 100 * (1 + CHUNK_ENTRY_BYTES);
    const b = make({}, { maxBytes: max, whenFull: 'drop_oldest' });
    for (let i = 0; i < 150; i++) {
      put(b, '\n', T + i);
      // Full at 100 lines; each new one then costs exactly one old one.
      expect(b.buffered().lines, `after line ${i}`).toBe(Math.min(i + 1, 100));
    }
    expect(b.counters.linesDropped).toBe(50);
  });

  it('a failed batch (not settled) stays counted as buffered; settling it counts it sent', () => {
    const b = make();
    put(b, 'a\nbb\nccc\n');
    const failed = take(b, 2, 1 << 20, T)!;
    expect([failed.lines, failed.bytes]).toEqual([2, 5]);
    expect(b.buffered()).toEqual({ lines: 3, bytes: 9 });
    expect(b.counters.linesSent).toBe(0);
    // The sink retries the same batch; the buffer goes on with the lines after it.
    put(b, 'dddd\n');
    const next = take(b, 100, 1 << 20, T)!;
    expect(texts(next.records)).toEqual(['ccc', 'dddd']);
    expect(b.buffered()).toEqual({ lines: 4, bytes: 14 });
    b.settle(next);
    expect(b.buffered()).toEqual({ lines: 2, bytes: 5 });
    b.settle(failed);
    expect(b.buffered()).toEqual({ lines: 0, bytes: 0 });
    expect(b.counters).toEqual({ bytesIn: 14, linesSent: 4, bytesSent: 14, linesDropped: 0, bytesDropped: 0 });
  });

  it('sent + dropped + buffered equals the newlines written, under random chunking, drops, failures and idle flushes', () => {
    const random = prng(1234);
    for (const whenFull of ['drop_oldest', 'drop_newest'] as const) {
      for (let round = 0; round < 20; round++) {
        const maxLineBytes = 64 + Math.floor(random() * 400);
        const b = make({ maxLineBytes, partialFlushMs: 50 }, { maxBytes: 300 + Math.floor(random() * 3000), whenFull });
        const parts: string[] = [];
        for (let i = 0; i < 600; i++) {
          const long = random() < 0.05;
          parts.push(`${i}${'x'.repeat(Math.floor(random() * (long ? 2000 : 80)))}${random() < 0.2 ? '\r' : ''}\n`);
        }
        const input = Buffer.from(parts.join(''));
        let now = T;
        let written = 0;
        const pending: (LineBatch & Taken)[] = [];
        for (let at = 0; at < input.length; ) {
          const size = 1 + Math.floor(random() ** 2 * 600);
          const chunk = input.subarray(at, at + size);
          // Sometimes the same arrival time, so arrivals coalesce.
          if (random() < 0.7) now += Math.floor(random() * 40);
          put(b, chunk, now);
          at += chunk.length;
          written += newlines(chunk);
          const roll = random();
          if (roll < 0.4) {
            const batch = take(b, 1 + Math.floor(random() * 20), 1 + Math.floor(random() * 2000), now + Math.floor(random() * 100));
            if (batch) pending.push(batch);
          }
          // Settle in order, sometimes after a few failed attempts (left pending).
          if (pending.length > 0 && random() < 0.5) b.settle(pending.shift()!);
          const held = b.buffered();
          expect(b.counters.linesSent + b.counters.linesDropped + held.lines, `${whenFull} round ${round} at ${at}`).toBe(written);
          expect(b.counters.bytesSent + b.counters.bytesDropped + held.bytes).toBe(at);
        }
        for (const batch of pending) b.settle(batch);
        drain(b, now + 1000);
        expectBalanced(b, written, input.length);
        expect(b.buffered()).toEqual({ lines: 0, bytes: 0 });
      }
    }
  });
});
