// The exec sink through the built helper: the agent's argv and environment, a real pipe on stdin, a YAML config.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentState, executorDirectory, startFakeAgent, type ExecutorSpec, type FakeAgent } from './helpers/agent.js';
import { numberedLines } from './helpers/data.js';
import { agentEnv } from './helpers/env.js';
import {
  COUNT_INCARNATION,
  incarnations,
  isAlive,
  mesosVariables,
  readEnvFile,
  readIfExists,
  writeScript,
} from './helpers/exec.js';
import { makeSandbox, readKept } from './helpers/sandbox.js';
import { expectSummaryAddsUp, LOGGER_BIN, loggerArgv, spawnLogger, spawnPiped, type Diagnostic, type PipedProcess } from './helpers/spawn.js';
import { waitFor } from './helpers/wait.js';

const EXECUTOR: ExecutorSpec = {
  id: 'web.1',
  name: 'Command Executor (Task: web.1) (Command: sh -c \'serve\')',
  container: 'C1',
  labels: [{ key: 'team', value: 'payments' }],
  tasks: [{ id: 'web.1', name: 'web' }],
};

let agent: FakeAgent;
beforeAll(async () => {
  agent = await startFakeAgent({});
});
afterAll(() => agent.close());

/**
 * A sandbox laid out as the agent lays it out, a directory for the exec scripts (they record into it), and the
 * helper's config file with one exec sink `fwd`, built from the scripts directory.
 */
function setUp(sink: (scripts: string) => Record<string, unknown>) {
  const { dir: base } = makeSandbox();
  const workDir = join(base, 'work');
  const sandbox = executorDirectory(workDir, 'S1', 'F1', EXECUTOR);
  mkdirSync(sandbox, { recursive: true });
  agent.state = agentState(workDir, 'S1', [{ id: 'F1', name: 'marathon', executors: [EXECUTOR] }]);
  const scripts = join(base, 'scripts');
  mkdirSync(scripts);
  const config = join(base, 'config.yaml');
  const document = {
    agent: { url: agent.url, timeout_ms: 500 },
    shutdown_timeout_ms: 1000,
    sinks: { fwd: { type: 'exec', ...sink(scripts) } },
  };
  // JSON is YAML.
  writeFileSync(config, JSON.stringify(document, null, 2));
  return { sandbox, stdout: join(sandbox, 'stdout'), scripts, config };
}

function start(stdout: string, config: string): Promise<PipedProcess> {
  return spawnLogger(
    { log_filename: stdout, max_size: '1MB', logrotate_options: 'rotate 9' },
    { env: agentEnv({ LOG_SPLITTER_CONFIG: config, LOG_SPLITTER_LOG_LEVEL: 'debug' }) },
  );
}

/** The sink's summary; it took in all the test wrote, or nothing when its `match` does not select the stream. */
function summaryOf(helper: PipedProcess, matched = true): Diagnostic {
  const summary = helper.diagnostics().find((d) => d.msg === 'sink summary' && d.sink === 'fwd');
  expect(summary, helper.stderr()).toBeDefined();
  const s = summary!;
  expect(s.type).toBe('exec');
  expectSummaryAddsUp(s, matched ? helper.written() : { lines: 0, bytes: 0 });
  return s;
}

/** Ends the input: the helper must exit 0 within `withinMs`, with the sandbox byte-exact. Returns the sink summary. */
async function endAndVerify(helper: PipedProcess, stdout: string, input: Buffer, withinMs = 2500, matched = true) {
  await helper.end();
  const exit = await helper.exited;
  expect(exit.code, helper.stderr()).toBe(0);
  expect(exit.afterEndMs).toBeLessThan(withinMs);
  expect(readKept(stdout).equals(input)).toBe(true);
  return summaryOf(helper, matched);
}

// Incarnation n records its environment. The first copies lines until `crash-now`, then exits 1; later ones keep all.
const crashOnMarker = (dir: string): string =>
  writeScript(
    dir,
    'crash-on-marker.sh',
    [
      COUNT_INCARNATION,
      'env -0 > "$OUT/env.$n"',
      'if [ $n -eq 1 ]; then',
      '  while IFS= read -r line; do printf "%s\\n" "$line" >> "$OUT/got"; [ "$line" = crash-now ] && exit 1; done',
      'fi',
      'cat >> "$OUT/got"',
    ].join('\n'),
  );

