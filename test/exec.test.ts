// The exec sink against real processes: shell scripts that record their environment and stdin.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, parseConfig } from '../src/config/config.js';
import { ConfigReader } from '../src/config-reader.js';
import { execSink, type ExecOptions } from '../src/sinks/exec/exec.js';
import { ReplayWindow, type WrittenLines } from '../src/sinks/exec/replay-window.js';
import type { Sink } from '../src/sinks/sink.js';
import type { StreamMetadata } from '../src/mesos/metadata.js';
import {
  COUNT_INCARNATION,
  incarnations,
  isAlive,
  mesosVariables,
  readEnvFile,
  readIfExists,
  streamMeta,
  writeScript,
} from './helpers/exec.js';
import { captureLog } from './helpers/log.js';
import { withOneStream } from './helpers/one-stream.js';
import { expectCountersAddUp, feed, streamBytes } from './helpers/feed.js';
import { makeSandbox } from './helpers/sandbox.js';
import { waitFor } from './helpers/wait.js';

const SANDBOX = '/var/lib/mesos/slaves/S1/frameworks/F1/executors/E1/runs/C1';

const fullMeta = (extra: Partial<StreamMetadata> = {}): StreamMetadata =>
  streamMeta(SANDBOX, {
    agent_id: 'S1',
    framework_id: 'F1',
    executor_id: 'E1',
    container_id: 'C1',
    executor_name: 'Command Executor (Task: web)',
    executor_labels: { team: 'payments', tier: 'front' },
    ...extra,
  });

/**
 * Stops a sink whose script crashed three times, within its 3 s deadline. The fourth process got the replay window
 * and then the rest: its output ends with every line, in order. Returns those lines' stream bytes.
 */
async function stopAfterFourthProcess(sink: Sink, dir: string, lines: string[]): Promise<Buffer> {
  const started = Date.now();
  await sink.stop(Date.now() + 3000);
  expect(Date.now() - started).toBeLessThan(3000);
  expect(incarnations(dir)).toBe(4);
  const got = readFileSync(join(dir, 'got'));
  const all = streamBytes(lines);
  expect(got.subarray(got.length - all.length).equals(all)).toBe(true);
  return all;
}

const sinks: Sink[] = [];
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((sink) => sink.stop(Date.now())));
});

function makeSink(config: Record<string, unknown>, meta: StreamMetadata, maxBytes = 8 << 20) {
  const options = execSink.parse(new ConfigReader('sinks.fwd', config));
  const { log, entries } = captureLog();
  const sink = withOneStream(execSink.create(options, { name: 'fwd', buffer: { maxBytes, whenFull: 'drop_oldest' }, log, meta }));
  sinks.push(sink);
  sink.start();
  return { sink, entries, options };
}

const numbered = (count: number, label = 'line'): string[] => Array.from({ length: count }, (_, i) => `${label} ${i}`);

