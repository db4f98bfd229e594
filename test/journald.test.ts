import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../src/config/config.js';
import { ConfigReader } from '../src/config-reader.js';
import type { LineOptions } from '../src/lines/line-buffer.js';
import { ChunkLine, type LogRecord } from '../src/lines/record.js';
import type { StreamMetadata } from '../src/mesos/metadata.js';
import { journaldSink, type JournaldOptions } from '../src/sinks/journald/journald.js';
import { EntryEncoder, journaldFieldName } from '../src/sinks/journald/entry.js';
import { queueLimits } from '../src/sinks/journald/unread-window.js';
import type { Sink } from '../src/sinks/sink.js';
import { expectCountersAddUp, feed, streamBytes } from './helpers/feed.js';
import { TestJournald, type JournalEntry } from './helpers/journald.js';
import { captureLog } from './helpers/log.js';
import { withOneStream, type OneStream } from './helpers/one-stream.js';
import { isRoot } from './helpers/tmpfs.js';
import { sleep, waitFor } from './helpers/wait.js';

let unique = 0;
/** A fresh executor id per test: journal queries filter on it. */
const executorId = (): string => `E-${process.pid}-${Date.now()}-${unique++}`;

function metaFor(overrides: Partial<StreamMetadata> = {}): StreamMetadata {
  return {
    stream: 'stdout',
    hostname: 'agent-1',
    sandbox: '/tmp/sandbox',
    agent_id: 'A1-S0',
    framework_id: 'F1-0000',
    executor_id: executorId(),
    container_id: 'C1.C2',
    executor_labels: {},
    task_labels: {},
    ...overrides,
  };
}

/** For the encoder only; sinks are fed stream bytes. */
const record = (meta: StreamMetadata, line: string | Buffer, partial = false): LogRecord => {
  const bytes = typeof line === 'string' ? Buffer.from(line) : line;
  return new ChunkLine(bytes, 0, bytes.length, partial, Date.now(), meta);
};

const created: Sink[] = [];
afterAll(async () => {
  await Promise.all(created.map((sink) => sink.stop(Date.now())));
});

function makeSink(
  options: Record<string, unknown>,
  meta: StreamMetadata,
  log = captureLog().log,
  maxBytes = 1 << 20,
  lines: LineOptions = DEFAULT_CONFIG.lines,
): Sink & OneStream {
  const reader = new ConfigReader('sinks.j', options);
  const parsed = journaldSink.parse(reader);
  reader.done();
  const sink = withOneStream(journaldSink.create(parsed, { name: 'j', buffer: { maxBytes, whenFull: 'drop_oldest' }, log, meta }), lines);
  sink.start();
  created.push(sink);
  return sink;
}

const numbered = (label: string, from: number, to: number): string[] =>
  Array.from({ length: to - from }, (_, i) => `${label} ${from + i}`);

const messages = (entries: JournalEntry[]): unknown[] => entries.map((entry) => entry.MESSAGE);

