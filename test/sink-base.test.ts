// The Sink base class: bounded buffer, when_full, ordered retry, stop() deadline, counters. A minimal concrete
// subclass supplies send()/close(): either a controllable one (to hold a send open or fail it on cue) or one that
// writes to a real unix socket whose peer the test controls.
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { createServer, Socket, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { lineRecord, type LogRecord } from '../src/lines/record.js';
import type { StreamMetadata } from '../src/mesos/metadata.js';
import { RECORD_OVERHEAD_BYTES, Sink, type BufferConfig } from '../src/sinks/sink.js';
import { sleep, waitFor } from './helpers/wait.js';

const META: StreamMetadata = { stream: 'stdout', hostname: hostname(), sandbox: '/s', executor_labels: {}, task_labels: {} };
const rec = (text: string): LogRecord => lineRecord(Buffer.from(text), false, Date.now(), META);
const line = (i: number, size = 100): LogRecord => rec(String(i).padEnd(size, '.'));
const num = (r: LogRecord): number => parseInt(r.bytes.toString(), 10);
/** What a 100-byte line costs against max_bytes. */
const COST_100 = 100 + RECORD_OVERHEAD_BYTES;

function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n')) if (text !== '') lines.push(JSON.parse(text));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Each send() is an attempt the test settles: by default at once; `hold()` makes the next ones wait for the test. */
class ScriptedSink extends Sink {
  readonly attempts: LogRecord[][] = [];
  readonly delivered: LogRecord[] = [];
  closes = 0;
  /** Failures still to answer before sends succeed. */
  failNext = 0;
  holding = false;
  pending: Deferred | undefined;
  /** Whether close() makes a held send fail (a well-behaved transport) or leaves it hanging. */
  closeSettlesSend = true;

  constructor(buffer: Partial<BufferConfig> = {}, log = captureLog().log) {
    super('test', { maxBytes: 1024, whenFull: 'drop_oldest', ...buffer }, log);
  }

  setBatchLimits(lines: number, bytes: number): void {
    this.maxBatchLines = lines;
    this.maxBatchBytes = bytes;
  }

  hold(): void {
    this.holding = true;
  }

  /** Lets the held send (and later ones) succeed. */
  release(): void {
    this.holding = false;
    this.pending?.resolve();
  }

  protected async send(batch: LogRecord[]): Promise<void> {
    this.attempts.push([...batch]);
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error(`refused (attempt ${this.attempts.length})`);
    }
    if (this.holding) {
      this.pending = deferred();
      await this.pending.promise;
    }
    this.delivered.push(...batch);
  }

  protected async close(): Promise<void> {
    this.closes++;
    if (this.closeSettlesSend) this.pending?.reject(new Error('closed'));
  }
}

const invariant = (sink: Sink): void => {
  const { linesIn, linesSent, linesDropped, bytesIn, bytesSent, bytesDropped } = sink.stats;
  const buffered = sink.buffered();
  expect(linesIn).toBe(linesSent + linesDropped + buffered.lines);
  expect(bytesIn).toBe(bytesSent + bytesDropped + buffered.bytes);
};

