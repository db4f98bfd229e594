// End to end through bin/mesos-logrotate-logger, as the agent starts it (real pipe, agent argv and env): an invalid
// config, SIGHUP reloads mid-stream, and agent enrichment, with the exec sink (`cat >> file`) as the real receiver.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { agentState, startFakeAgent, startSilentServer, refusedUrl, type FakeAgent } from './helpers/agent.js';
import { chunks, numberedLines } from './helpers/data.js';
import { agentEnv } from './helpers/env.js';
import { readEnvFile, readIfExists } from './helpers/exec.js';
import { procStat } from './helpers/proc.js';
import { replaceConfig, streamWithSighups, writeThrough } from './helpers/reload.js';
import { makeSandbox } from './helpers/sandbox.js';
import { expectSummaryAddsUp, spawnLogger, type Diagnostic, type PipedProcess } from './helpers/spawn.js';
import { sleep, waitFor } from './helpers/wait.js';

const AGENT_ID = 'b3c1e6f2-5a8d-4e1f-9c3a-0d2e7f6a1b2c-S3';
const FRAMEWORK_ID = 'b3c1e6f2-5a8d-4e1f-9c3a-0d2e7f6a1b2c-0001';
const EXECUTOR_ID = 'web.4f1c2d3e-1111-2222-3333-444455556666';
const CONTAINER_ID = '7a1b2c3d-aaaa-bbbb-cccc-ddddeeeeffff';

interface Run {
  helper: PipedProcess;
  /** The --log_filename: <work_dir>/slaves/.../runs/<container>/stdout. */
  log: string;
  workDir: string;
  /** Where exec sinks record what they get. */
  out: string;
  configPath: string;
}

/**
 * A sandbox laid out as the agent lays it out under `<dir>/work`, a config file (if any; `config` gets the directory
 * exec sinks record into), and the helper reading a real pipe.
 */
async function start(
  config: ((out: string) => string) | undefined,
  env: Record<string, string> = {},
  dir = makeSandbox().dir,
): Promise<Run> {
  const workDir = join(dir, 'work');
  const runDir = join(workDir, 'slaves', AGENT_ID, 'frameworks', FRAMEWORK_ID, 'executors', EXECUTOR_ID, 'runs', CONTAINER_ID);
  mkdirSync(runDir, { recursive: true });
  const out = join(dir, 'out');
  mkdirSync(out);
  const configPath = join(dir, 'config.yaml');
  if (config !== undefined) writeFileSync(configPath, config(out));
  const log = join(runDir, 'stdout');
  const helper = await spawnLogger(
    { log_filename: log, max_size: '64MB' },
    { env: agentEnv({ LOG_SPLITTER_CONFIG: configPath, ...env }) },
  );
  return { helper, log, workDir, out, configPath };
}

/** An exec sink appending its stdin to `<out>/<prefix>.<pid>`: one file per process it starts. */
function execSink(name: string, out: string, options: { prefix?: string; extra?: string } = {}): string {
  const script = `env -0 > "${out}/env.$$"; exec cat >> "${out}/${options.prefix ?? name}.$$"`;
  return `  ${name}:\n    type: exec\n    command: ${JSON.stringify(script)}\n    buffer: {max_bytes: 64MB}\n${options.extra ?? ''}`;
}

const withSinks = (...sinks: string[]): string => `sinks:\n${sinks.join('')}`;

/** The files an exec sink wrote, oldest process first (by pid is not by age, so by the order of first line). */
function outputs(out: string, prefix: string): Buffer[] {
  return readdirSync(out)
    .filter((name) => name.startsWith(`${prefix}.`))
    .map((name) => readFileSync(join(out, name)));
}

const waitForDiagnostic = (helper: PipedProcess, msg: string, count = 1): Promise<Diagnostic[]> =>
  waitFor(
    () => {
      const found = helper.diagnostics().filter((d) => d.msg === msg);
      return found.length >= count ? found : undefined;
    },
    { timeoutMs: 10_000, what: `${count} × "${msg}"` },
  );

