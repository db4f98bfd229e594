// End to end: the built helper, started as the agent starts it, tees a real pipe into the sandbox and a real
// systemd-journald (an instance of our own), through faults of the journald.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { queueLimits } from '../src/sinks/journald/unread-window.js';
import { agentState, executorDirectory, startFakeAgent, type ExecutorSpec } from './helpers/agent.js';
import { numberedLines } from './helpers/data.js';
import { TestJournald, type JournalEntry } from './helpers/journald.js';
import { streamKeepingThenChanging } from './helpers/reload.js';
import { makeSandbox } from './helpers/sandbox.js';
import { expectSummaryAddsUp, loggerArgv, LOGGER_BIN, ROOT, spawnLogger, spawnPiped, type Diagnostic, type PipedProcess } from './helpers/spawn.js';
import { isRoot } from './helpers/tmpfs.js';
import { waitFor } from './helpers/wait.js';

const SHUTDOWN_MS = 1000;
const instances: TestJournald[] = [];
afterAll(async () => {
  for (const journald of instances) await journald.remove();
});

function journaldInstance(): TestJournald {
  const journald = new TestJournald();
  instances.push(journald);
  return journald;
}

let unique = 0;

/** A Mesos sandbox path with a unique executor id (journal queries filter on it) and a config for one journald sink. */
function setup(journald: TestJournald, stream: 'stdout' | 'stderr', sink: Record<string, unknown> = {}) {
  const work = makeSandbox().dir;
  const executorId = `E-${process.pid}-${Date.now()}-${unique++}`;
  const logFilename = join(work, `slaves/S1/frameworks/F1/executors/${executorId}/runs/C1/containers/C2`, stream);
  mkdirSync(dirname(logFilename), { recursive: true });
  const configFile = join(work, 'config.yaml');
  // JSON is YAML; enrichment is off so the ids come from the path only.
  writeFileSync(
    configFile,
    JSON.stringify({
      agent: { enrich: false },
      lines: { max_line_bytes: '1KB', partial_flush_ms: 200 },
      shutdown_timeout_ms: SHUTDOWN_MS,
      sinks: { journal: { type: 'journald', socket: journald.socket, ...sink } },
    }),
  );
  const env = { ...process.env, LOG_SPLITTER_CONFIG: configFile };
  return { logFilename, executorId, env };
}

function summary(helper: PipedProcess): Record<string, number | string> {
  const found = helper.diagnostics().filter((d) => d.msg === 'sink summary' && d.sink === 'journal');
  expect(found.length, helper.stderr()).toBe(1);
  return found[0] as Record<string, number | string>;
}

const lines = (from: number, to: number, label = 'line'): string[] =>
  Array.from({ length: to - from }, (_, i) => `${label} ${from + i}`);
const text = (list: string[]): Buffer => Buffer.from(list.map((line) => `${line}\n`).join(''));
const messages = (entries: JournalEntry[]): unknown[] => entries.map((entry) => entry.MESSAGE);
const failedSend = (helper: PipedProcess): Diagnostic | undefined =>
  helper.diagnostics().find((d) => d.msg === 'sink send failed; will retry');