describe('Sink base', () => {
  it('delivers every record once, in order, and counts them', async () => {
    const sink = new ScriptedSink({ maxBytes: 1 << 20 });
    sink.setBatchLimits(7, 1 << 20);
    sink.start();
    for (let i = 0; i < 100; i++) sink.accept(line(i, 10));
    await waitFor(() => sink.stats.linesSent === 100, { what: 'delivery' });
    expect(sink.delivered.map(num)).toEqual([...Array(100).keys()]);
    expect(Math.max(...sink.attempts.map((b) => b.length))).toBe(7);
    expect(sink.stats).toMatchObject({ linesIn: 100, bytesIn: 1000, linesSent: 100, bytesSent: 1000, linesDropped: 0, failedSends: 0 });
    expect(sink.status().state).toBe('up');
    expect(sink.status().lastSent).toBeLessThanOrEqual(Date.now());
    await sink.stop(Date.now() + 1000);
    expect(sink.closes).toBe(1);
    invariant(sink);
  });

  it('batches by bytes too, always at least one record', async () => {
    const sink = new ScriptedSink({ maxBytes: 1 << 20 });
    sink.setBatchLimits(1000, 250);
    sink.hold();
    sink.start();
    sink.accept(line(0));
    await waitFor(() => sink.attempts.length === 1, { what: 'first send' });
    for (let i = 1; i <= 5; i++) sink.accept(line(i));
    sink.accept(line(6, 1000));
    sink.release();
    await waitFor(() => sink.stats.linesSent === 7, { what: 'delivery' });
    expect(sink.attempts.map((b) => b.map(num))).toEqual([[0], [1, 2], [3, 4], [5], [6]]);
    await sink.stop(Date.now() + 1000);
  });

  it('drop_oldest: a full buffer drops the oldest queued records, never the one in flight', async () => {
    const sink = new ScriptedSink({ maxBytes: 10 * COST_100, whenFull: 'drop_oldest' });
    sink.hold();
    sink.start();
    sink.accept(line(-1));
    await waitFor(() => sink.attempts.length === 1, { what: 'the held send' });
    for (let i = 0; i < 20; i++) {
      sink.accept(line(i));
      invariant(sink);
    }
    // One record in flight + 9 queued fill the buffer; each further record pushes out the oldest queued one.
    expect(sink.stats).toMatchObject({ linesIn: 21, linesDropped: 11, bytesDropped: 1100, droppedBy: { buffer_full: 11 } });
    expect(sink.buffered()).toEqual({ lines: 10, bytes: 1000 });
    sink.release();
    await waitFor(() => sink.buffered().lines === 0, { what: 'delivery' });
    expect(sink.delivered.map(num)).toEqual([-1, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    invariant(sink);
    await sink.stop(Date.now() + 1000);
  });

  it('drop_newest: a full buffer drops the incoming records', async () => {
    const sink = new ScriptedSink({ maxBytes: 10 * COST_100, whenFull: 'drop_newest' });
    sink.hold();
    sink.start();
    sink.accept(line(-1));
    await waitFor(() => sink.attempts.length === 1, { what: 'the held send' });
    for (let i = 0; i < 20; i++) sink.accept(line(i));
    expect(sink.stats).toMatchObject({ linesIn: 21, linesDropped: 11, droppedBy: { buffer_full: 11 } });
    sink.release();
    await waitFor(() => sink.buffered().lines === 0, { what: 'delivery' });
    expect(sink.delivered.map(num)).toEqual([-1, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    invariant(sink);
    await sink.stop(Date.now() + 1000);
  });

  it('drop_oldest drops the incoming record when only the in-flight batch fills the buffer', async () => {
    const sink = new ScriptedSink({ maxBytes: 11 * COST_100, whenFull: 'drop_oldest' });
    sink.hold();
    sink.start();
    for (let i = 0; i < 10; i++) sink.accept(line(i));
    await waitFor(() => sink.attempts.length === 1, { what: 'the held send' });
    expect(sink.attempts[0]).toHaveLength(10);
    sink.accept(line(10, 101));
    expect(sink.stats.droppedBy).toEqual({ buffer_full: 1 });
    sink.accept(line(11, 100));
    expect(sink.stats.droppedBy).toEqual({ buffer_full: 1 });
    sink.release();
    await waitFor(() => sink.buffered().lines === 0, { what: 'delivery' });
    expect(sink.delivered.map(num)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11]);
    invariant(sink);
    await sink.stop(Date.now() + 1000);
  });

  it('too_large: a record bigger than the whole buffer is dropped and counted apart', async () => {
    const sink = new ScriptedSink({ maxBytes: 2048 });
    sink.start();
    sink.accept(line(0));
    sink.accept(line(1, 2049 - RECORD_OVERHEAD_BYTES));
    sink.accept(line(2, 2048 - COST_100 - RECORD_OVERHEAD_BYTES));
    await waitFor(() => sink.buffered().lines === 0, { what: 'delivery' });
    expect(sink.delivered.map(num)).toEqual([0, 2]);
    expect(sink.stats).toMatchObject({ linesDropped: 1, bytesDropped: 2049 - RECORD_OVERHEAD_BYTES, droppedBy: { too_large: 1 } });
    invariant(sink);
    await sink.stop(Date.now() + 1000);
  });

  it('retries a failed batch with backoff, keeping the order; logs the failure rate-limited', async () => {
    const { log, lines } = captureLog();
    const sink = new ScriptedSink({ maxBytes: 1 << 20 }, log);
    sink.setBatchLimits(3, 1 << 20);
    sink.failNext = 2;
    sink.start();
    for (let i = 0; i < 5; i++) sink.accept(line(i, 10));
    await waitFor(() => sink.stats.failedSends === 1, { what: 'first failure' });
    expect(sink.status()).toMatchObject({ state: 'down', lastError: 'refused (attempt 1)' });
    for (let i = 5; i < 10; i++) sink.accept(line(i, 10));
    const started = Date.now();
    await waitFor(() => sink.stats.linesSent === 10, { what: 'delivery after retries' });
    // Backoff: 100 ms, then 200 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(sink.attempts.map((b) => b.map(num))).toEqual([[0, 1, 2], [0, 1, 2], [0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]);
    expect(sink.delivered.map(num)).toEqual([...Array(10).keys()]);
    expect(sink.stats.failedSends).toBe(2);
    expect(sink.status().state).toBe('up');
    const failures = lines.filter((l) => l.msg === 'sink send failed; will retry');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ sink: 'test', err: 'refused (attempt 1)', retryInMs: 100 });
    invariant(sink);
    await sink.stop(Date.now() + 1000);
  });

  it('accept() never blocks, even with a stalled send', async () => {
    const sink = new ScriptedSink({ maxBytes: 8 << 20 });
    sink.hold();
    sink.start();
    const started = performance.now();
    for (let i = 0; i < 200_000; i++) sink.accept(line(i, 64));
    expect(performance.now() - started).toBeLessThan(1000);
    invariant(sink);
    expect(sink.buffered().bytes + sink.buffered().lines * RECORD_OVERHEAD_BYTES).toBeLessThanOrEqual(8 << 20);
    await sink.stop(Date.now() + 50);
    invariant(sink);
  });

  it('a flood of empty or short lines stays bounded: each held line costs its bookkeeping too', async () => {
    const sink = new ScriptedSink({ maxBytes: 1 << 20, whenFull: 'drop_oldest' });
    sink.hold();
    sink.start();
    const empty = rec('');
    for (let i = 0; i < 1_000_000; i++) sink.accept(empty);
    invariant(sink);
    // A held record costs ~180 bytes of heap (object, Buffer view, queue slot) whatever its length.
    expect(sink.buffered().lines).toBeLessThanOrEqual((1 << 20) / 180);
    expect(sink.stats.droppedBy.buffer_full).toBeGreaterThan(990_000);
    await sink.stop(Date.now() + 50);
  });

  it('stop() delivers what is buffered, then closes', async () => {
    const sink = new ScriptedSink({ maxBytes: 1 << 20 });
    sink.start();
    for (let i = 0; i < 50; i++) sink.accept(line(i));
    await sink.stop(Date.now() + 2000);
    expect(sink.delivered).toHaveLength(50);
    expect(sink.buffered()).toEqual({ lines: 0, bytes: 0 });
    expect(sink.closes).toBe(1);
    invariant(sink);
  });

  it('stop() without start() just closes', async () => {
    const sink = new ScriptedSink();
    sink.accept(line(0));
    await sink.stop(Date.now() + 100);
    expect(sink.closes).toBe(1);
    expect(sink.buffered().lines).toBe(1);
    invariant(sink);
  });

  it('stop() at the deadline aborts a send that never settles, when close() settles it', async () => {
    const sink = new ScriptedSink({ maxBytes: 1 << 20 });
    sink.hold();
    sink.start();
    for (let i = 0; i < 5; i++) sink.accept(line(i));
    await waitFor(() => sink.attempts.length === 1, { what: 'the held send' });
    for (let i = 5; i < 8; i++) sink.accept(line(i));
    const started = Date.now();
    await sink.stop(started + 200);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(600);
    expect(sink.delivered).toEqual([]);
    expect(sink.buffered()).toEqual({ lines: 8, bytes: 800 });
    expect(sink.stats.failedSends).toBe(1);
    invariant(sink);
  });

  it('stop() waits for a send that close() does not settle (a sink must make send settle on close)', async () => {
    const sink = new ScriptedSink({ maxBytes: 1 << 20 });
    sink.closeSettlesSend = false;
    sink.hold();
    sink.start();
    sink.accept(line(0));
    await waitFor(() => sink.attempts.length === 1, { what: 'the held send' });
    let stopped = false;
    const stopping = sink.stop(Date.now() + 100).then(() => (stopped = true));
    await sleep(400);
    expect(stopped).toBe(false);
    expect(sink.closes).toBe(1);
    sink.release();
    await stopping;
    expect(sink.delivered.map(num)).toEqual([0]);
    invariant(sink);
  });

  it('stop() returns at the deadline even after a long backoff', async () => {
    const sink = new ScriptedSink({ maxBytes: 1 << 20 });
    // Four failures grow the backoff to 1600 ms (after 100 + 200 + 400 + 800), then a send hangs until close().
    sink.failNext = 4;
    sink.hold();
    sink.start();
    sink.accept(line(0));
    await waitFor(() => sink.attempts.length === 5, { timeoutMs: 5000, what: 'the fifth attempt' });
    const started = Date.now();
    await sink.stop(started + 100);
    expect(Date.now() - started).toBeLessThan(600);
    expect(sink.buffered().lines).toBe(1);
    invariant(sink);
  });

  it('stop() during a backoff wait ends at the deadline', async () => {
    const sink = new ScriptedSink({ maxBytes: 1 << 20 });
    sink.failNext = 1000;
    sink.start();
    sink.accept(line(0));
    await waitFor(() => sink.attempts.length === 4, { timeoutMs: 5000, what: 'the fourth attempt' });
    // Now in an 800 ms backoff.
    const started = Date.now();
    await sink.stop(started + 100);
    expect(Date.now() - started).toBeLessThan(500);
    invariant(sink);
  });
});

/** A sink that writes each batch as newline-terminated lines to a real unix socket; the test owns the peer. */
class SocketSink extends Sink {
  private socket: Socket | undefined;

  constructor(
    private readonly path: string,
    buffer: BufferConfig,
  ) {
    super('socket', buffer, captureLog().log);
    this.setBatch();
  }

  private setBatch(): void {
    this.maxBatchLines = 64;
  }

  protected async send(batch: LogRecord[]): Promise<void> {
    if (this.socket === undefined) {
      const socket = new Socket();
      socket.on('error', () => undefined);
      socket.once('close', () => {
        if (this.socket === socket) this.socket = undefined;
      });
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
        socket.connect(this.path);
      });
      this.socket = socket;
    }
    const socket = this.socket;
    const data = Buffer.concat(batch.flatMap((r) => [r.bytes, Buffer.from('\n')]));
    await new Promise<void>((resolve, reject) => {
      const onClose = (): void => reject(new Error('socket closed'));
      socket.once('close', onClose);
      socket.write(data, (err) => {
        socket.off('close', onClose);
        if (err) reject(err);
        else resolve();
      });
    });
  }

  protected async close(): Promise<void> {
    this.socket?.destroy();
  }
}