async function finish(run: Run, input: Buffer): Promise<Diagnostic[]> {
  await run.helper.end();
  const exit = await run.helper.exited;
  expect(exit.code, run.helper.stderr()).toBe(0);
  expect(exit.signal).toBeNull();
  expect(exit.afterEndMs).toBeLessThan(5000);
  const sandbox = readFileSync(run.log);
  expect(sandbox.length).toBe(input.length);
  expect(sandbox.equals(input), 'the sandbox file is byte-exact').toBe(true);
  const summaries = run.helper.diagnostics().filter((d) => d.msg === 'sink summary');
  for (const s of summaries) expectSummaryAddsUp(s);
  return summaries;
}

/** The lines of some outputs, each checked to be in input order; returns how often each input line arrived. */
function lineCounts(files: Buffer[], input: Buffer): Map<string, number> {
  const order = new Map(
    input
      .toString('latin1')
      .split('\n')
      .slice(0, -1)
      .map((line, i) => [line, i]),
  );
  const counts = new Map<string, number>();
  const problems: string[] = [];
  for (const file of files) {
    let last = -1;
    for (const line of file.toString('latin1').split('\n').slice(0, -1)) {
      const at = order.get(line);
      if (at === undefined) problems.push(`unknown line ${JSON.stringify(line.slice(0, 40))}`);
      // Within one process's output the order is kept (no process restarts here, so no replay steps back).
      else if (at <= last) problems.push(`line ${at} after line ${last}`);
      else last = at;
      counts.set(line, (counts.get(line) ?? 0) + 1);
    }
  }
  expect(problems.slice(0, 5), `${problems.length} problems`).toEqual([]);
  return counts;
}

describe('the helper process', () => {
  it('child.pid is the node process itself, leading its own session (the launcher execs setsid, which execs node)', async () => {
    const run = await start(undefined);
    const input = numberedLines(10, 50);
    await writeThrough(run.helper, run.log, input);
    const cmdline = readFileSync(`/proc/${run.helper.pid}/cmdline`, 'utf8').split('\0');
    expect(cmdline[0]).toMatch(/node$/);
    expect(cmdline.some((arg) => arg.endsWith('mesos-log-splitter.mjs'))).toBe(true);
    expect(cmdline).toContain('mesos-logrotate-logger');
    const stat = procStat(run.helper.pid);
    expect(stat.session).toBe(run.helper.pid);
    expect(stat.pgrp).toBe(run.helper.pid);
    await finish(run, input);
  });
});

describe('an invalid config at start: logged, sandbox only, exit 0', () => {
  const input = Buffer.concat([numberedLines(20_000, 100), Buffer.from([0xff, 0x00, 0x0d, 0x0a]), Buffer.from('tail no newline')]);

  it.each([
    ['bad YAML', 'sinks:\n  out: {type: exec\n', /is not valid YAML/],
    ['an unknown key', 'sinks:\n  out: {type: exec, command: cat, colour: red}\n', /sinks\.out\.colour: "red" is not a known key/],
    ['a bad size', 'sinks:\n  out: {type: exec, command: cat, buffer: {max_bytes: 8XB}}\n', /sinks\.out\.buffer\.max_bytes: "8XB" is not a size/],
  ])('%s', async (_what, config, why) => {
    const run = await start(() => config);
    for (const chunk of chunks(input, 65536)) await run.helper.write(chunk);
    const summaries = await finish(run, input);
    const errors = run.helper.diagnostics().filter((d) => d.msg === 'invalid config; running sandbox-only');
    expect(errors).toHaveLength(1);
    expect(errors[0].level).toBe(50);
    expect(String(errors[0].err)).toMatch(why);
    expect(summaries).toEqual([]);
  });

  it('an unreadable config (a directory)', async () => {
    const dir = makeSandbox().dir;
    const run = await start(undefined, { LOG_SPLITTER_CONFIG: dir });
    for (const chunk of chunks(input, 65536)) await run.helper.write(chunk);
    await finish(run, input);
    const errors = run.helper.diagnostics().filter((d) => d.msg === 'invalid config; running sandbox-only');
    expect(errors).toHaveLength(1);
    expect(String(errors[0].err)).toContain(`${dir} cannot be read: EISDIR`);
  });

  it('a config file that does not exist, named by LOG_SPLITTER_CONFIG', async () => {
    const run = await start(undefined);
    await run.helper.write(input);
    await finish(run, input);
    const errors = run.helper.diagnostics().filter((d) => d.msg === 'invalid config; running sandbox-only');
    expect(errors).toHaveLength(1);
    expect(String(errors[0].err)).toContain(`${run.configPath} cannot be read: ENOENT`);
  });
});