describe('exec sink: environment and stdin', () => {
  it('gives the External container logger variables exactly, and each line as raw bytes plus a newline', async () => {
    const { dir } = makeSandbox();
    const script = writeScript(dir, 'record.sh', 'env -0 > "$OUT/env"\necho $$ > "$OUT/pid"\ncat > "$OUT/stdin"');
    const meta = fullMeta({ user: 'nobody', task_id: 'web.1' });
    const { sink } = makeSink({ command: [script], env: { EXTRA: 'a b=c' } }, meta);
    const lines = [
      'plain',
      '',
      Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x0d, 0x20, 0xc3, 0x28]), // invalid UTF-8 and a CR stay raw
      '{"json": "\\u00e9 é"}',
      'tab\there',
      'last, partial',
    ];
    // The process starts with the first line, taking the helper's environment as it is then.
    process.env.MESOS_LOG_TASK_ID = 'stale, from the helper environment';
    process.env.EXEC_TEST_INHERITED = 'inherited';
    try {
      // The stream ends without a newline: stop() sends the last line, which the process gets with one.
      feed(sink, meta, lines, { unterminated: true });
      await waitFor(() => readIfExists(join(dir, 'pid')).length > 0, { what: 'the process to start' });
    } finally {
      delete process.env.MESOS_LOG_TASK_ID;
      delete process.env.EXEC_TEST_INHERITED;
    }
    const started = Date.now();
    await sink.stop(Date.now() + 2000);
    expect(Date.now() - started).toBeLessThan(1500);

    expect(readFileSync(join(dir, 'stdin')).equals(streamBytes(lines))).toBe(true);
    const env = readEnvFile(join(dir, 'env'));
    const executorInfo = JSON.stringify({
      executor_id: { value: 'E1' },
      framework_id: { value: 'F1' },
      name: 'Command Executor (Task: web)',
      labels: { labels: [{ key: 'team', value: 'payments' }, { key: 'tier', value: 'front' }] },
    });
    expect(mesosVariables(env)).toEqual({
      MESOS_LOG_STREAM: 'STDOUT',
      MESOS_LOG_SANDBOX_DIRECTORY: SANDBOX,
      MESOS_LOG_EXECUTORINFO_JSON: executorInfo,
      MESOS_EXECUTORINFO_JSON: executorInfo,
      MESOS_LOG_USER: 'nobody',
      MESOS_LOG_AGENT_ID: 'S1',
      MESOS_LOG_FRAMEWORK_ID: 'F1',
      MESOS_LOG_EXECUTOR_ID: 'E1',
      MESOS_LOG_CONTAINER_ID: 'C1',
      MESOS_LOG_TASK_ID: 'web.1',
    });
    expect(env.EXTRA).toBe('a b=c');
    expect(env.EXEC_TEST_INHERITED).toBe('inherited');
    expect(env.PATH).toBe(process.env.PATH);

    // Stream bytes: 6 + 1 + 10 + 22 (é: 2 bytes) + 9 + 13, the last line without its newline.
    expect(sink.stats).toMatchObject({
      linesIn: 6,
      linesSent: 6,
      bytesIn: 61,
      bytesSent: 61,
      linesDropped: 0,
      reconnects: 0,
      failedSends: 0,
    });
    expectCountersAddUp(sink);
    expect(isAlive(Number(readFileSync(join(dir, 'pid'), 'utf8')))).toBe(false);
  });

  it('ends every line with one LF: a CRLF loses its CR, each piece of a cut long line gets its own', async () => {
    const { dir } = makeSandbox();
    const script = writeScript(dir, 'record.sh', 'cat > "$OUT/stdin"');
    const meta = fullMeta();
    const { sink } = makeSink({ command: [script] }, meta);
    const long = 'x'.repeat(DEFAULT_CONFIG.lines.maxLineBytes + 10);
    // Three batches: whole lines only (passed on as taken), a CRLF, and a line cut in two.
    sink.append(Buffer.from('one\ntwo\n'), Date.now(), meta);
    await waitFor(() => sink.stats.linesSent === 2, { what: 'the first batch' });
    sink.append(Buffer.from('three\r\nfour\n'), Date.now(), meta);
    await waitFor(() => sink.stats.linesSent === 4, { what: 'the second batch' });
    sink.append(Buffer.from(`${long}\nfive\n`), Date.now(), meta);
    await sink.stop(Date.now() + 2000);
    const cut = DEFAULT_CONFIG.lines.maxLineBytes;
    const expected = `one\ntwo\nthree\nfour\n${long.slice(0, cut)}\n${long.slice(cut)}\nfive\n`;
    expect(readFileSync(join(dir, 'stdin'), 'latin1')).toBe(expected);
    // Lines are counted by the stream's newlines: the cut line is one.
    expect(sink.stats).toMatchObject({ linesIn: 6, linesSent: 6, linesDropped: 0 });
  });

  it('runs a string command through /bin/sh -c; STDERR stream; ids it does not know are left out', async () => {
    const { dir } = makeSandbox();
    const meta = streamMeta('/tmp/somewhere', { stream: 'stderr' });
    const { sink, options } = makeSink(
      { command: 'env -0 > "$DEST/env"; tr a-z A-Z > "$DEST/stdin"', env: { DEST: dir } },
      meta,
    );
    expect(options.command).toEqual(['/bin/sh', '-c', 'env -0 > "$DEST/env"; tr a-z A-Z > "$DEST/stdin"']);
    feed(sink, meta, ['abc', 'def']);
    await sink.stop(Date.now() + 2000);

    expect(readFileSync(join(dir, 'stdin'), 'utf8')).toBe('ABC\nDEF\n');
    expect(mesosVariables(readEnvFile(join(dir, 'env')))).toEqual({
      MESOS_LOG_STREAM: 'STDERR',
      MESOS_LOG_SANDBOX_DIRECTORY: '/tmp/somewhere',
      MESOS_LOG_EXECUTORINFO_JSON: '{}',
      MESOS_EXECUTORINFO_JSON: '{}',
    });
  });
});