describe.skipIf(!isRoot())('journald sink in the helper', () => {
  it('tees stdout and stderr to journald with their fields while the sandbox stays byte-exact', async () => {
    const journald = journaldInstance();
    await journald.start();
    for (const stream of ['stdout', 'stderr'] as const) {
      const { logFilename, executorId, env } = setup(journald, stream);
      const input = Buffer.concat([
        text(lines(0, 100)),
        Buffer.from('bad \xff utf-8\r\n', 'latin1'),
        Buffer.from('x'.repeat(1500) + '\n'),
        Buffer.from('last, no newline'),
      ]);
      const helper = await spawnLogger({ log_filename: logFilename, max_size: '1MB' }, { env });
      await helper.write(input);
      // The partial last line is forwarded after partial_flush_ms, before EOF.
      await journald.waitForEntries({ EXECUTOR_ID: executorId }, 104).catch((err: Error) => {
        throw new Error(`${err.message}; helper's stderr:\n${helper.stderr()}`);
      });
      await helper.end();
      const exit = await helper.exited;
      expect(exit.code, helper.stderr()).toBe(0);
      expect(readFileSync(logFilename).equals(input)).toBe(true);

      const entries = await journald.entries({ EXECUTOR_ID: executorId });
      expect(messages(entries)).toEqual([
        ...lines(0, 100),
        'bad \uFFFD utf-8',
        'x'.repeat(1024),
        'x'.repeat(476),
        'last, no newline',
      ]);
      expect(entries.map((e) => e.PARTIAL_MESSAGE ?? '-')).toEqual([...Array(101).fill('-'), 'true', '-', 'true']);
      for (const entry of entries) {
        expect(entry).toMatchObject({
          PRIORITY: stream === 'stdout' ? '6' : '3',
          STREAM: stream.toUpperCase(),
          SYSLOG_IDENTIFIER: executorId,
          AGENT_ID: 'S1',
          FRAMEWORK_ID: 'F1',
          EXECUTOR_ID: executorId,
          CONTAINER_ID: 'C1.C2',
          _TRANSPORT: 'journal',
        });
      }
      const s = summary(helper);
      // 104 entries, 103 lines: the 1500-byte line went as two pieces.
      expect(s).toMatchObject({ type: 'journald', linesIn: 103, linesSent: 103, linesDropped: 0, bufferedLines: 0, state: 'up' });
      expectSummaryAddsUp(s, helper.written());
    }
  });

  it('with agent enrichment: task id as identifier and TASK_ID, TASK_NAME, FRAMEWORK_NAME, executor and task labels as fields', async () => {
    const journald = journaldInstance();
    await journald.start();
    const executor: ExecutorSpec = {
      id: `web-${process.pid}-${unique++}`,
      name: 'Command Executor',
      container: 'C1',
      labels: [
        { key: 'team', value: 'infra' },
        { key: 'app.kubernetes.io/name', value: 'web' },
      ],
      tasks: [{ id: `web.${Date.now()}`, name: 'web', labels: [{ key: 'team', value: 'payments' }, { key: 'note', value: 'two\nlines' }] }],
    };
    const agent = await startFakeAgent({});
    try {
      const workDir = join(makeSandbox().dir, 'work');
      const logFilename = join(executorDirectory(workDir, 'S1', 'F1', executor), 'stdout');
      mkdirSync(dirname(logFilename), { recursive: true });
      agent.state = agentState(workDir, 'S1', [{ id: 'F1', name: 'marathon', executors: [executor] }]);
      const configFile = join(workDir, 'config.yaml');
      writeFileSync(
        configFile,
        JSON.stringify({ agent: { url: agent.url, timeout_ms: 500 }, shutdown_timeout_ms: SHUTDOWN_MS, sinks: { journal: { type: 'journald', socket: journald.socket } } }),
      );
      const env = { ...process.env, LOG_SPLITTER_CONFIG: configFile, LOG_SPLITTER_LOG_LEVEL: 'debug' };
      const helper = await spawnLogger({ log_filename: logFilename, max_size: '1MB' }, { env });
      await waitFor(() => helper.diagnostics().some((d) => d.msg === 'agent metadata found'), { what: 'enrichment' });
      await helper.write(text(lines(0, 3)));
      await helper.end();
      expect((await helper.exited).code, helper.stderr()).toBe(0);
      const taskId = executor.tasks[0].id;
      const entries = await journald.waitForEntries({ EXECUTOR_ID: executor.id }, 3);
      expect(messages(entries)).toEqual(lines(0, 3));
      for (const entry of entries) {
        expect(entry).toMatchObject({
          SYSLOG_IDENTIFIER: taskId,
          TASK_ID: taskId,
          TASK_NAME: 'web',
          FRAMEWORK_NAME: 'marathon',
          EXECUTOR_ID: executor.id,
          CONTAINER_ID: 'C1',
          TEAM: 'payments',
          APP_KUBERNETES_IO_NAME: 'web',
          NOTE: 'two\nlines',
        });
      }
      expectSummaryAddsUp(summary(helper), helper.written());
    } finally {
      await agent.close();
    }
  });

  it('journald down at start: lines wait in the buffer and are delivered once it starts', async () => {
    const journald = journaldInstance();
    const { logFilename, executorId, env } = setup(journald, 'stdout');
    const helper = await spawnLogger({ log_filename: logFilename, max_size: '1MB' }, { env });
    const input = text(lines(0, 200));
    await helper.write(input.subarray(0, input.length / 2));
    await waitFor(() => failedSend(helper), { what: 'a failed send' });
    expect(failedSend(helper)?.err).toBe(`journald socket ${journald.socket}: ENOENT`);
    await journald.start();
    await helper.write(input.subarray(input.length / 2));
    await journald.waitForEntries({ EXECUTOR_ID: executorId }, 200);
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code, helper.stderr()).toBe(0);
    expect(exit.afterEndMs).toBeLessThan(SHUTDOWN_MS + 2000);
    expect(readFileSync(logFilename).equals(input)).toBe(true);
    expect(messages(await journald.entries({ EXECUTOR_ID: executorId }))).toEqual(lines(0, 200));
    const s = summary(helper);
    expect(s).toMatchObject({ linesIn: 200, linesSent: 200, linesDropped: 0, bufferedLines: 0 });
    expect(s.failedSends).toBeGreaterThan(0);
    expectSummaryAddsUp(s, helper.written());
  });

  it('journald killed mid-stream and restarted: every line arrives, the newest again after the reconnect, which is counted', async () => {
    const journald = journaldInstance();
    await journald.start();
    const { logFilename, executorId, env } = setup(journald, 'stdout');
    const helper = await spawnLogger({ log_filename: logFilename, max_size: '1MB' }, { env });
    await helper.write(text(lines(0, 100)));
    await journald.waitForEntries({ EXECUTOR_ID: executorId }, 100);
    await journald.kill();
    await helper.write(text(lines(100, 200)));
    await waitFor(() => failedSend(helper), { what: 'a failed send' });
    await journald.start();
    await helper.write(text(lines(200, 300)));
    // What the killed journald's socket queue could have held unread is sent again (see docs/sinks/journald.md).
    const replayed = lines(100 - queueLimits().datagrams - 1, 100);
    await journald.waitForEntries({ EXECUTOR_ID: executorId }, 300 + replayed.length);
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code, helper.stderr()).toBe(0);
    expect(readFileSync(logFilename).equals(text(lines(0, 300)))).toBe(true);
    expect(messages(await journald.entries({ EXECUTOR_ID: executorId }))).toEqual([...lines(0, 100), ...replayed, ...lines(100, 300)]);
    const s = summary(helper);
    expect(s).toMatchObject({ linesIn: 300, linesSent: 300, linesDropped: 0, bufferedLines: 0, reconnects: 1 });
    expectSummaryAddsUp(s, helper.written());
  });

  it('journald that never comes back: the helper still exits 0 promptly at EOF, lines counted as buffered', async () => {
    const journald = journaldInstance();
    const { logFilename, env } = setup(journald, 'stderr');
    const input = text(lines(0, 50));
    const helper = await spawnLogger({ log_filename: logFilename, max_size: '1MB' }, { env });
    await helper.write(input);
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code, helper.stderr()).toBe(0);
    expect(exit.afterEndMs).toBeLessThan(SHUTDOWN_MS + 2000);
    expect(readFileSync(logFilename).equals(input)).toBe(true);
    const s = summary(helper);
    expect(s).toMatchObject({ linesIn: 50, linesSent: 0, linesDropped: 0, bufferedLines: 50, state: 'down' });
    expectSummaryAddsUp(s, helper.written());
  });

  it('journald hung (never reads) while 8 MB stream: sandbox byte-exact, drops counted, exit 0 promptly', async () => {
    const journald = journaldInstance();
    await journald.start();
    const { logFilename, executorId, env } = setup(journald, 'stdout', { buffer: { max_bytes: '256KB' } });
    const helper = await spawnLogger({ log_filename: logFilename, max_size: '64MB' }, { env });
    await helper.write(text(lines(0, 10, 'before')));
    await journald.waitForEntries({ EXECUTOR_ID: executorId }, 10);
    journald.pause();
    try {
      const input = numberedLines(100_000, 80, 'hung');
      for (let at = 0; at < input.length; at += 1 << 20) await helper.write(input.subarray(at, at + (1 << 20)));
      await helper.end();
      const exit = await helper.exited;
      expect(exit.code, helper.stderr()).toBe(0);
      expect(exit.afterEndMs).toBeLessThan(SHUTDOWN_MS + 2000);
      expect(readFileSync(logFilename).equals(Buffer.concat([text(lines(0, 10, 'before')), input]))).toBe(true);
      const s = summary(helper);
      expect(s.linesDropped).toBeGreaterThan(0);
      expect(s).toMatchObject({ linesIn: 100_010, linesDropped: (s.droppedBy as unknown as Record<string, { lines: number }>).buffer_full.lines });
      expectSummaryAddsUp(s, helper.written());
    } finally {
      journald.resume();
    }
  });

  it('SIGHUPs mid-stream, unchanged sink: every line once and in order; a changed sink: every line at least once', async () => {
    const journald = journaldInstance();
    await journald.start();
    const { logFilename, executorId, env } = setup(journald, 'stdout');
    const configFile = env.LOG_SPLITTER_CONFIG;
    // A changed sink's retired generation delivers its backlog for shutdown_timeout_ms, not handing it to its
    // successor (docs/operations.md, Reloading the config): 1 s was too short for a journald slowed by the rest of
    // the suite (59,347 of 60,000 once).
    const parsed = { ...JSON.parse(readFileSync(configFile, 'utf8')), shutdown_timeout_ms: 15_000 };
    const config = JSON.stringify(parsed);
    writeFileSync(configFile, config);
    const changed = JSON.stringify({ ...parsed, sinks: { journal: { ...parsed.sinks.journal, identifier: 'changed' } } });
    const total = 60_000;
    const input = numberedLines(total, 60, 'hup');
    const helper = await spawnLogger({ log_filename: logFilename, max_size: '64MB' }, { env });
    const reloads = await streamKeepingThenChanging(helper, logFilename, input, (total / 2) * 60, configFile, config, changed);
    expect(reloads).toBeGreaterThan(10);
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code, helper.stderr()).toBe(0);
    expect(readFileSync(logFilename).equals(input)).toBe(true);
    const entries = await journald.waitForEntries({ EXECUTOR_ID: executorId }, total, 20_000);
    const numbers = messages(entries).map((m) => Number(String(m).split(' ')[1]));
    // The first half went through one unchanged sink: exactly once, in order. (Once the sink changes, the retired
    // generation may still be delivering the end of it while the new one sends later lines: they interleave.)
    expect(numbers.filter((i) => i < total / 2)).toEqual(Array.from({ length: total / 2 }, (_, i) => i));
    expect(new Set(numbers).size).toBe(total);
    const generations = helper.diagnostics().filter((d) => d.msg === 'sink summary');
    for (const generation of generations) expectSummaryAddsUp(generation);
    expect(generations.reduce((sum, g) => sum + (g.linesIn as number), 0)).toBe(total);
  });

  it('a release without the addon falls back to the stream socket and warns once that fields are lost', async () => {
    const journald = journaldInstance();
    await journald.start();
    // The launcher and bundle alone, as a release that ships without node_modules: unix-dgram cannot be found.
    const release = join(makeSandbox().dir, 'release');
    mkdirSync(release);
    copyFileSync(LOGGER_BIN, join(release, 'mesos-logrotate-logger'));
    copyFileSync(join(ROOT, 'dist/mesos-log-splitter.mjs'), join(release, 'mesos-log-splitter.mjs'));
    const { logFilename, executorId, env } = setup(journald, 'stderr', { transport: 'native' });
    const input = text(lines(0, 20));
    const helper = await spawnPiped(join(release, 'mesos-logrotate-logger'), loggerArgv({ log_filename: logFilename, max_size: '1MB' }), {
      argv0: 'mesos-logrotate-logger',
      env,
    });
    await helper.write(input);
    await journald.waitForEntries({ SYSLOG_IDENTIFIER: executorId }, 20);
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code, helper.stderr()).toBe(0);
    expect(readFileSync(logFilename).equals(input)).toBe(true);

    const warnings = helper.diagnostics().filter((d) => String(d.msg).includes('native addon unix-dgram not available'));
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatchObject({ level: 40, stream_socket: journald.streamSocket });
    const entries = await journald.entries({ SYSLOG_IDENTIFIER: executorId });
    expect(messages(entries)).toEqual(lines(0, 20));
    for (const entry of entries) {
      expect(entry).toMatchObject({ PRIORITY: '3', _TRANSPORT: 'stdout' });
      expect(entry.EXECUTOR_ID).toBeUndefined();
    }
    const s = summary(helper);
    expect(s).toMatchObject({ linesIn: 20, linesSent: 20, linesDropped: 0, bufferedLines: 0 });
    expectSummaryAddsUp(s, helper.written());
  });
});