describe('SIGHUP mid-stream', () => {
  it('a config that adds a sink: lines after the reload reach it, exactly once, in order', async () => {
    const run = await start(() => '');
    const before = numberedLines(2000, 80, 'before');
    const after = numberedLines(2000, 80, 'after');
    await writeThrough(run.helper, run.log, before);
    writeFileSync(run.configPath, withSinks(execSink('fwd', run.out)));
    process.kill(run.helper.pid, 'SIGHUP');
    const [reloaded] = await waitForDiagnostic(run.helper, 'config reloaded');
    expect(reloaded.sinks).toEqual(['fwd']);
    await writeThrough(run.helper, run.log, after);
    const summaries = await finish(run, Buffer.concat([before, after]));
    const files = outputs(run.out, 'fwd');
    expect(files).toHaveLength(1);
    expect(files[0].equals(after)).toBe(true);
    expect(summaries).toMatchObject([{ sink: 'fwd', type: 'exec', linesIn: 2000, linesSent: 2000, linesDropped: 0 }]);
  });

  it('an invalid config keeps the last good one, and its sink keeps every line exactly once', async () => {
    const run = await start((out) => withSinks(execSink('fwd', out)));
    const before = numberedLines(3000, 80, 'one');
    const after = numberedLines(3000, 80, 'two');
    await writeThrough(run.helper, run.log, before);
    writeFileSync(run.configPath, 'sinks:\n  fwd: {type: exec, command: cat, buffer: {when_full: block}}\n');
    process.kill(run.helper.pid, 'SIGHUP');
    const [failed] = await waitForDiagnostic(run.helper, 'config reload failed; keeping the running config');
    expect(failed.level).toBe(50);
    expect(String(failed.err)).toContain('sinks.fwd.buffer.when_full: "block" must be one of drop_oldest, drop_newest');
    await writeThrough(run.helper, run.log, after);
    const summaries = await finish(run, Buffer.concat([before, after]));
    const files = outputs(run.out, 'fwd');
    expect(files).toHaveLength(1);
    expect(files[0].equals(Buffer.concat([before, after]))).toBe(true);
    expect(summaries).toMatchObject([{ sink: 'fwd', linesIn: 6000, linesSent: 6000, linesDropped: 0 }]);
  });

  it('a config that removes the sink: it delivers what it holds, then stops taking lines', async () => {
    const run = await start((out) => withSinks(execSink('fwd', out)));
    const out = run.out;
    const before = numberedLines(3000, 80, 'kept');
    const after = numberedLines(3000, 80, 'gone');
    await writeThrough(run.helper, run.log, before);
    writeFileSync(run.configPath, '# sandbox only\n');
    process.kill(run.helper.pid, 'SIGHUP');
    const [reloaded] = await waitForDiagnostic(run.helper, 'config reloaded');
    expect(reloaded.sinks).toEqual([]);
    await writeThrough(run.helper, run.log, after);
    const summaries = await finish(run, Buffer.concat([before, after]));
    const files = outputs(out, 'fwd');
    expect(files).toHaveLength(1);
    expect(files[0].equals(before)).toBe(true);
    expect(summaries).toMatchObject([{ sink: 'fwd', linesIn: 3000, linesSent: 3000, bufferedLines: 0 }]);
  });

  it('sinks removed mid-line and added back mid-line: whole lines only; the line open at the re-add arrives whole', async () => {
    const config = (out: string): string => `lines: {partial_flush_ms: 60000}\n${withSinks(execSink('fwd', out))}`;
    const run = await start(config);
    const parts = ['line A\npartial-start', '-middle\nline B\nanother-partial', '-end\nline C\n'].map((p) => Buffer.from(p));
    const reload = async (text: string, count: number): Promise<void> => {
      replaceConfig(run.configPath, text);
      process.kill(run.helper.pid, 'SIGHUP');
      await waitForDiagnostic(run.helper, 'config reloaded', count);
    };
    await writeThrough(run.helper, run.log, parts[0]);
    await reload('# sandbox only\n', 1);
    await writeThrough(run.helper, run.log, parts[1]);
    await reload(config(run.out), 2);
    await writeThrough(run.helper, run.log, parts[2]);
    await finish(run, Buffer.concat(parts));
    const files = outputs(run.out, 'fwd');
    expect(files).toHaveLength(2);
    // 'partial-start…' was open when the sink left: dropped there, never spliced. 'another-partial…' was open when
    // it came back: the new sink is given its start, so it arrives whole.
    expect(Buffer.concat(files).toString().split('\n').sort()).toEqual(['', 'another-partial-end', 'line A', 'line C']);
  });

  it('a sink changed while a line over max_line_bytes is open: the new one skips that line, counted detached; across the generations the totals are the stream', async () => {
    const config = (out: string, prefix: string): string => withSinks(execSink('fwd', out, { prefix }));
    const run = await start((out) => config(out, 'old'));
    // 100 KB of one line, more than the 64 KiB max_line_bytes: a joining sink cannot be given its start.
    const parts = [Buffer.alloc(100_000, 'a'), Buffer.concat([Buffer.alloc(10_000, 'b'), Buffer.from('\nafter\n')])];
    await writeThrough(run.helper, run.log, parts[0]);
    replaceConfig(run.configPath, config(run.out, 'new'));
    process.kill(run.helper.pid, 'SIGHUP');
    await waitForDiagnostic(run.helper, 'config reloaded');
    await writeThrough(run.helper, run.log, parts[1]);
    const summaries = await finish(run, Buffer.concat(parts));
    expect(summaries).toHaveLength(2);
    const sum = (key: string): number => summaries.reduce((total, s) => total + (s[key] as number), 0);
    expect({ linesIn: sum('linesIn'), bytesIn: sum('bytesIn') }).toEqual({ linesIn: 2, bytesIn: 110_007 });
    // The new sink was handed the stream mid-line: the rest of that line, newline included, it drops; 'after' it sends.
    const [fresh] = summaries.filter((s) => s.linesSent === 1);
    expect(fresh).toMatchObject({ linesIn: 2, bytesIn: 10_007, droppedBy: { detached: { lines: 1, bytes: 10_001 } } });
    expect(Buffer.concat(outputs(run.out, 'new')).toString()).toBe('after\n');
  });

  it('a SIGHUP after EOF, while the sinks get their shutdown time, does not apply: each sink keeps its summary', async () => {
    const stuck = (command: string): string =>
      `shutdown_timeout_ms: 3000\nsinks:\n  x: {type: exec, command: ${JSON.stringify(command)}, stop_grace_ms: 200}\n`;
    const run = await start(() => stuck('sleep 60'));
    const input = numberedLines(50_000, 20, 'eof');
    for (const chunk of chunks(input, 65536)) await run.helper.write(chunk);
    await run.helper.end();
    await waitFor(() => readIfExists(run.log).length === input.length, { what: 'the sandbox to take everything' });
    await sleep(200);
    replaceConfig(run.configPath, stuck('cat > /dev/null'));
    process.kill(run.helper.pid, 'SIGHUP');
    await waitForDiagnostic(run.helper, 'the stream has ended; the reload does not apply');
    const summaries = await finish(run, input);
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({ sink: 'x', linesIn: 50_000 });
  });

  it('repeated SIGHUPs that keep the sink unchanged while several MB stream: every byte, every line exactly once', async () => {
    const run = await start((dir) => withSinks(execSink('fwd', dir)));
    const out = run.out;
    const config = withSinks(execSink('fwd', out));
    const input = numberedLines(100_000, 100, 'stream');
    const reloads = await streamWithSighups(run.helper, run.log, input, () => replaceConfig(run.configPath, config));
    expect(reloads).toBeGreaterThan(20);
    const summaries = await finish(run, input);
    expect(run.helper.diagnostics().filter((d) => d.msg === 'config reloaded').length).toBe(reloads);
    const files = outputs(out, 'fwd');
    expect(files, 'one process for the whole stream').toHaveLength(1);
    expect(files[0].equals(input), 'the sink got every line once, in order').toBe(true);
    expect(summaries).toMatchObject([{ sink: 'fwd', linesIn: 100_000, linesSent: 100_000, linesDropped: 0, reconnects: 0 }]);
  });

  it('repeated SIGHUPs that change the sink, with invalid configs between: every byte, every line at least once', async () => {
    const configsFor = (out: string): string[] => [
      withSinks(execSink('fwd', out, { extra: '    env: {GENERATION: "a"}\n' })),
      'sinks: {fwd: {type: exec, command: cat, colour: red}}\n',
      withSinks(execSink('fwd', out, { extra: '    env: {GENERATION: "b"}\n' })),
      'sinks:\n  fwd: {type: exec\n',
    ];
    const run = await start((out) => configsFor(out)[0]);
    const out = run.out;
    const configs = configsFor(out);
    const input = numberedLines(100_000, 100, 'stream');
    let n = 0;
    const reloads = await streamWithSighups(run.helper, run.log, input, () => replaceConfig(run.configPath, configs[++n % configs.length]));
    const summaries = await finish(run, input);
    expect(reloads).toBeGreaterThan(20);
    const counts = lineCounts(outputs(out, 'fwd'), input);
    const missing = input
      .toString('latin1')
      .split('\n')
      .slice(0, -1)
      .filter((line) => !counts.has(line));
    expect(missing.slice(0, 5), `${missing.length} lines never reached a sink`).toEqual([]);
    expect(outputs(out, 'fwd').length).toBeGreaterThan(2);
    // Each sink generation is summarized, and together they took each line once.
    expect(summaries.reduce((sum, s) => sum + (s.linesIn as number), 0)).toBe(100_000);
    expect(summaries.every((s) => s.linesDropped === 0)).toBe(true);
  });
});