describe('exec sink: faults', () => {
  // Incarnation n records its environment in env.<n>; the first `crashes` take one line (or none) and exit 1.
  const crashingScript = (dir: string, crashes: number, readFirst: boolean) =>
    writeScript(
      dir,
      'crashy.sh',
      [
        COUNT_INCARNATION,
        'env -0 > "$OUT/env.$n"',
        `if [ $n -le ${crashes} ]; then`,
        readFirst ? '  IFS= read -r line; printf "%s\\n" "$line" >> "$OUT/got"' : '  :',
        '  exit 1',
        'fi',
        'cat >> "$OUT/got"',
      ].join('\n'),
    );

  for (const readFirst of [true, false]) {
    const how = readFirst ? 'after reading one line' : 'without reading';
    it(`a process that crashes 3 times (${how}) is restarted; every line reaches the one that stays up`, async () => {
      const { dir } = makeSandbox();
      const first = fullMeta();
      const { sink, entries } = makeSink(
        {
          command: [crashingScript(dir, 3, readFirst)],
          restart_backoff_ms: { min: 20, max: 200 },
          stop_grace_ms: 5000,
        },
        first,
      );
      // Enrichment arrives between the two halves: a process keeps the environment it started with, a restart
      // gets the metadata of the newest line.
      const lines = numbered(2000);
      feed(sink, first, lines.slice(0, 1000));
      await waitFor(() => incarnations(dir) === 2, { what: 'a restart' });
      feed(sink, fullMeta({ task_id: 'web.1' }), lines.slice(1000));
      const all = await stopAfterFourthProcess(sink, dir, lines);
      expect(readEnvFile(join(dir, 'env.1')).MESOS_LOG_TASK_ID).toBeUndefined();
      expect(readEnvFile(join(dir, 'env.2')).MESOS_LOG_TASK_ID).toBeUndefined();
      expect(readEnvFile(join(dir, 'env.4')).MESOS_LOG_TASK_ID).toBe('web.1');

      expect(sink.stats).toMatchObject({
        linesIn: 2000,
        linesSent: 2000,
        bytesIn: all.length,
        bytesSent: all.length,
        linesDropped: 0,
        reconnects: 3,
      });
      expectCountersAddUp(sink);
      const exits = entries().filter((e) => e.msg === 'exec process ended; restarting it');
      expect(exits.some((e) => e.status === 'exited with code 1')).toBe(true);
    });
  }

  it('a process that crashes at stream end is restarted within the grace period and gets the lines again', async () => {
    const { dir } = makeSandbox();
    const meta = fullMeta();
    const { sink, entries } = makeSink(
      { command: [crashingScript(dir, 3, true)], restart_backoff_ms: { min: 20, max: 200 }, stop_grace_ms: 3000 },
      meta,
    );
    const lines = numbered(100);
    feed(sink, meta, lines);
    await stopAfterFourthProcess(sink, dir, lines);
    expect(sink.stats).toMatchObject({ linesIn: 100, linesSent: 100, bytesIn: 790, bytesSent: 790, reconnects: 3 });
    expectCountersAddUp(sink);
    expect(entries().some((e) => e.msg === 'exec process failed at stream end')).toBe(true);
  });

  it('a process that dies at stream end with lines unread and cannot come back in time: they count as dropped, not sent', async () => {
    const { dir } = makeSandbox();
    // `read` takes one line (the shell reads its stdin byte by byte); the rest stays unread in the socket.
    const script = writeScript(dir, 'one.sh', 'read first\necho "$first" >> "$OUT/got"\nsleep 0.3\nexit 1');
    const meta = fullMeta();
    const { sink, entries } = makeSink(
      { command: [script], restart_backoff_ms: { min: 10_000, max: 10_000 }, stop_grace_ms: 1000 },
      meta,
    );
    const lines = numbered(100);
    feed(sink, meta, lines);
    await waitFor(() => sink.stats.linesSent === 100, { what: 'the lines written to the process' });
    await sink.stop(Date.now() + 3000);
    expect(readFileSync(join(dir, 'got'), 'utf8')).toBe('line 0\n');
    // The sink cannot tell how much a dead process read: the whole replay window counts, the line it read too.
    expect(sink.stats).toMatchObject({
      linesIn: 100,
      linesSent: 0,
      droppedBy: { replay_overflow: { lines: 100, bytes: streamBytes(lines).length } },
    });
    expectCountersAddUp(sink);
    expect(entries().some((e) => String(e.msg).startsWith('exec process is down at stream end'))).toBe(true);
  });

  it('a process that never reads: drops are counted, stop is prompt, its whole group is killed', async () => {
    const { dir } = makeSandbox();
    const script = writeScript(dir, 'stuck.sh', 'echo $$ > "$OUT/pid"\nsleep 30 &\necho $! > "$OUT/sleep"\nwait');
    const meta = fullMeta();
    const { sink, entries } = makeSink({ command: [script], stop_grace_ms: 300 }, meta, 64 * 1024);
    // In rounds, so the delivery loop fills the socket and ends up with a write the process never takes.
    const lines = numbered(30_000, 'x'.repeat(90));
    feed(sink, meta, lines.slice(0, 1));
    await waitFor(() => readIfExists(join(dir, 'sleep')).length > 0, { what: 'the script to start' });
    for (let i = 1; i < lines.length; i += 500) {
      feed(sink, meta, lines.slice(i, i + 500));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const started = Date.now();
    await sink.stop(Date.now() + 300);
    const took = Date.now() - started;
    expect(took).toBeLessThan(1500);

    expect(sink.stats).toMatchObject({ linesIn: 30_000, bytesIn: streamBytes(lines).length });
    expect(sink.stats.linesDropped).toBeGreaterThan(0);
    expect(sink.stats.droppedBy.buffer_full?.lines).toBe(sink.stats.linesDropped);
    // The write the process never took was cut off at the deadline: reported as pending, not as a failed send.
    expect(sink.stats.failedSends).toBe(0);
    expect(sink.status()).toMatchObject({ state: 'down', lastError: 'a send was still pending at the stop deadline' });
    expect(sink.buffered().lines).toBeGreaterThan(0);
    expectCountersAddUp(sink);
    expect(entries().some((e) => e.msg === 'exec process did not exit after EOF; killed')).toBe(true);
    for (const file of ['pid', 'sleep']) {
      const pid = Number(readFileSync(join(dir, file), 'utf8'));
      await waitFor(() => !isAlive(pid), { what: `${file} ${pid} to be gone`, timeoutMs: 2000 });
    }
  });

  it('a process that closes its stdin but keeps running is killed and restarted', async () => {
    const { dir } = makeSandbox();
    const script = writeScript(
      dir,
      'deaf.sh',
      [
        COUNT_INCARNATION,
        'if [ $n -le 1 ]; then exec 0<&-; echo > "$OUT/closed"; exec sleep 30; fi',
        'cat >> "$OUT/got"',
      ].join('\n'),
    );
    const meta = fullMeta();
    const { sink } = makeSink({ command: [script], restart_backoff_ms: { min: 20, max: 100 } }, meta);
    const lines = numbered(50);
    feed(sink, meta, lines.slice(0, 1));
    // Noticed at the next write (EPIPE): nothing tells a writer that the reader closed otherwise.
    await waitFor(() => readIfExists(join(dir, 'closed')).length > 0, { what: 'the script to close its stdin' });
    feed(sink, meta, lines.slice(1));
    await waitFor(() => readIfExists(join(dir, 'got')).equals(streamBytes(lines)), { what: 'the lines in process 2' });
    await sink.stop(Date.now() + 1000);
    expect(sink.stats).toMatchObject({ linesSent: 50, bytesSent: streamBytes(lines).length, reconnects: 1, failedSends: 1 });
    expectCountersAddUp(sink);
  });

  it('a command that does not exist: no crash, restarts and failed sends counted, the error logged', async () => {
    const meta = fullMeta();
    const { sink, entries } = makeSink(
      { command: ['/nonexistent/logger'], restart_backoff_ms: { min: 10, max: 50 } },
      meta,
    );
    feed(sink, meta, numbered(100));
    await new Promise((resolve) => setTimeout(resolve, 400));
    const started = Date.now();
    await sink.stop(Date.now() + 200);
    expect(Date.now() - started).toBeLessThan(1000);

    expect(sink.stats.linesSent).toBe(0);
    expect(sink.stats.reconnects).toBeGreaterThan(0);
    expect(sink.stats.failedSends).toBeGreaterThan(0);
    expect(sink.status()).toMatchObject({ state: 'down' });
    expect(sink.status().lastError).toMatch(/ENOENT/);
    expectCountersAddUp(sink);
    expect(sink.buffered()).toEqual({ lines: 100, bytes: 790 });
    const logged = entries().find((e) => e.msg === 'exec process ended; restarting it');
    expect(logged?.status).toMatch(/could not be started \(spawn \/nonexistent\/logger ENOENT\)/);
  });

  it('a process that exits 0 on its own is restarted for the next lines (no replay when disabled)', async () => {
    const { dir } = makeSandbox();
    const script = writeScript(
      dir,
      'oneshot.sh',
      `${COUNT_INCARNATION}\nIFS= read -r line && printf "%s\\n" "$line" >> "$OUT/got.$n"`,
    );
    const meta = fullMeta();
    const { sink } = makeSink(
      { command: [script], restart_backoff_ms: { min: 10, max: 10 }, replay_bytes: 0, stop_grace_ms: 500 },
      meta,
    );
    feed(sink, meta, ['first']);
    await waitFor(() => readIfExists(join(dir, 'got.1')).length > 0, { what: 'the first line' });
    await waitFor(() => sink.status().state === 'down', { what: 'the exit to be seen' });
    feed(sink, meta, ['second']);
    await waitFor(() => readIfExists(join(dir, 'got.2')).length > 0, { what: 'the second line' });
    await sink.stop(Date.now() + 1000);

    expect(readFileSync(join(dir, 'got.1'), 'utf8')).toBe('first\n');
    expect(readFileSync(join(dir, 'got.2'), 'utf8')).toBe('second\n');
    // A third incarnation may have started and seen EOF; it got nothing.
    expect(readdirSync(dir).filter((name) => name.startsWith('got.'))).toEqual(['got.1', 'got.2']);
    expect(sink.stats).toMatchObject({ linesSent: 2, bytesSent: 13 });
    expect(sink.stats.reconnects).toBeGreaterThanOrEqual(1);
  });
});

describe('exec sink: config', () => {
  const parse = (config: Record<string, unknown>): ExecOptions =>
    parseConfig({ sinks: { fwd: { type: 'exec', ...config } } }, undefined).sinks[0].options as ExecOptions;

  it('fills defaults', () => {
    expect(parse({ command: ['/usr/bin/logger-script', '--flag'] })).toEqual({
      command: ['/usr/bin/logger-script', '--flag'],
      env: {},
      restart_backoff_ms: { min: 100, max: 30_000 },
      replay_bytes: 256 * 1024,
      stop_grace_ms: 1000,
    });
    expect(parse({ command: 'cat', replay_bytes: '1MB', restart_backoff_ms: { min: 5 } })).toMatchObject({
      command: ['/bin/sh', '-c', 'cat'],
      replay_bytes: 1024 * 1024,
      restart_backoff_ms: { min: 5, max: 30_000 },
    });
  });

  it.each([
    [{}, /sinks\.fwd\.command is required: a list \(argv, no shell\) or a string/],
    [{ command: '  ' }, /sinks\.fwd\.command: "  " must not be empty/],
    [{ command: [] }, /sinks\.fwd\.command: \[\] must be a non-empty list of strings/],
    [{ command: ['', 'x'] }, /must start with the program to run/],
    [
      { command: 'cat', env: { MESOS_LOG_STREAM: 'x' } },
      /sinks\.fwd\.env\.MESOS_LOG_STREAM: "x" is set by the exec sink itself/,
    ],
    [{ command: 'cat', env: { MESOS_EXECUTORINFO_JSON: '{}' } }, /is set by the exec sink itself/],
    [{ command: 'cat', env: { A: 'x\0y' } }, /must not contain a NUL byte/],
    [
      { command: 'cat', restart_backoff_ms: { min: 500, max: 100 } },
      /restart_backoff_ms\.max: 100 must be a whole number from 500/,
    ],
    [{ command: 'cat', restart_backoff_ms: { mini: 5 } }, /restart_backoff_ms\.mini: 5 is not a known key/],
    [{ command: 'cat', replay_bytes: 'lots' }, /replay_bytes: "lots" is not a size/],
    [{ command: 'cat', stop_grace: 5 }, /sinks\.fwd\.stop_grace: 5 is not a known key/],
  ])('rejects %j', (config, message) => {
    expect(() => parse(config)).toThrow(message);
  });
});

/** Newline-terminated lines as the sink writes them, each standing for its own bytes plus a CR in the stream. */
function written(text: string): WrittenLines {
  const lines = text.split('\n').slice(0, -1);
  let end = 0;
  return {
    data: Buffer.from(text),
    ends: Uint32Array.from(lines, (line) => (end += line.length + 1)),
    streamLines: Uint8Array.from(lines, () => 1),
    streamBytes: Uint32Array.from(lines, (line) => line.length + 2),
  };
}

describe('exec sink: replay window', () => {
  it('keeps the newest whole lines up to the limit, and what they counted for in the stream', () => {
    const window = new ReplayWindow(10);
    window.add(written('aaaa\nbbbb\n'));
    expect(window.contents().toString()).toBe('aaaa\nbbbb\n');
    window.add(written('cc\n'));
    expect(window.contents().toString()).toBe('bbbb\ncc\n');
    expect(window.counted).toEqual({ lines: 2, bytes: 10 });
    window.add(written('0123456789abc\n'));
    expect(window.size).toBe(0);
    expect(window.counted).toEqual({ lines: 0, bytes: 0 });
    window.add(written('d\ne\n'));
    expect(window.contents().toString()).toBe('d\ne\n');
    const off = new ReplayWindow(0);
    off.add(written('x\n'));
    expect(off.size).toBe(0);
  });

  it('release() gives up the oldest whole lines until enough is freed', () => {
    const window = new ReplayWindow(100);
    window.add(written('aaaa\nbbbb\n'));
    window.add(written('cc\n'));
    window.release(1);
    expect([window.contents().toString(), window.size]).toEqual(['bbbb\ncc\n', 8]);
    window.release(5);
    expect([window.contents().toString(), window.size, window.counted]).toEqual(['cc\n', 3, { lines: 1, bytes: 4 }]);
    window.release(100);
    expect(window.size).toBe(0);
  });
});
