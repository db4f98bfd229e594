// DiskSpool: a sink's disk buffer, used directly, in-process, against real files (and a small tmpfs for a full disk;
// a child process for SIGKILL).
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { DiskSpool, type SpoolOptions } from '../src/buffers/disk-spool.js';
import { DEFAULT_CONFIG } from '../src/config/config.js';
import { LineBatch } from '../src/lines/line-batch.js';
import { metadataFromPath, type StreamMetadata } from '../src/mesos/metadata.js';
import { Sink } from '../src/sinks/sink.js';
import type { StreamQueue } from '../src/sinks/stream-queue.js';
import { isRoot, mountTmpfs, unmount } from './helpers/tmpfs.js';
import { waitFor } from './helpers/wait.js';

const A = metadataFromPath('/var/lib/mesos/slaves/S1/frameworks/F1/executors/E1/runs/C1/stdout');
const B = metadataFromPath('/var/lib/mesos/slaves/S1/frameworks/F1/executors/E2/runs/C2/stderr');
const T = 1_700_000_000_000;

const dirs: string[] = [];
const mounts: string[] = [];
afterAll(() => {
  for (const dir of mounts.splice(0)) unmount(dir);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mls-spool-'));
  dirs.push(dir);
  return dir;
}

/** A logger whose messages the test can read. */
function testLog(): { log: pino.Logger; messages: { level: number; msg: string }[] } {
  const messages: { level: number; msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void messages.push(JSON.parse(line)) });
  return { log, messages };
}

/** A batch as a LineBuffer makes it: each line's text, then its ending (`\n` unless `partial`). */
function batchOf(lines: { text: string; meta?: StreamMetadata; time?: number; partial?: boolean; crlf?: boolean }[]): LineBatch {
  const parts: Buffer[] = [];
  const starts: number[] = [];
  const stops: number[] = [];
  let at = 0;
  for (const line of lines) {
    const text = Buffer.from(line.text);
    const ending = line.partial ? '' : line.crlf ? '\r\n' : '\n';
    starts.push(at);
    stops.push(at + text.length);
    parts.push(text, Buffer.from(ending));
    at += text.length + ending.length;
  }
  const data = Buffer.concat(parts);
  return new LineBatch(
    data,
    Uint32Array.from(starts),
    Uint32Array.from(stops),
    Uint8Array.from(lines.map((l) => (l.partial ? 1 : 0))),
    Float64Array.from(lines.map((l, i) => l.time ?? T + i)),
    lines.map((l) => l.meta ?? A),
    true,
    lines.filter((l) => !l.partial).length,
  );
}

const numbered = (from: number, count: number, meta = A, pad = ''): LineBatch =>
  batchOf(Array.from({ length: count }, (_, i) => ({ text: `line ${from + i}${pad}`, meta })));

const texts = (batch: LineBatch): string[] => Array.from({ length: batch.count }, (_, i) => Buffer.from(batch.raw(i)).toString());

/** Takes and acknowledges everything: the lines' texts in order. */
async function drain(spool: DiskSpool, maxLines = 100, maxBytes = 1 << 20): Promise<string[]> {
  const out: string[] = [];
  for (let batch = await spool.take(maxLines, maxBytes); batch !== undefined; batch = await spool.take(maxLines, maxBytes)) {
    out.push(...texts(batch));
    spool.ack(batch);
  }
  return out;
}

const segmentFiles = (dir: string): string[] => readdirSync(dir).filter((name) => name.endsWith('.seg')).sort();

const open = (dir: string, options: Partial<SpoolOptions> = {}, log = testLog().log): Promise<DiskSpool> =>
  DiskSpool.open(dir, { maxBytes: 64 << 20, whenFull: 'drop_oldest', fsyncMs: 50, ...options }, log);

const range = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `line ${from + i}`);