describe('journald sink: config', () => {
  it('fills in defaults, derives the stream socket from the socket, and names bad keys', () => {
    expect(journaldSink.parse(new ConfigReader('sinks.j', {}))).toEqual({
      transport: 'native',
      socket: '/run/systemd/journal/socket',
      stream_socket: '/run/systemd/journal/stdout',
      max_entry_bytes: 131072,
    } satisfies JournaldOptions);
    expect(
      journaldSink.parse(
        new ConfigReader('sinks.j', { socket: '/run/systemd/journal.ns/socket', identifier: 'web', max_entry_bytes: '16KB', transport: 'stream' }),
      ),
    ).toEqual({
      transport: 'stream',
      socket: '/run/systemd/journal.ns/socket',
      stream_socket: '/run/systemd/journal.ns/stdout',
      identifier: 'web',
      max_entry_bytes: 16384,
    });
    expect(() => journaldSink.parse(new ConfigReader('sinks.j', { transport: 'udp' }))).toThrow(
      'sinks.j.transport: "udp" must be one of native, stream',
    );
    expect(() => journaldSink.parse(new ConfigReader('sinks.j', { max_entry_bytes: 100 }))).toThrow(
      'sinks.j.max_entry_bytes: 100 must be at least 4096 bytes',
    );
    expect(() => journaldSink.parse(new ConfigReader('sinks.j', { max_entry_bytes: '1GB' }))).toThrow(
      'sinks.j.max_entry_bytes: "1GB" must be at most 67108864 bytes',
    );
    expect(() => journaldSink.parse(new ConfigReader('sinks.j', { identifier: '' }))).toThrow('sinks.j.identifier: "" must not be empty');
  });

  it('turns label keys into journald field names', () => {
    expect(journaldFieldName('app.kubernetes.io/name')).toBe('APP_KUBERNETES_IO_NAME');
    expect(journaldFieldName('_secret')).toBe('SECRET');
    expect(journaldFieldName('9lives')).toBe('LIVES');
    expect(journaldFieldName('__')).toBeUndefined();
    expect(journaldFieldName('x'.repeat(100))).toBe('X'.repeat(64));
  });

  it('keeps every entry within max_entry_bytes and cuts on a character boundary', () => {
    const encoder = new EntryEncoder({ identifier: undefined, maxEntryBytes: 4096 }, () => undefined);
    for (const line of ['a'.repeat(10_000), 'é'.repeat(5000), '€'.repeat(3000)]) {
      const entry = encoder.encode(record(metaFor(), line, true));
      expect(entry.length).toBeLessThanOrEqual(4096);
      expect(entry.length).toBeGreaterThan(4000);
    }
  });
});