describe('agent enrichment end to end', () => {
  let agent: FakeAgent | undefined;
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
  });

  it('a process started after enrichment gets the task id; lines never wait for it', async () => {
    const { dir } = makeSandbox();
    const workDir = join(dir, 'work');
    agent = await startFakeAgent(
      agentState(workDir, AGENT_ID, [
        {
          id: FRAMEWORK_ID,
          name: 'marathon',
          executors: [
            {
              id: EXECUTOR_ID,
              name: 'Command Executor (Task: web)',
              container: CONTAINER_ID,
              labels: [{ key: 'team', value: 'payments' }],
              tasks: [{ id: EXECUTOR_ID, name: 'web', labels: [{ key: 'tier', value: 'frontend' }] }],
            },
          ],
        },
      ]),
    );
    const out = join(dir, 'out');
    const agentConfig = `agent: {url: "${agent.url}", timeout_ms: 5000}\n`;
    // The agent's answer is slow: the first lines must reach the sandbox and the sink before it.
    agent.delayMs = 1500;
    const run = await start(() => agentConfig + withSinks(execSink('first', out)), { LOG_SPLITTER_LOG_LEVEL: 'debug' }, dir);
    await waitFor(() => agent!.requests.length >= 1, { timeoutMs: 10_000, what: 'the request to the agent' });
    const input1 = numberedLines(100, 60, 'early');
    await writeThrough(run.helper, run.log, input1);
    await waitFor(() => Buffer.concat(outputs(out, 'first')).equals(input1), { what: 'the sink to get the early lines' });
    expect(run.helper.diagnostics().some((d) => d.msg === 'agent metadata found'), 'the agent had not answered yet').toBe(false);
    await waitForDiagnostic(run.helper, 'agent metadata found');
    // A sink started now (a reload that adds one) gets the task's identity in its environment.
    writeFileSync(run.configPath, agentConfig + withSinks(execSink('first', out), execSink('second', out)));
    process.kill(run.helper.pid, 'SIGHUP');
    await waitForDiagnostic(run.helper, 'config reloaded');
    const input2 = numberedLines(100, 60, 'late');
    await writeThrough(run.helper, run.log, input2);
    await finish(run, Buffer.concat([input1, input2]));

    const envs = readdirSync(out)
      .filter((name) => name.startsWith('env.'))
      .map((name) => readEnvFile(join(out, name)));
    expect(envs).toHaveLength(2);
    const [early, late] = envs.sort((a, b) => Number('MESOS_LOG_TASK_ID' in a) - Number('MESOS_LOG_TASK_ID' in b));
    const pathIds = {
      MESOS_LOG_STREAM: 'STDOUT',
      MESOS_LOG_AGENT_ID: AGENT_ID,
      MESOS_LOG_FRAMEWORK_ID: FRAMEWORK_ID,
      MESOS_LOG_EXECUTOR_ID: EXECUTOR_ID,
      MESOS_LOG_CONTAINER_ID: CONTAINER_ID,
      MESOS_LOG_SANDBOX_DIRECTORY: run.log.slice(0, -'/stdout'.length),
    };
    expect(early).toMatchObject(pathIds);
    expect(early.MESOS_LOG_TASK_ID).toBeUndefined();
    expect(late).toMatchObject({ ...pathIds, MESOS_LOG_TASK_ID: EXECUTOR_ID });
    expect(JSON.parse(late.MESOS_LOG_EXECUTORINFO_JSON)).toMatchObject({
      executor_id: { value: EXECUTOR_ID },
      framework_id: { value: FRAMEWORK_ID },
      name: 'Command Executor (Task: web)',
      labels: { labels: [{ key: 'team', value: 'payments' }] },
    });
    expect(Buffer.concat(outputs(out, 'first')).equals(Buffer.concat([input1, input2]))).toBe(true);
    expect(Buffer.concat(outputs(out, 'second')).equals(input2)).toBe(true);
    expect(agent.requests[0]).toBe('/state');
  });

  it('an agent that accepts and never answers does not delay the sandbox', async () => {
    const silent = await startSilentServer();
    try {
      const run = await start((out) => `agent: {url: "${silent.url}", timeout_ms: 10000}\n` + withSinks(execSink('fwd', out)));
      const out = run.out;
      const input: Buffer[] = [];
      // The helper is up and its /state request hangs.
      await waitFor(() => silent.connections() >= 1, { timeoutMs: 10_000, what: 'the request to the agent' });
      const latencies: number[] = [];
      for (let i = 0; i < 10; i++) {
        const lines = numberedLines(10, 40, `batch${i}`);
        input.push(lines);
        const sent = Date.now();
        await writeThrough(run.helper, run.log, lines);
        latencies.push(Date.now() - sent);
        await sleep(20);
      }
      // Typically 1-20 ms each; the median keeps a loaded machine's hiccup from failing the test.
      latencies.sort((a, b) => a - b);
      expect(latencies[5], `latencies ${latencies.join(' ')} ms`).toBeLessThan(100);
      expect(silent.connections(), 'the request still hangs, never retried meanwhile').toBe(1);
      await finish(run, Buffer.concat(input));
      expect(Buffer.concat(outputs(out, 'fwd')).equals(Buffer.concat(input))).toBe(true);
    } finally {
      await silent.close();
    }
  });

  it('the first bytes reach the sandbox as fast with a hanging agent as with none', async () => {
    const silent = await startSilentServer();
    try {
      const firstBytesMs = async (config: string): Promise<number> => {
        const run = await start((out) => config + withSinks(execSink('fwd', out)));
        const line = Buffer.from('first line\n');
        const sent = Date.now();
        await writeThrough(run.helper, run.log, line);
        const elapsed = Date.now() - sent;
        await finish(run, line);
        return elapsed;
      };
      // Alternate, so load on the machine hits both alike; compare the best of each.
      const hanging: number[] = [];
      const none: number[] = [];
      for (let i = 0; i < 5; i++) {
        hanging.push(await firstBytesMs(`agent: {url: "${silent.url}", timeout_ms: 10000}\n`));
        none.push(await firstBytesMs('agent: {enrich: false}\n'));
      }
      expect(Math.min(...hanging) - Math.min(...none), `hanging agent ${hanging} ms, no agent ${none} ms`).toBeLessThan(100);
      expect(silent.connections()).toBeGreaterThanOrEqual(5);
    } finally {
      await silent.close();
    }
  });

  it('an agent that refuses connections: lines flow with the path metadata', async () => {
    const url = await refusedUrl();
    const run = await start((out) => `agent: {url: "${url}"}\n` + withSinks(execSink('fwd', out)));
    const out = run.out;
    const input = numberedLines(5000, 70, 'refused');
    for (const chunk of chunks(input, 65536)) await run.helper.write(chunk);
    await finish(run, input);
    expect(Buffer.concat(outputs(out, 'fwd')).equals(input)).toBe(true);
    const [env] = readdirSync(out)
      .filter((name) => name.startsWith('env.'))
      .map((name) => readEnvFile(join(out, name)));
    expect(env).toMatchObject({ MESOS_LOG_AGENT_ID: AGENT_ID, MESOS_LOG_CONTAINER_ID: CONTAINER_ID });
    expect(env.MESOS_LOG_TASK_ID).toBeUndefined();
  });
});