describe('DiskSpool', () => {
  it('gives back what was appended, in order, with each line\'s time, partial flag, metadata and ending', async () => {
    const dir = tempDir();
    const spool = await open(dir);
    const input = batchOf([
      { text: 'first', meta: A, time: T + 1 },
      { text: 'second, CRLF', meta: B, time: T + 2, crlf: true },
      { text: 'a piece of a long line', meta: A, time: T + 3, partial: true },
      { text: 'ü', meta: B, time: T + 4 },
    ]);
    expect(spool.append(input)).toBe('spooled');
    expect(spool.append(numbered(0, 1000))).toBe('spooled');
    const batch = (await spool.take(4, 1 << 20))!;
    expect(texts(batch)).toEqual(['first', 'second, CRLF', 'a piece of a long line', 'ü']);
    expect(Array.from(batch.times)).toEqual([T + 1, T + 2, T + 3, T + 4]);
    expect(Array.from(batch.partials)).toEqual([0, 0, 1, 0]);
    expect(batch.metas.map((m) => m.container_id)).toEqual(['C1', 'C2', 'C1', 'C2']);
    expect(batch.metas[1]).toEqual(B);
    // The stream bytes as they came: a sink that writes `data` or counts stream bytes sees the same.
    expect(batch.data.equals(input.data)).toBe(true);
    expect(batch.lines).toBe(3);
    expect(batch.validUtf8).toBe(true);
    spool.ack(batch);
    expect(await drain(spool, 7)).toEqual(range(0, 1000));
    const stats = spool.stats;
    expect(stats.appended.lines).toBe(1003);
    expect(stats.acked).toEqual(stats.appended);
    expect(stats.heldLines).toBe(0);
    await spool.close();
    expect(segmentFiles(dir)).toEqual([]);
  });

  it('resumes after a restart with exactly the lines not acknowledged, in order', async () => {
    const dir = tempDir();
    const first = await open(dir, { segmentBytes: 4096 });
    for (let i = 0; i < 10; i++) expect(first.append(numbered(i * 100, 100))).toBe('spooled');
    const acked = [];
    for (let i = 0; i < 3; i++) {
      const batch = (await first.take(70, 1 << 20))!;
      acked.push(...texts(batch));
      first.ack(batch);
    }
    // Taken, not acknowledged: must come again.
    const inFlight = (await first.take(70, 1 << 20))!;
    expect(texts(inFlight)[0]).toBe('line 210');
    expect(acked).toEqual(range(0, 210));
    await first.close();
    expect(segmentFiles(dir).length).toBeGreaterThan(1);

    const second = await open(dir, { segmentBytes: 4096 });
    expect(second.stats.recovered.lines).toBe(790);
    expect(second.append(numbered(1000, 10))).toBe('spooled');
    expect(await drain(second, 33)).toEqual(range(210, 1010));
    await second.close();
    expect(segmentFiles(dir)).toEqual([]);
    const third = await open(dir);
    expect(await drain(third)).toEqual([]);
    await third.close();
  });

  it('skips a torn last record, counts and logs it, and keeps every record before it', async () => {
    const dir = tempDir();
    const spool = await open(dir);
    spool.append(numbered(0, 50));
    await spool.close();
    const [file] = segmentFiles(dir);
    truncateSync(join(dir, file), statSync(join(dir, file)).size - 3);

    const { log, messages } = testLog();
    const reopened = await open(dir, {}, log);
    expect(reopened.stats.droppedBy.corrupt.lines).toBe(1);
    expect(messages.some((m) => m.msg.includes('damaged record') && m.level === 40)).toBe(true);
    expect(await drain(reopened)).toEqual(range(0, 49));
    await reopened.close();
    expect(segmentFiles(dir)).toEqual([]);
  });

  it('skips a record whose bytes changed (CRC mismatch), counts it, and delivers the records after it', async () => {
    const dir = tempDir();
    const spool = await open(dir);
    spool.append(numbered(0, 50));
    await spool.close();
    const [file] = segmentFiles(dir);
    const bytes = readFileSync(join(dir, file));
    const at = bytes.indexOf('line 20\n');
    bytes[at + 5] ^= 0x01; // "line 30" would be a valid-looking line: only the CRC can tell
    writeFileSync(join(dir, file), bytes);

    const reopened = await open(dir);
    expect(reopened.stats.droppedBy.corrupt.lines).toBe(1);
    expect(await drain(reopened)).toEqual([...range(0, 20), ...range(21, 50)]);
    await reopened.close();
  });

  it('a damaged length is caught too: the records after it are found again', async () => {
    const dir = tempDir();
    const spool = await open(dir);
    spool.append(numbered(0, 50));
    await spool.close();
    const [file] = segmentFiles(dir);
    const bytes = readFileSync(join(dir, file));
    const at = bytes.indexOf('line 10\n');
    // The frame's length field: 12-byte header, then 18 bytes of line header before the text.
    bytes.writeUInt32LE(1_000_000, at - 18 - 8);
    writeFileSync(join(dir, file), bytes);
    const reopened = await open(dir);
    expect(await drain(reopened)).toEqual([...range(0, 10), ...range(11, 50)]);
    expect(reopened.stats.droppedBy.corrupt.lines).toBe(1);
    await reopened.close();
  });

  it('drop_oldest: past max_bytes, whole oldest segments go, counted; what stays is the newest, in order', async () => {
    const dir = tempDir();
    const { log, messages } = testLog();
    const spool = await open(dir, { maxBytes: 64 * 1024, segmentBytes: 8 * 1024 }, log);
    for (let i = 0; i < 100; i++) expect(spool.append(numbered(i * 20, 20, A, ' '.repeat(40)))).toBe('spooled');
    const stats = spool.stats;
    expect(stats.bytesOnDisk).toBeLessThanOrEqual(64 * 1024);
    expect(stats.droppedBy.spool_full.lines).toBeGreaterThan(0);
    expect(messages.some((m) => m.msg.includes('spool full'))).toBe(true);
    const out = (await drain(spool)).map((line) => line.trimEnd());
    const first = Number(out[0].split(' ')[1]);
    // Whole segments went: the first line kept starts a segment, and all after it are there.
    expect(out).toEqual(range(first, 2000));
    expect(stats.droppedBy.spool_full.lines).toBe(first);
    expect(spool.stats.acked.lines + spool.stats.droppedBy.spool_full.lines).toBe(2000);
    await spool.close();
    expect(segmentFiles(dir)).toEqual([]);
  });

  it('drop_newest: past max_bytes, new lines are refused and counted; what stays is the oldest', async () => {
    const dir = tempDir();
    const spool = await open(dir, { maxBytes: 64 * 1024, segmentBytes: 8 * 1024, whenFull: 'drop_newest' });
    const results = [];
    for (let i = 0; i < 100; i++) results.push(spool.append(numbered(i * 20, 20, A, ' '.repeat(40))));
    const kept = results.filter((r) => r === 'spooled').length;
    expect(results).toEqual([...Array(kept).fill('spooled'), ...Array(100 - kept).fill('dropped')]);
    expect(spool.stats.droppedBy.spool_full.lines).toBe((100 - kept) * 20);
    expect((await drain(spool)).map((line) => line.trimEnd())).toEqual(range(0, kept * 20));
    // Room again once acknowledged segments are deleted.
    expect(spool.append(numbered(5000, 1))).toBe('spooled');
    await spool.close();
  });

  it('deletes a segment once every line in it is acknowledged', async () => {
    const dir = tempDir();
    const spool = await open(dir, { segmentBytes: 4096 });
    for (let i = 0; i < 10; i++) spool.append(numbered(i * 100, 100));
    await waitFor(() => spool.stats.pendingBytes === 0, { what: 'the writes' });
    const before = segmentFiles(dir).length;
    expect(before).toBeGreaterThan(4);
    const batch = (await spool.take(300, 1 << 20))!;
    expect(segmentFiles(dir).length).toBe(before);
    spool.ack(batch);
    await waitFor(() => segmentFiles(dir).length < before, { what: 'acknowledged segments deleted' });
    // The segment holding line 299 (and the unacknowledged line 300) stays.
    const left = segmentFiles(dir).length;
    expect(left).toBeGreaterThanOrEqual(before - 4);
    expect((await drain(spool))[0]).toBe('line 300');
    await waitFor(() => segmentFiles(dir).length === 0, { what: 'every segment deleted' });
    await spool.close();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a spool directory that is a link or that others may write; a sink then buffers in memory', async () => {
    const base = tempDir();
    mkdirSync(join(base, 'elsewhere'));
    symlinkSync(join(base, 'elsewhere'), join(base, 'link'));
    await expect(open(join(base, 'link'))).rejects.toThrow(/link must be a directory owned by uid \d+ and writable by it alone/);
    mkdirSync(join(base, 'shared'));
    chmodSync(join(base, 'shared'), 0o777);
    await expect(open(join(base, 'shared'))).rejects.toThrow(/shared must be a directory owned by uid/);
    // A refused open leaves the directory free for the next one.
    chmodSync(join(base, 'shared'), 0o700);
    await (await open(join(base, 'shared'))).close();
  });

  it.skipIf(!isRoot())('a full disk (tmpfs) makes appends wait, never throws, keeps lines readable, and recovers once there is room', async () => {
    const dir = join(tempDir(), 'small');
    mountTmpfs(dir, 1 << 20);
    mounts.push(dir);
    const { log, messages } = testLog();
    const spool = await open(dir, { maxBytes: 64 << 20, segmentBytes: 128 * 1024, retryMs: 100, maxPendingBytes: 256 * 1024 }, log);
    let next = 0;
    while (spool.stats.writeError === undefined) {
      const result = spool.append(numbered(next, 100, A, ' '.repeat(100)));
      if (result === 'spooled') next += 100;
      else await Promise.race([spool.writable(), new Promise((r) => setTimeout(r, 20))]);
      expect(next).toBeLessThan(100_000);
    }
    expect(spool.stats.writeError).toBe('ENOSPC');
    expect(spool.append(numbered(next, 1))).toBe('busy');
    expect(messages.some((m) => m.level === 50 && m.msg.includes('a write failed'))).toBe(true);
    // Everything spooled comes out, what did not fit on disk from memory, in order.
    expect((await drain(spool)).map((line) => line.trimEnd())).toEqual(range(0, next));
    // Acknowledged segments deleted: room again, and the retry succeeds.
    await waitFor(() => spool.stats.writeError === undefined, { what: 'the spool to write again', timeoutMs: 10_000 });
    expect(messages.some((m) => m.msg.includes('writing again'))).toBe(true);
    expect(spool.append(numbered(next, 10))).toBe('spooled');
    expect(await drain(spool)).toEqual(range(next, next + 10));
    await spool.close();
  });

  it('memory stays bounded with a large backlog: 200 MB spooled and read back', async () => {
    const dir = tempDir();
    const spool = await open(dir, { maxBytes: 1 << 30 });
    const line = 'x'.repeat(1000);
    const batchLines = 1000;
    const total = 200 * 1000; // 200k lines of 1001 bytes
    let peak = 0;
    const sample = (): void => void (peak = Math.max(peak, process.memoryUsage().rss));
    const base = process.memoryUsage().rss;
    const writeStart = performance.now();
    for (let n = 0; n < total; ) {
      const batch = batchOf(Array.from({ length: batchLines }, (_, i) => ({ text: `${n + i} ${line}` })));
      if (spool.append(batch) === 'spooled') n += batchLines;
      else await spool.writable();
      sample();
    }
    await waitFor(() => spool.stats.pendingBytes === 0, { what: 'the writes', timeoutMs: 60_000, intervalMs: 5 });
    const writeMs = performance.now() - writeStart;
    const onDisk = spool.stats.bytesOnDisk;
    expect(onDisk).toBeGreaterThan(200e6);
    const drainStart = performance.now();
    let expected = 0;
    for (let batch = await spool.take(1024, 1 << 20); batch !== undefined; batch = await spool.take(1024, 1 << 20)) {
      const first = Buffer.from(batch.raw(0)).toString();
      expect(Number(first.split(' ')[0])).toBe(expected);
      expected += batch.count;
      spool.ack(batch);
      sample();
    }
    expect(expected).toBe(total);
    const drainMs = performance.now() - drainStart;
    await spool.close();
    const mbps = (ms: number): string => (onDisk / 1e6 / (ms / 1000)).toFixed(0);
    console.log(
      `spool backlog: ${(onDisk / 1e6).toFixed(0)} MB on disk, written at ${mbps(writeMs)} MB/s, read back and acknowledged at ` +
        `${mbps(drainMs)} MB/s; peak RSS ${((peak - base) / 2 ** 20).toFixed(1)} MiB over the start`,
    );
    // A whole segment (12.5 MB here) or the backlog in memory would show; the bound is the write backlog (4 MiB),
    // the read chunk and a batch, plus the GC's slack.
    expect(peak - base).toBeLessThan(96 << 20);
  }, 180_000);

  it('a process SIGKILLed while appending leaves a spool that gives back a prefix of what it wrote, nothing damaged', async () => {
    const dir = tempDir();
    buildSync({
      stdin: {
        contents: `
          import { DiskSpool } from './src/buffers/disk-spool.ts';
          import { LineBatch } from './src/lines/line-batch.ts';
          import pino from 'pino';
          const meta = { stream: 'stdout', hostname: 'h', sandbox: '/s', executor_labels: {}, task_labels: {} };
          const spool = await DiskSpool.open(process.argv[2], { maxBytes: 1 << 30, whenFull: 'drop_oldest', segmentBytes: 256 * 1024 }, pino({ level: 'silent' }));
          let next = 0;
          let taken = 0;
          for (;;) {
            const lines = Array.from({ length: 50 }, (_, i) => 'line ' + (next + i) + ' ' + 'y'.repeat(i * 7));
            const data = Buffer.from(lines.map((l) => l + '\\n').join(''));
            const starts = []; const stops = []; let at = 0;
            for (const l of lines) { starts.push(at); stops.push(at + Buffer.byteLength(l)); at += Buffer.byteLength(l) + 1; }
            const batch = new LineBatch(data, Uint32Array.from(starts), Uint32Array.from(stops), new Uint8Array(50), new Float64Array(50), lines.map(() => meta), true, 50);
            if (spool.append(batch) === 'spooled') next += 50; else await spool.writable();
            if (spool.stats.pendingBytes === 0) process.stdout.write('written ' + next + '\\n');
            if (next % 1000 === 0) {
              const out = await spool.take(300, 1 << 20);
              if (out) { spool.ack(out); taken += out.count; process.stdout.write('acked ' + taken + '\\n'); }
            }
            if (next % 500 === 0) await new Promise((r) => setImmediate(r));
          }
        `,
        resolveDir: join(import.meta.dirname, '..'),
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      outfile: join(import.meta.dirname, '..', 'node_modules', '.cache', `spool-appender-${process.pid}.mjs`),
      logLevel: 'error',
    });
    const bundle = join(import.meta.dirname, '..', 'node_modules', '.cache', `spool-appender-${process.pid}.mjs`);
    try {
      for (let run = 0; run < 6; run++) {
        const spoolDir = join(dir, `run${run}`);
        const child = spawn(process.execPath, [bundle, spoolDir], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
        const exited = new Promise((resolve) => child.once('exit', resolve));
        await waitFor(() => out.includes('acked'), { what: 'the appender to get going', timeoutMs: 20_000 });
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 700));
        child.kill('SIGKILL');
        await exited;
        const written = Math.max(...[...out.matchAll(/written (\d+)/g)].map((m) => Number(m[1])));
        const acked = Math.max(...[...out.matchAll(/acked (\d+)/g)].map((m) => Number(m[1])));

        const spool = await open(spoolDir);
        const lines = await drain(spool, 500);
        await spool.close();
        const numbers = lines.map((line) => Number(line.split(' ')[1]));
        // In order, no gap, no damaged line delivered.
        numbers.forEach((n, i) => expect(n).toBe(numbers[0] + i));
        lines.forEach((line, i) => expect(line).toBe(`line ${numbers[i]} ${'y'.repeat((numbers[i] % 50) * 7)}`));
        // Nothing unacknowledged is skipped, and all that was written survives.
        expect(numbers[0]).toBeLessThanOrEqual(acked);
        expect(numbers.at(-1)! + 1).toBeGreaterThanOrEqual(written);
        // A torn record at the end at most.
        expect(spool.stats.droppedBy.corrupt.lines).toBeLessThanOrEqual(1);
      }
    } finally {
      rmSync(bundle, { force: true });
    }
  }, 120_000);
});