describe.skipIf(!isRoot())('journald sink against a real systemd-journald', () => {
  const journald = new TestJournald();
  beforeAll(() => journald.start());
  afterAll(() => journald.remove());

  it('writes MESSAGE, PRIORITY, identifier, ids, labels and multi-line values as native fields', async () => {
    const meta = metaFor({
      task_id: 'web.1234',
      executor_labels: { team: 'infra', 'app.kubernetes.io/name': 'web', priority: 'must not override' },
      task_labels: { team: 'payments', notes: 'first line\nsecond line' },
    });
    const sink = makeSink({ socket: journald.socket }, meta);
    const lines = ['hello journald', 'tab\there, ünïcödé ✓', '  padded both sides  '];
    feed(sink, meta, lines);
    const entries = await journald.waitForEntries({ EXECUTOR_ID: meta.executor_id! }, 3);
    expect(messages(entries)).toEqual(lines);
    const entry = entries[0];
    expect(entry).toMatchObject({
      PRIORITY: '6',
      SYSLOG_IDENTIFIER: 'web.1234',
      STREAM: 'STDOUT',
      FRAMEWORK_ID: 'F1-0000',
      AGENT_ID: 'A1-S0',
      EXECUTOR_ID: meta.executor_id,
      CONTAINER_ID: 'C1.C2',
      TASK_ID: 'web.1234',
      TEAM: 'payments',
      APP_KUBERNETES_IO_NAME: 'web',
      NOTES: 'first line\nsecond line',
      _TRANSPORT: 'journal',
    });
    expect(entry.PARTIAL_MESSAGE).toBeUndefined();
    // 15 + 26 (ü ï ö é: 2 bytes each, ✓: 3) + 22, newlines included.
    expect(sink.stats).toMatchObject({ linesIn: 3, linesSent: 3, bytesIn: 63, bytesSent: 63, linesDropped: 0, failedSends: 0, reconnects: 0 });
    expect(sink.status().state).toBe('up');
  });

  it('uses PRIORITY 3 for stderr, the executor id or a configured identifier, and flags partial lines', async () => {
    const meta = metaFor({ stream: 'stderr' });
    const sink = makeSink({ socket: journald.socket }, meta);
    // The stream ends without a last newline: stop() sends that line, flagged partial.
    feed(sink, meta, ['oops', 'no newline yet'], { unterminated: true });
    await sink.stop(Date.now() + 2000);
    const entries = await journald.waitForEntries({ EXECUTOR_ID: meta.executor_id! }, 2);
    expect(entries.map((e) => [e.MESSAGE, e.PRIORITY, e.STREAM, e.SYSLOG_IDENTIFIER, e.PARTIAL_MESSAGE])).toEqual([
      ['oops', '3', 'STDERR', meta.executor_id, undefined],
      ['no newline yet', '3', 'STDERR', meta.executor_id, 'true'],
    ]);
    expect(entries[0].TASK_ID).toBeUndefined();
    expect(sink.stats).toMatchObject({ linesIn: 2, linesSent: 2, bytesIn: 19, bytesSent: 19, linesDropped: 0 });
    expect(sink.buffered()).toEqual({ lines: 0, bytes: 0 });

    const named = metaFor();
    feed(makeSink({ socket: journald.socket, identifier: 'fixed-name' }, named), named, ['named']);
    const [entry] = await journald.waitForEntries({ EXECUTOR_ID: named.executor_id! }, 1);
    expect(entry.SYSLOG_IDENTIFIER).toBe('fixed-name');
  });

  it('replaces invalid UTF-8 in MESSAGE and keeps other bytes, NUL included', async () => {
    const meta = metaFor();
    const sink = makeSink({ socket: journald.socket }, meta);
    feed(sink, meta, [Buffer.from([0x61, 0xff, 0x62, 0xc3, 0x28, 0x63]), Buffer.from('nul\0byte\rcr')]);
    const entries = await journald.waitForEntries({ EXECUTOR_ID: meta.executor_id! }, 2);
    expect(entries[0].MESSAGE).toBe('a\uFFFDb\uFFFD(c');
    // journalctl prints a value that is not printable text as its bytes.
    expect(entries[1].MESSAGE).toEqual([...Buffer.from('nul\0byte\rcr')]);
  });

  it('truncates an oversized entry with a visible marker instead of dropping it', async () => {
    const meta = metaFor();
    const sink = makeSink({ socket: journald.socket, max_entry_bytes: 8192 }, meta);
    feed(sink, meta, ['x'.repeat(20_000), 'small after big']);
    const entries = await journald.waitForEntries({ EXECUTOR_ID: meta.executor_id! }, 2);
    const match = / \[truncated: (\d+) of 20000 bytes kept\]$/.exec(String(entries[0].MESSAGE));
    expect(match).not.toBeNull();
    const kept = Number(match![1]);
    expect(entries[0].MESSAGE).toBe(`${'x'.repeat(kept)} [truncated: ${kept} of 20000 bytes kept]`);
    expect(kept).toBeGreaterThan(7000);
    expect(entries[1].MESSAGE).toBe('small after big');
    // Counted in stream bytes: what the task wrote, not what the entry kept.
    expect(sink.stats).toMatchObject({ linesSent: 2, bytesSent: 20_017, linesDropped: 0 });
  });

  it('lowers max_entry_bytes when the kernel refuses a datagram that large (EMSGSIZE)', async () => {
    const meta = metaFor();
    const { log, entries: logged } = captureLog();
    // A line limit above the datagram limit, so one 600 KB line reaches the encoder whole.
    const lineOptions = { ...DEFAULT_CONFIG.lines, maxLineBytes: 1 << 20 };
    const sink = makeSink({ socket: journald.socket, max_entry_bytes: '1MB' }, meta, log, 4 << 20, lineOptions);
    feed(sink, meta, ['y'.repeat(600_000), 'z'.repeat(1000)]);
    const entries = await journald.waitForEntries({ EXECUTOR_ID: meta.executor_id! }, 2);
    // 1 MiB, 512 KiB and 256 KiB exceed the default 208 KiB datagram limit; 128 KiB fits.
    expect(String(entries[0].MESSAGE)).toMatch(/^y+ \[truncated: \d+ of 600000 bytes kept\]$/);
    expect(String(entries[0].MESSAGE).length).toBeGreaterThan(100_000);
    expect(String(entries[0].MESSAGE).length).toBeLessThan(131_072);
    expect(entries[0].PARTIAL_MESSAGE).toBeUndefined();
    expect(entries[1].MESSAGE).toBe('z'.repeat(1000));
    const warnings = logged().filter((line) => String(line.msg).includes('lowering the limit'));
    expect(warnings.map((w) => w.now)).toEqual([524288, 262144, 131072]);
    expect(sink.stats).toMatchObject({ linesSent: 2, bytesSent: 601_002, linesDropped: 0, failedSends: 0 });
  });

  it('leaves out labels that would crowd out the message, and says so', async () => {
    const meta = metaFor({ executor_labels: { small: 'kept', huge: 'h'.repeat(5000) } });
    const { log, entries } = captureLog();
    feed(makeSink({ socket: journald.socket, max_entry_bytes: 8192 }, meta, log), meta, ['with labels']);
    const [entry] = await journald.waitForEntries({ EXECUTOR_ID: meta.executor_id! }, 1);
    expect(entry.SMALL).toBe('kept');
    expect(entry.HUGE).toBeUndefined();
    expect(entries().find((line) => String(line.msg).includes('labels left out'))).toMatchObject({ labels: ['HUGE'] });
  });

  it('stream transport: MESSAGE, PRIORITY and identifier over the stdout socket, a new connection per identifier', async () => {
    const id = `stream-${process.pid}-${unique++}`;
    const meta = metaFor({ stream: 'stderr', task_id: id });
    const sink = makeSink({ socket: journald.socket, transport: 'stream' }, meta);
    feed(sink, meta, ['first via stream', 'ünïcödé \xff']);
    // Enrichment: the bytes that arrive from now on carry the new metadata.
    const renamed = { ...meta, task_id: `${id}-enriched` };
    feed(sink, renamed, ['after enrichment']);
    const entries = await journald.waitForEntries({ SYSLOG_IDENTIFIER: id }, 2);
    expect(entries.map((e) => [e.MESSAGE, e.PRIORITY, e._TRANSPORT, e.EXECUTOR_ID])).toEqual([
      ['first via stream', '3', 'stdout', undefined],
      ['ünïcödé ÿ', '3', 'stdout', undefined],
    ]);
    const [later] = await journald.waitForEntries({ SYSLOG_IDENTIFIER: `${id}-enriched` }, 1);
    expect(later.MESSAGE).toBe('after enrichment');
    expect(sink.stats).toMatchObject({ linesSent: 3, reconnects: 0, failedSends: 0 });
  });

  it('stream transport keeps one connection for many lines (journald half-closes it at once)', async () => {
    const id = `stream-many-${process.pid}-${unique++}`;
    const meta = metaFor({ task_id: id });
    const sink = makeSink({ socket: journald.socket, transport: 'stream' }, meta);
    const lines = Array.from({ length: 3000 }, (_, i) => `  many ${i} ${'m'.repeat(i % 200)}.`);
    feed(sink, meta, lines);
    const entries = await journald.waitForEntries({ SYSLOG_IDENTIFIER: id }, lines.length);
    expect(messages(entries)).toEqual(lines);
    expect(sink.stats).toMatchObject({
      linesSent: lines.length,
      bytesSent: streamBytes(lines).length,
      reconnects: 0,
      failedSends: 0,
    });
  });

  it('waits out a stalled journald (EAGAIN), retries, and delivers every line once', async () => {
    const meta = metaFor();
    const sink = makeSink({ socket: journald.socket }, meta);
    feed(sink, meta, ['before the stall']);
    await journald.waitForEntries({ EXECUTOR_ID: meta.executor_id! }, 1);
    journald.pause();
    try {
      feed(sink, meta, numbered('line', 0, 200));
      await waitFor(() => sink.stats.failedSends > 0, { timeoutMs: 5000, what: 'a failed send' });
      expect(sink.status()).toMatchObject({ state: 'down', lastError: `journald socket ${journald.socket}: EAGAIN` });
    } finally {
      journald.resume();
    }
    const entries = await journald.waitForEntries({ EXECUTOR_ID: meta.executor_id! }, 201);
    expect(messages(entries)).toEqual(['before the stall', ...numbered('line', 0, 200)]);
    await waitFor(() => sink.stats.linesSent === 201, { what: 'all sent' });
    expect(sink.stats).toMatchObject({ linesIn: 201, bytesSent: 17 + streamBytes(numbered('line', 0, 200)).length, linesDropped: 0 });
    expectCountersAddUp(sink);
  });

  it('stop() settles by its deadline while journald never reads, counting what is left as buffered', async () => {
    const meta = metaFor();
    for (const transport of ['native', 'stream']) {
      const sink = makeSink({ socket: journald.socket, transport }, meta);
      feed(sink, meta, [`${transport} warm-up`]);
      await waitFor(() => sink.stats.linesSent === 1, { what: 'warm-up sent' });
      journald.pause();
      try {
        // 2 MB: more than the 1 MiB buffer holds, so drop_oldest drops some as well.
        feed(sink, meta, Array.from({ length: 500 }, () => 'w'.repeat(4000)));
        await sleep(200);
        const started = Date.now();
        await sink.stop(Date.now() + 300);
        expect(Date.now() - started).toBeLessThan(1500);
        expect(sink.buffered().lines).toBeGreaterThan(0);
        expect(sink.stats.linesIn).toBe(501);
        expectCountersAddUp(sink);
      } finally {
        journald.resume();
      }
    }
  });
  it('stop() is prompt when the deadline lands in a send after the backoff has grown', async () => {
    const meta = metaFor();
    const sink = makeSink({ socket: journald.socket }, meta);
    journald.pause();
    try {
      feed(sink, meta, numbered('stalled', 0, 100));
      // Each send now waits 1 s for room, then backs off 100, 200, 400, 800 ms.
      await waitFor(() => sink.stats.failedSends >= 4, { timeoutMs: 15_000, what: 'four failed sends' });
      await sleep(1300);
      const started = Date.now();
      await sink.stop(Date.now() + 100);
      expect(Date.now() - started).toBeLessThan(1000);
      // The socket took a few datagrams before journald stalled; the rest stay buffered.
      expect(sink.stats).toMatchObject({ linesIn: 100, bytesIn: streamBytes(numbered('stalled', 0, 100)).length, linesDropped: 0 });
      expect(sink.buffered().lines).toBeGreaterThan(0);
      expectCountersAddUp(sink);
    } finally {
      journald.resume();
    }
  });
});

