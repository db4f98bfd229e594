// The replay window: delivered batches kept by bytes and age, oldest given up first.
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../src/config/config.js';
import type { LineBatch } from '../src/lines/line-batch.js';
import { LineBuffer } from '../src/lines/line-buffer.js';
import type { StreamMetadata } from '../src/mesos/metadata.js';
import { ReplayWindow } from '../src/sinks/replay-window.js';

const META: StreamMetadata = { stream: 'stdout', hostname: hostname(), sandbox: '/s', executor_labels: {}, task_labels: {} };

/** A real batch of the given lines, as a sink takes it. */
function batch(...lines: string[]): LineBatch {
  const buffer = new LineBuffer({ maxBytes: 1 << 20, whenFull: 'drop_oldest' }, DEFAULT_CONFIG.lines);
  buffer.append(Buffer.from(lines.map((line) => `${line}\n`).join('')), 0, META);
  return buffer.take(1024, 1 << 20, 0)!;
}

const texts = (window: ReplayWindow): string[][] =>
  window.batches.map((b) => b.records.map((r) => r.bytes.toString()));

describe('ReplayWindow', () => {
  it('keeps the newest batches within maxBytes, and always the newest one', () => {
    const window = new ReplayWindow({ maxBytes: 10, maxAgeMs: 1000 });
    window.add(batch('aaaa'), 0);
    window.add(batch('bbbb'), 1);
    expect([texts(window), window.bytes]).toEqual([[['aaaa'], ['bbbb']], 10]);
    window.add(batch('cc'), 2);
    expect([texts(window), window.bytes]).toEqual([[['bbbb'], ['cc']], 8]);
    window.add(batch('0123456789abc', 'd'), 3);
    expect([texts(window), window.bytes]).toEqual([[['0123456789abc', 'd']], 16]);
  });

  it('expire() forgets batches older than maxAgeMs; release() gives up the oldest until enough is freed', () => {
    const window = new ReplayWindow({ maxBytes: 100, maxAgeMs: 1000 });
    for (const [i, line] of ['a', 'b', 'c', 'd'].entries()) window.add(batch(line.repeat(9)), i * 600);
    window.expire(2000);
    expect(texts(window)).toEqual([['ccccccccc'], ['ddddddddd']]);
    window.release(1);
    expect(texts(window)).toEqual([['ddddddddd']]);
    window.release(100);
    expect([window.batches, window.bytes]).toEqual([[], 0]);
  });

  it('keeps nothing when maxBytes is 0 (the default)', () => {
    const window = new ReplayWindow();
    window.add(batch('x'), 0);
    expect([window.batches, window.bytes]).toEqual([[], 0]);
  });
});