describe('Sink base with a real unix socket peer', () => {
  let server: Server | undefined;
  const peers: Socket[] = [];
  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.destroy();
    if (server) await new Promise((resolve) => server!.close(resolve));
    server = undefined;
  });

  async function listen(onPeer: (socket: Socket) => void): Promise<string> {
    const path = join(mkdtempSync(join(tmpdir(), 'mls-sink-')), 'peer.sock');
    server = createServer((socket) => {
      peers.push(socket);
      socket.on('error', () => undefined);
      onPeer(socket);
    });
    server.listen(path);
    await once(server, 'listening');
    return path;
  }

  it('a peer that accepts but never reads: the buffer bounds memory, drops are counted, stop() meets its deadline', async () => {
    const path = await listen((socket) => socket.pause());
    const sink = new SocketSink(path, { maxBytes: 256 * 1024, whenFull: 'drop_oldest' });
    sink.start();
    // Far more than the socket buffers hold.
    for (let i = 0; i < 4000; i++) {
      sink.accept(line(i, 1024));
      if (i % 100 === 0) await sleep(1);
      invariant(sink);
    }
    expect(sink.stats.linesDropped).toBeGreaterThan(0);
    expect(sink.stats.droppedBy.buffer_full).toBe(sink.stats.linesDropped);
    expect(sink.buffered().bytes).toBeLessThanOrEqual(256 * 1024);
    const started = Date.now();
    await sink.stop(started + 300);
    expect(Date.now() - started).toBeLessThan(1000);
    invariant(sink);
    expect(sink.stats.linesIn).toBe(4000);
  });

  /** A peer that pauses 2 ms after every read; `received` is what it has read so far. */
  async function slowReader(): Promise<{ path: string; received: Buffer[] }> {
    const received: Buffer[] = [];
    const path = await listen((socket) => {
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        socket.pause();
        setTimeout(() => socket.resume(), 2);
      });
    });
    return { path, received };
  }

  it('a slow reader gets every line exactly once, in order; the counters add up all along', async () => {
    const { path, received } = await slowReader();
    const sink = new SocketSink(path, { maxBytes: 64 << 20, whenFull: 'drop_newest' });
    sink.start();
    const expected: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const text = `${i} ${'z'.repeat(i % 300)}`;
      expected.push(text);
      sink.accept(rec(text));
      if (i % 1000 === 0) {
        invariant(sink);
        await sleep(1);
      }
    }
    await sink.stop(Date.now() + 10_000);
    invariant(sink);
    expect(sink.stats.linesSent).toBe(20_000);
    await waitFor(() => Buffer.concat(received).length === sink.stats.bytesSent + 20_000, { what: 'the peer to read all' });
    expect(Buffer.concat(received).toString().split('\n').slice(0, -1)).toEqual(expected);
  });

  it('a small buffer under drop_oldest: every line received is whole and in order', async () => {
    const { path, received } = await slowReader();
    // 20,000 lines of up to 300 bytes through 256 KiB, while batches are in flight: most are dropped, none is torn.
    const sink = new SocketSink(path, { maxBytes: 256 << 10, whenFull: 'drop_oldest' });
    sink.start();
    const expected: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const text = `${i} ${String.fromCharCode(97 + (i % 26)).repeat(i % 300)}`;
      expected.push(text);
      sink.accept(rec(text));
      if (i % 500 === 0) await sleep(1);
    }
    await sink.stop(Date.now() + 10_000);
    invariant(sink);
    expect(sink.stats.linesDropped).toBeGreaterThan(0);
    await waitFor(() => Buffer.concat(received).length === sink.stats.bytesSent + sink.stats.linesSent, {
      what: 'the peer to read all',
    });
    const lines = Buffer.concat(received).toString().split('\n').slice(0, -1);
    expect(lines).toHaveLength(sink.stats.linesSent);
    let last = -1;
    for (const line of lines) {
      const index = Number(line.slice(0, line.indexOf(' ')));
      expect(line).toBe(expected[index]);
      expect(index).toBeGreaterThan(last);
      last = index;
    }
  });

  it('a peer that goes away mid-stream: delivery goes on over a new connection, in order', async () => {
    const received: number[] = [];
    let connections = 0;
    const path = await listen((socket) => {
      connections++;
      let buffered = '';
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const parts = buffered.split('\n');
        buffered = parts.pop()!;
        received.push(...parts.map((p) => parseInt(p, 10)));
      });
      // The first connection is cut after a while.
      if (connections === 1) setTimeout(() => socket.destroy(), 30);
    });
    const sink = new SocketSink(path, { maxBytes: 64 << 20, whenFull: 'drop_newest' });
    sink.start();
    for (let i = 0; i < 300; i++) {
      sink.accept(line(i, 20));
      await sleep(1);
    }
    await sink.stop(Date.now() + 5000);
    invariant(sink);
    expect(sink.stats.linesSent).toBe(300);
    expect(connections).toBeGreaterThanOrEqual(2);
    await waitFor(() => received.includes(299), { what: 'the last line' });
    // Order holds across the reconnect. What the kernel took just before the cut may be lost (a socket write's
    // success is not delivery) or, for the batch that failed, arrive twice.
    const firstSeen = received.filter((n, i) => received.indexOf(n) === i);
    expect(firstSeen).toEqual([...firstSeen].sort((a, b) => a - b));
    expect(firstSeen.length).toBeGreaterThan(250);
  });
});