describe.skipIf(!isRoot())('journald sink faults', () => {
  const journald = new TestJournald();
  afterAll(() => journald.remove());

  /**
   * Kills journald with `queued` unread in its socket queue, after a warm-up line it did read: the kernel took the
   * queued lines, so the sink counted them sent.
   */
  async function killWithUnread(sink: Sink & OneStream, meta: StreamMetadata, queued: string[]): Promise<void> {
    feed(sink, meta, ['warm-up']);
    await journald.waitForEntries({ EXECUTOR_ID: meta.executor_id! }, 1);
    journald.pause();
    feed(sink, meta, queued);
    await waitFor(() => sink.stats.linesSent === 1 + queued.length, { what: 'the queued lines counted sent' });
    await journald.kill();
  }

  it('buffers while journald is down at start and delivers once it starts', async () => {
    const meta = metaFor();
    const sink = makeSink({ socket: journald.socket }, meta);
    feed(sink, meta, numbered('early', 0, 20));
    await waitFor(() => sink.stats.failedSends > 0, { what: 'a failed send' });
    expect(sink.status()).toMatchObject({ state: 'down', lastError: `journald socket ${journald.socket}: ENOENT` });
    expect(sink.stats.linesSent).toBe(0);
    await journald.start();
    const entries = await journald.waitForEntries({ EXECUTOR_ID: meta.executor_id! }, 20);
    expect(messages(entries)).toEqual(numbered('early', 0, 20));
    await waitFor(() => sink.stats.linesSent === 20, { what: 'all sent' });
    // 10 * 'early N\n' + 10 * 'early NN\n'.
    expect(sink.stats).toMatchObject({ linesIn: 20, linesSent: 20, bytesIn: 170, bytesSent: 170, linesDropped: 0, reconnects: 0 });
    expectCountersAddUp(sink);
  });

  it('survives journald being killed mid-stream and restarted: no loss, the newest entries again, a reconnect counted', async () => {
    if (!journald.running) await journald.start();
    const meta = metaFor();
    const sink = makeSink({ socket: journald.socket }, meta);
    feed(sink, meta, numbered('line', 0, 50));
    await journald.waitForEntries({ EXECUTOR_ID: meta.executor_id! }, 50);
    await journald.kill();
    feed(sink, meta, numbered('line', 50, 100));
    await waitFor(() => sink.stats.failedSends > 0, { what: 'a failed send' });
    expect(sink.status().lastError).toBe(`journald socket ${journald.socket}: ECONNREFUSED`);
    await journald.start();
    // The sink cannot tell how much of its socket queue the killed journald had read: it sends its newest
    // datagrams again (as many as the queue holds, and the one journald may have taken from it), then the rest.
    const replayed = numbered('line', 50 - queueLimits().datagrams - 1, 50);
    const entries = await journald.waitForEntries({ EXECUTOR_ID: meta.executor_id! }, 100 + replayed.length);
    expect(messages(entries)).toEqual([...numbered('line', 0, 50), ...replayed, ...numbered('line', 50, 100)]);
    await waitFor(() => sink.stats.linesSent === 100, { what: 'all sent' });
    expect(sink.stats.reconnects).toBe(1);
    expectCountersAddUp(sink);
  });

  it('sends again what sat unread in the queue of a journald that was killed: counted sent, so it must arrive', async () => {
    if (!journald.running) await journald.start();
    const meta = metaFor();
    const sink = makeSink({ socket: journald.socket }, meta);
    // Fewer than the queue holds: the kernel takes them all, so the sink counts them sent, and journald reads none.
    const queued = numbered('queued', 0, Math.min(8, queueLimits().datagrams - 1));
    await killWithUnread(sink, meta, queued);
    await journald.start();
    feed(sink, meta, ['after']);
    const entries = await journald.waitForEntries({ EXECUTOR_ID: meta.executor_id! }, 2 + queued.length);
    expect(new Set(messages(entries))).toEqual(new Set(['warm-up', ...queued, 'after']));
    expect(messages(entries).slice(-queued.length - 1)).toEqual([...queued, 'after']);
    expectCountersAddUp(sink);
  });

  it('counts as replay_overflow, not sent, what a killed journald may not have read when the stream ends before journald is back', async () => {
    if (!journald.running) await journald.start();
    const meta = metaFor();
    const sink = makeSink({ socket: journald.socket }, meta);
    const queued = numbered('queued', 0, Math.min(8, queueLimits().datagrams - 2));
    await killWithUnread(sink, meta, queued);
    feed(sink, meta, ['never sent']);
    await waitFor(() => sink.stats.failedSends > 0, { what: 'a failed send' });
    await sink.stop(Date.now() + 200);
    // The sink cannot tell what the killed journald read: all it still held for a replay counts as dropped.
    expect(sink.stats).toMatchObject({
      linesIn: queued.length + 2,
      linesSent: 0,
      bufferedLines: 1,
      droppedBy: { replay_overflow: { lines: queued.length + 1, bytes: streamBytes(['warm-up', ...queued]).length } },
    });
    expectCountersAddUp(sink);
    await journald.start();
  });

  it('stream transport reconnects after journald restarts', async () => {
    if (!journald.running) await journald.start();
    const id = `stream-restart-${process.pid}-${unique++}`;
    const meta = metaFor({ task_id: id });
    const sink = makeSink({ socket: journald.socket, transport: 'stream' }, meta);
    feed(sink, meta, ['before']);
    await journald.waitForEntries({ SYSLOG_IDENTIFIER: id }, 1);
    await journald.kill();
    feed(sink, meta, ['during']);
    await waitFor(() => sink.stats.failedSends > 0, { what: 'a failed send' });
    await journald.start();
    feed(sink, meta, ['after']);
    const entries = await journald.waitForEntries({ SYSLOG_IDENTIFIER: id }, 3);
    expect(messages(entries)).toEqual(['before', 'during', 'after']);
    expect(sink.stats).toMatchObject({ linesSent: 3, reconnects: 1 });
  });
});