/** A sink with a disk buffer whose peer the test controls: down (every send fails), and confirming later or not. */
class SpooledSink extends Sink {
  readonly sent: string[] = [];
  down = false;
  readonly queue: StreamQueue;

  constructor(dir: string, confirms: boolean) {
    super({
      name: 'spooled',
      buffer: { maxBytes: 8 << 20, whenFull: 'drop_oldest' },
      log: testLog().log,
      spool: { dir, maxBytes: 64 << 20, whenFull: 'drop_oldest' },
    });
    this.confirmsDelivery = confirms;
    this.queue = this.attach(DEFAULT_CONFIG.lines);
  }

  write(from: number, count: number): void {
    this.queue.append(Buffer.from(range(from, from + count).map((l) => `${l}\n`).join('')), Date.now(), A);
  }

  /** The peer acknowledges everything sent so far. */
  confirmAll(lines: number, bytes: number): void {
    this.confirmSent(lines, bytes);
  }

  protected async send(batch: LineBatch): Promise<void> {
    if (this.down) throw new Error('peer down');
    this.sent.push(...texts(batch));
  }

  protected async close(): Promise<void> {}
}

describe('DiskSpool in a sink', () => {
  it('a restarted sink delivers what its spool holds before any new line', async () => {
    const dir = tempDir();
    const first = new SpooledSink(dir, false);
    first.down = true;
    first.start();
    first.write(0, 500);
    await waitFor(() => segmentFiles(dir).length > 0 && first.stats.spool!.appended.lines === 500, { what: 'lines in the spool' });
    await first.stop(Date.now() + 100);
    expect(first.sent).toEqual([]);

    const second = new SpooledSink(dir, false);
    second.start();
    second.write(500, 500);
    await waitFor(() => second.sent.length === 1000, { what: 'every line', timeoutMs: 10_000 });
    expect(second.sent).toEqual(range(0, 1000));
    await second.stop(Date.now() + 1000);
    expect(second.stats.spool).toMatchObject({ recovered: { lines: 500 }, appended: { lines: 500 }, acked: { lines: 1000 }, heldLines: 0 });
    expect(segmentFiles(dir)).toEqual([]);
  });

  it('a sink that confirms later: its spool lets lines go only once confirmed, and sends unconfirmed ones again after a restart', async () => {
    const dir = tempDir();
    const first = new SpooledSink(dir, true);
    first.start();
    first.write(0, 300);
    await waitFor(() => first.sent.length === 300, { what: 'the lines sent' });
    await first.stop(Date.now() + 100);
    expect(segmentFiles(dir).length).toBeGreaterThan(0);

    const second = new SpooledSink(dir, true);
    second.start();
    await waitFor(() => second.sent.length === 300, { what: 'the unconfirmed lines sent again' });
    expect(second.sent).toEqual(range(0, 300));
    second.confirmAll(300, second.stats.spool!.heldBytes);
    await second.stop(Date.now() + 1000);
    expect(second.stats.spool).toMatchObject({ acked: { lines: 300 }, heldLines: 0 });
    expect(segmentFiles(dir)).toEqual([]);
  });
});