describe('exec sink end to end', () => {
  it('path metadata at first, agent metadata after a restart; sandbox byte-exact, every line delivered', async () => {
    const { sandbox, stdout, scripts, config } = setUp((dir) => ({
      command: [crashOnMarker(dir)],
      restart_backoff_ms: { min: 50, max: 500 },
    }));
    // The agent does not list the task yet: the first lines, and the process they start, carry path metadata.
    agent.mode = 'error';
    const helper = await start(stdout, config);
    const before = numberedLines(100, 100, 'before');
    await helper.write(before);
    await waitFor(() => readIfExists(join(scripts, 'got')).length === before.length, { what: 'the first lines' });
    agent.mode = 'ok';
    await waitFor(() => helper.diagnostics().some((d) => d.msg === 'agent metadata found'), { what: 'enrichment' });
    const after = Buffer.concat([Buffer.from('crash-now\n'), numberedLines(5000, 100, 'after')]);
    await helper.write(after);
    const input = Buffer.concat([before, after]);
    const summary = await endAndVerify(helper, stdout, input, 2000);
    // The first process took everything up to the marker; the second got the replay window, then the rest: a
    // suffix of the input starting at or before the line after the marker. Every line arrived at least once.
    const got = readFileSync(join(scripts, 'got'));
    const untilMarker = before.length + 'crash-now\n'.length;
    expect(got.subarray(0, untilMarker).equals(input.subarray(0, untilMarker))).toBe(true);
    const rest = got.subarray(untilMarker);
    expect(rest.length).toBeGreaterThanOrEqual(input.length - untilMarker);
    expect(rest.equals(input.subarray(input.length - rest.length))).toBe(true);
    expect(rest.length === input.length || input[input.length - rest.length - 1] === 0x0a).toBe(true);

    const pathOnly = {
      MESOS_LOG_STREAM: 'STDOUT',
      MESOS_LOG_SANDBOX_DIRECTORY: sandbox,
      MESOS_LOG_AGENT_ID: 'S1',
      MESOS_LOG_FRAMEWORK_ID: 'F1',
      MESOS_LOG_EXECUTOR_ID: 'web.1',
      MESOS_LOG_CONTAINER_ID: 'C1',
    };
    const pathJson = JSON.stringify({ executor_id: { value: 'web.1' }, framework_id: { value: 'F1' } });
    expect(mesosVariables(readEnvFile(join(scripts, 'env.1')))).toEqual({
      ...pathOnly,
      MESOS_LOG_EXECUTORINFO_JSON: pathJson,
      MESOS_EXECUTORINFO_JSON: pathJson,
    });
    const enrichedJson = JSON.stringify({
      executor_id: { value: 'web.1' },
      framework_id: { value: 'F1' },
      name: EXECUTOR.name,
      labels: { labels: [{ key: 'team', value: 'payments' }] },
    });
    const second = readEnvFile(join(scripts, 'env.2'));
    expect(incarnations(scripts)).toBe(2);
    expect(mesosVariables(second)).toEqual({
      ...pathOnly,
      MESOS_LOG_TASK_ID: 'web.1',
      MESOS_LOG_TASK_NAME: 'web',
      MESOS_LOG_FRAMEWORK_NAME: 'marathon',
      MESOS_LOG_EXECUTORINFO_JSON: enrichedJson,
      MESOS_EXECUTORINFO_JSON: enrichedJson,
    });
    // The helper's environment passes through (the agent's, which holds no MESOS_* of its own).
    expect(second.LOG_SPLITTER_CONFIG).toBe(config);
    expect(second.LIBPROCESS_IP).toBe('127.0.0.1');

    expect(summary).toMatchObject({ linesIn: 5101, linesSent: 5101, linesDropped: 0, bufferedLines: 0, reconnects: 1 });
  });

  it('match selects streams: the stdout and stderr helpers of one task, only stderr forwarded, both sandboxes exact', async () => {
    const { sandbox, stdout, scripts, config } = setUp((dir) => ({
      command: [writeScript(dir, 'record.sh', 'cat >> "$OUT/got.$MESOS_LOG_STREAM"')],
      match: { stream: 'stderr', executor_id: 'web.*' },
    }));
    const stderr = join(sandbox, 'stderr');
    const [out, err] = await Promise.all([start(stdout, config), start(stderr, config)]);
    const outInput = numberedLines(3000, 80, 'out');
    const errInput = numberedLines(2000, 80, 'err');
    await Promise.all([out.write(outInput), err.write(errInput)]);
    const [outSummary, errSummary] = await Promise.all([
      endAndVerify(out, stdout, outInput, 2500, false),
      endAndVerify(err, stderr, errInput),
    ]);
    expect(readFileSync(join(scripts, 'got.STDERR')).equals(errInput)).toBe(true);
    expect(readIfExists(join(scripts, 'got.STDOUT'))).toHaveLength(0);
    expect(errSummary).toMatchObject({ linesSent: 2000, linesDropped: 0 });
    expect(outSummary).toMatchObject({ linesSent: 0, bufferedLines: 0 });
  });

  it('match on an executor_id that is not this task: nothing forwarded, the sandbox exact', async () => {
    const { stdout, scripts, config } = setUp((dir) => ({
      command: [writeScript(dir, 'record.sh', 'cat >> "$OUT/got"')],
      match: { executor_id: 'api.*' },
    }));
    const helper = await start(stdout, config);
    const input = numberedLines(1000, 80, 'line');
    await helper.write(input);
    await endAndVerify(helper, stdout, input, 2500, false);
    expect(readIfExists(join(scripts, 'got'))).toHaveLength(0);
  });

  it('a process that always crashes: sandbox byte-exact, helper exits 0 promptly, restarts counted', async () => {
    const { stdout, scripts, config } = setUp((dir) => ({
      command: [writeScript(dir, 'crash.sh', `${COUNT_INCARNATION}\nexit 3`)],
      restart_backoff_ms: { min: 20, max: 100 },
      stop_grace_ms: 300,
    }));
    const helper = await start(stdout, config);
    const input = numberedLines(20_000, 100);
    for (let i = 0; i < 10; i++) {
      await helper.write(input.subarray((i * input.length) / 10, ((i + 1) * input.length) / 10));
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    // shutdown_timeout_ms (1 s) + stop_grace_ms (0.3 s) at most, plus start-up slack.
    const summary = await endAndVerify(helper, stdout, input);
    expect(summary.linesIn).toBe(20_000);
    expect(summary.reconnects as number).toBeGreaterThanOrEqual(3);
    expect(summary.reconnects as number).toBeLessThanOrEqual(incarnations(scripts));
    expect(summary.lastError).toMatch(/exited with code 3|stopped reading its stdin/);
    const exits = helper.diagnostics().filter((d) => d.msg === 'exec process ended; restarting it');
    expect(exits.some((d) => d.status === 'exited with code 3')).toBe(true);
  });

  it('a process that never reads and ignores EOF: drops counted, helper exits promptly, no orphan left', async () => {
    const { stdout, scripts, config } = setUp((dir) => ({
      command: [writeScript(dir, 'stuck.sh', 'echo $$ > "$OUT/pid"\nsleep 60 &\necho $! > "$OUT/sleep"\nwait')],
      stop_grace_ms: 300,
      buffer: { max_bytes: '64KB' },
    }));
    const helper = await start(stdout, config);
    const input = numberedLines(50_000, 100);
    await helper.write(input);
    const summary = await endAndVerify(helper, stdout, input);
    expect(summary.linesIn).toBe(50_000);
    expect(summary.linesDropped as number).toBeGreaterThan(0);
    expect(summary.droppedBy).toEqual({ buffer_full: { lines: summary.linesDropped, bytes: summary.bytesDropped } });
    for (const file of ['pid', 'sleep']) {
      const pid = Number(readFileSync(join(scripts, file), 'utf8'));
      await waitFor(() => !isAlive(pid), { what: `${file} ${pid} to be gone`, timeoutMs: 1000 });
    }
  });

  it('out of file descriptors (EMFILE) when starting processes: no crash, exit 0, every sink accounted for', async () => {
    const { stdout, config } = setUp(() => ({ command: 'cat > /dev/null' }));
    const document = JSON.parse(readFileSync(config, 'utf8'));
    const sinks = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`e${i}`, { ...document.sinks.fwd, restart_backoff_ms: { min: 20, max: 100 } }]));
    writeFileSync(config, JSON.stringify({ ...document, agent: { enrich: false }, sinks }));
    // 24 descriptors: enough for the helper and a few processes' pipes, not for ten.
    const helper = await spawnPiped('prlimit', ['--nofile=24:24', LOGGER_BIN, ...loggerArgv({ log_filename: stdout, max_size: '1MB' })], {
      env: agentEnv({ LOG_SPLITTER_CONFIG: config }),
    });
    const input = numberedLines(2000, 64);
    await helper.write(input);
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code, helper.stderr()).toBe(0);
    expect(exit.afterEndMs).toBeLessThan(2500);
    expect(readKept(stdout).equals(input)).toBe(true);
    const summaries = helper.diagnostics().filter((d) => d.msg === 'sink summary');
    expect(summaries).toHaveLength(10);
    for (const summary of summaries) expectSummaryAddsUp(summary, helper.written());
    expect(summaries.some((summary) => /EMFILE/.test(String(summary.lastError)))).toBe(true);
  });

  it('a command that does not exist: sandbox byte-exact, helper exits 0, the error logged and counted', async () => {
    const { stdout, config } = setUp(() => ({
      command: ['/nonexistent/logger-script'],
      restart_backoff_ms: { min: 20, max: 100 },
    }));
    const helper = await start(stdout, config);
    const input = numberedLines(1000, 64);
    await helper.write(input);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const summary = await endAndVerify(helper, stdout, input);
    expect(summary).toMatchObject({ linesIn: 1000, linesSent: 0, bufferedLines: 1000, state: 'down' });
    expect(summary.reconnects as number).toBeGreaterThan(0);
    expect(summary.failedSends as number).toBeGreaterThan(0);
    expect(summary.lastError).toMatch(/ENOENT/);
    const logged = helper.diagnostics().find((d) => d.msg === 'exec process ended; restarting it');
    expect(logged?.status).toBe('could not be started (spawn /nonexistent/logger-script ENOENT)');
  });
});

