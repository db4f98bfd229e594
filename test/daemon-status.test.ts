// `mesos-log-splitter status` and the Prometheus endpoint: the daemon's streams and sinks, merged from its workers
// (a stuck worker shows as such and never hangs status), exposition that promtool accepts and a real Prometheus
// scrapes during a sink outage, series that go away with their stream.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentState, executorDirectory, startFakeAgent, type ExecutorSpec, type FakeAgent } from './helpers/agent.js';
import { numberedLines } from './helpers/data.js';
import { killDaemons, makeDaemon, runStatus, type TestDaemon } from './helpers/daemon.js';
import { agentEnv } from './helpers/env.js';
import { freePort, startPrometheus, type TestPrometheus } from './helpers/prometheus.js';
import { makeSandbox, readLog } from './helpers/sandbox.js';
import { LAUNCHER_DIR, spawnLogger, type PipedProcess } from './helpers/spawn.js';
import { waitFor } from './helpers/wait.js';
import { statusFrame } from '../src/daemon/protocol.js';
import type { DaemonStatus, StreamStatus } from '../src/daemon/status.js';

// Quotes and backslashes reach label values from the path: the exposition must escape them.
const FLOODED: ExecutorSpec = { id: 'web"v1\\n', name: 'web', container: 'C1', tasks: [{ id: 'web.1', name: 'web' }] };
const QUIET: ExecutorSpec = { id: 'api', name: 'api', container: 'C2', tasks: [{ id: 'api.1', name: 'api' }] };

let agent: FakeAgent;
let daemon: TestDaemon;
let metricsPort: number;
let workDir: string;
let configPath: string;

beforeAll(async () => {
  const { dir } = makeSandbox();
  workDir = join(dir, 'work');
  agent = await startFakeAgent(agentState(workDir, 'S1', [{ id: 'F1', name: 'marathon', executors: [FLOODED, QUIET] }]));
  metricsPort = await freePort();
  configPath = join(dir, 'config.yaml');
  writeConfig(configPath, metricsPort);
  daemon = makeDaemon({ LOG_SPLITTER_CONFIG: configPath });
  await daemon.start();
});
afterAll(async () => {
  killDaemons();
  await agent.close();
});

/** A syslog sink to a closed port (an outage for the whole test) with the smallest buffer, so it drops. */
function writeConfig(path: string, port: number, statusTimeoutMs = 300): void {
  const document = {
    agent: { url: agent.url, timeout_ms: 500 },
    shutdown_timeout_ms: 200,
    sinks: { relay: { type: 'syslog', transport: 'tcp', host: '127.0.0.1', port: 1, buffer: { max_bytes: 1024 } } },
    daemon: { metrics_listen: `127.0.0.1:${port}`, status_timeout_ms: statusTimeoutMs },
  };
  writeFileSync(path, JSON.stringify(document));
}

function logFilename(executor: ExecutorSpec, stream: 'stdout' | 'stderr'): string {
  const sandbox = executorDirectory(workDir, 'S1', 'F1', executor);
  mkdirSync(sandbox, { recursive: true });
  return join(sandbox, stream);
}

async function status(): Promise<DaemonStatus> {
  const run = await runStatus(['--json', '--socket', daemon.socket]);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as DaemonStatus;
}

const streamOf = (doc: DaemonStatus, container: string): StreamStatus | undefined =>
  doc.streams.find((stream) => stream.container_id === container);

async function scrape(): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return response.text();
}

function promtoolCheck(text: string): string {
  // promtool exits non-zero on a parse error or a lint problem and says which.
  return execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

describe('status', () => {
  it('without a daemon: exit 1, naming the socket', async () => {
    const socket = join(makeSandbox().dir, 'none.sock');
    const run = await runStatus(['--socket', socket]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`mesos-log-splitter status: no answer from a daemon on ${socket}: connect ENOENT ${socket}\n`);
  });

  it('a bad option: exit 1 with the usage', async () => {
    const run = await runStatus(['--bogus']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Usage: mesos-log-splitter status [--json] [--socket PATH]');
  });

  it('an answer over 64 KiB arrives whole through a pipe whose reader starts late (json and tables)', async () => {
    // A stand-in daemon with 400 streams: more than a pipe holds, as JSON and as tables.
    const streams: StreamStatus[] = Array.from({ length: 400 }, (_, i) => ({
      log_filename: `/var/lib/mesos/slaves/S1/frameworks/F1/executors/web-${i}/runs/C${i}/stdout`,
      stream: 'stdout',
      user: 'root',
      executor_id: `web-${i}-${'x'.repeat(200)}`,
      container_id: `C${i}`,
      state: 'running',
      shim: 'connected',
      bytes_in: i,
      rotations: 0,
      sinks: [],
    }));
    const doc: DaemonStatus = { daemon: { pid: 1, socket: 'stand-in' }, workers: [{ user: 'root', pid: 2, state: 'ready', streams: 400 }], streams, sinks: [] };
    const socket = join(makeSandbox().dir, 'big.sock');
    const server = createServer((connection) => connection.once('data', () => connection.end(statusFrame(doc))));
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      const direct = await runStatus(['--socket', socket]);
      for (const args of [['--json'], []]) {
        // wc starts reading only after the command has written all it could and exited.
        const script = 'socket=$1; shift; "$0" status --socket "$socket" "$@" | (sleep 0.5; wc -c)';
        const bytes = await new Promise<string>((resolve, reject) =>
          execFile('/bin/sh', ['-c', script, join(LAUNCHER_DIR, 'mesos-log-splitter'), socket, ...args], { env: agentEnv() }, (err, stdout) =>
            err === null ? resolve(stdout.trim()) : reject(err),
          ),
        );
        const expected = args.length > 0 ? Buffer.byteLength(`${JSON.stringify(doc, null, 2)}\n`) : Buffer.byteLength(direct.stdout);
        expect(expected).toBeGreaterThan(64 * 1024);
        expect(Number(bytes)).toBe(expected);
      }
    } finally {
      server.close();
    }
  });

  let flooded: PipedProcess;
  let quiet: PipedProcess;
  it('lists each stream with its ids, task, bytes in, rotations, per-sink counters and state, and the sinks', async () => {
    flooded = await spawnLogger({ log_filename: logFilename(FLOODED, 'stdout'), max_size: '64KB' }, { env: daemon.shimEnv('daemon') });
    quiet = await spawnLogger({ log_filename: logFilename(QUIET, 'stderr') }, { env: daemon.shimEnv('daemon') });
    const input = numberedLines(2000, 100);
    await flooded.write(input);
    await quiet.write('one quiet line\n');
    const doc = await waitFor(
      async () => {
        const doc = await status();
        const a = streamOf(doc, 'C1');
        const b = streamOf(doc, 'C2');
        return a?.bytes_in === input.length && a.task_id !== undefined && b?.bytes_in === 15 && b.task_id !== undefined && doc;
      },
      { timeoutMs: 15_000, intervalMs: 100, what: 'both streams with their figures and tasks' },
    );
    const a = streamOf(doc, 'C1')!;
    expect(a).toMatchObject({
      log_filename: logFilename(FLOODED, 'stdout'),
      stream: 'stdout',
      // No --user: root, as the table says.
      user: 'root',
      agent_id: 'S1',
      framework_id: 'F1',
      executor_id: 'web"v1\\n',
      container_id: 'C1',
      task_id: 'web.1',
      state: 'running',
      shim: 'connected',
      bytes_in: input.length,
    });
    expect(a.rotations).toBeGreaterThan(0);
    const relay = a.sinks[0];
    expect(relay).toMatchObject({ sink: 'relay', type: 'syslog', health: 'down' });
    expect(relay.last_error).toContain('ECONNREFUSED');
    // in = sent + dropped + buffered, per stream; the 1 KiB buffer dropped most of the 2000 lines.
    expect(relay.sent_lines + relay.dropped_lines + relay.buffered_lines).toBe(2000);
    expect(relay.dropped_by.buffer_full.lines).toBe(relay.dropped_lines);
    expect(relay.dropped_lines).toBeGreaterThan(1900);
    expect(relay.buffered_bytes).toBeGreaterThan(0);
    expect(streamOf(doc, 'C2')).toMatchObject({ stream: 'stderr', task_id: 'api.1', executor_id: 'api', bytes_in: 15 });
    expect(doc.sinks).toEqual([
      expect.objectContaining({ sink: 'relay', type: 'syslog', health: 'down', streams: { up: 0, down: 2, starting: 0 } }),
    ]);
    expect(doc.sinks[0].dropped_lines).toBe(relay.dropped_lines);
    expect(doc.workers).toEqual([expect.objectContaining({ user: 'root', state: 'ready', streams: 2 })]);
    expect(doc.daemon).toMatchObject({ socket: daemon.socket, metrics_listen: `127.0.0.1:${metricsPort}` });

    const table = await runStatus(['--socket', daemon.socket]);
    expect(table.code).toBe(0);
    const rows = table.stdout.split('\n');
    expect(rows.find((row) => row.startsWith('TASK'))).toMatch(/^TASK +EXECUTOR +CONTAINER +STREAM +USER +BYTES IN +ROTATIONS +STATE +relay SENT\/DROPPED\/BUFFERED$/);
    expect(rows.find((row) => row.startsWith('web.1'))).toMatch(new RegExp(`^web\\.1 +web"v1\\\\n +C1 +stdout +root +${input.length} +\\d+ +running +\\d+/\\d+/\\d+$`));
    expect(rows.find((row) => row.startsWith('relay'))).toMatch(/^relay +syslog +down +0\/2\/0 .*ECONNREFUSED/);
  });

  it('serves metrics promtool accepts, escaped labels included, from the same figures', async () => {
    const text = await scrape();
    expect(() => promtoolCheck(text)).not.toThrow();
    const labels = 'agent_id="S1",framework_id="F1",executor_id="web\\"v1\\\\n",container_id="C1",stream="stdout"';
    expect(text).toContain(`mesos_log_splitter_stream_bytes_in_total{${labels}} ${2000 * 100}`);
    expect(text).toMatch(new RegExp(`mesos_log_splitter_stream_sink_dropped_lines_total\\{sink="relay",type="syslog",${escapeRe(labels)},reason="buffer_full"\\} \\d+`));
    expect(text).toMatch(/mesos_log_splitter_sink_dropped_lines_total\{sink="relay",type="syslog",reason="buffer_full"\} [1-9]/);
    expect(text).toMatch(/# TYPE mesos_log_splitter_sink_buffered_bytes gauge/);
    expect(text).toMatch(/# TYPE mesos_log_splitter_stream_sink_buffered_bytes gauge/);
    expect(text).toContain('mesos_log_splitter_streams{state="running"} 2');
    expect(text).toContain('mesos_log_splitter_streams{state="worker not answering"} 0');
    expect(text).toContain('mesos_log_splitter_workers{state="ready"} 1');
  });

  it('a worker that does not answer shows as such, and status still answers within the bound', async () => {
    const [worker] = daemon.workerPids();
    process.kill(worker, 'SIGSTOP');
    try {
      const run = await runStatus(['--json', '--socket', daemon.socket]);
      expect(run.code, run.stderr).toBe(0);
      // status_timeout_ms is 300; the rest is starting the status command's Node.
      expect(run.ms).toBeLessThan(5000);
      const doc = JSON.parse(run.stdout) as DaemonStatus;
      expect(doc.workers).toEqual([expect.objectContaining({ state: 'not answering', streams: 2 })]);
      expect(streamOf(doc, 'C1')).toMatchObject({ state: 'worker not answering', task_id: 'web.1', sinks: [] });
      expect(streamOf(doc, 'C1')!.bytes_in).toBeUndefined();
      const text = await scrape();
      expect(text).toContain('mesos_log_splitter_workers{state="not answering"} 1');
      expect(text).toContain('mesos_log_splitter_streams{state="worker not answering"} 2');
      expect(() => promtoolCheck(text)).not.toThrow();
    } finally {
      process.kill(worker, 'SIGCONT');
    }
    expect(streamOf(await status(), 'C1')!.state).toBe('running');
  });

  it('a stream that ended leaves status and the metrics', async () => {
    await flooded.end();
    expect((await flooded.exited).code).toBe(0);
    const doc = await status();
    expect(streamOf(doc, 'C1')).toBeUndefined();
    expect(streamOf(doc, 'C2')).toBeDefined();
    const text = await scrape();
    expect(text).not.toContain('container_id="C1"');
    expect(text).toContain('container_id="C2"');
    await quiet.end();
    expect((await quiet.exited).code).toBe(0);
    expect((await status()).streams).toEqual([]);
  });
});

describe('a real Prometheus', () => {
  let prometheus: TestPrometheus;
  beforeAll(async () => {
    prometheus = await startPrometheus(`127.0.0.1:${metricsPort}`);
  });
  afterAll(() => prometheus.stop());

  it('scrapes the dropped and buffered series during a sink outage; they vanish after the stream ends', async () => {
    const helper = await spawnLogger({ log_filename: logFilename(QUIET, 'stdout') }, { env: daemon.shimEnv('daemon') });
    await helper.write(numberedLines(500, 100));
    const selector = '{container_id="C2",stream="stdout",sink="relay"}';
    const dropped = await waitFor(
      async () => {
        const result = await prometheus.query(`mesos_log_splitter_stream_sink_dropped_lines_total${selector}`);
        return result.length === 1 && Number(result[0].value[1]) > 0 && result[0];
      },
      { timeoutMs: 20_000, intervalMs: 250, what: 'the dropped series in Prometheus' },
    );
    expect(dropped.metric).toMatchObject({ reason: 'buffer_full', job: 'mesos-log-splitter', executor_id: 'api', agent_id: 'S1' });
    const buffered = await prometheus.query(`mesos_log_splitter_stream_sink_buffered_bytes${selector}`);
    expect(buffered.length).toBe(1);
    expect(Number(buffered[0].value[1])).toBeGreaterThan(0);
    const up = await prometheus.query('up{job="mesos-log-splitter"}');
    expect(up.map((sample) => sample.value[1])).toEqual(['1']);

    await helper.end();
    expect((await helper.exited).code).toBe(0);
    // The next scrape lacks the stream's series: Prometheus marks them stale and an instant query finds nothing.
    await waitFor(async () => (await prometheus.query(`mesos_log_splitter_stream_bytes_in_total{container_id="C2",stream="stdout"}`)).length === 0, {
      timeoutMs: 10_000,
      intervalMs: 250,
      what: "the ended stream's series to vanish",
    });
    expect(await prometheus.query(`mesos_log_splitter_stream_sink_buffered_bytes${selector}`)).toEqual([]);
  });
});

describe('metrics_listen that cannot be bound', () => {
  it('is logged and the daemon serves streams without it', async () => {
    const { dir } = makeSandbox();
    const config = join(dir, 'taken.yaml');
    // The first daemon holds this port.
    writeConfig(config, metricsPort);
    const second = makeDaemon({ LOG_SPLITTER_CONFIG: config });
    await second.start();
    const failed = await waitFor(() => second.diagnostics().find((d) => d.msg === 'the metrics endpoint cannot listen; serving streams without it'), {
      what: 'the bind error',
    });
    expect(failed).toMatchObject({ level: 50, metrics_listen: `127.0.0.1:${metricsPort}` });
    expect(String(failed.err)).toContain('EADDRINUSE');
    const { stdout } = makeSandbox();
    const helper = await spawnLogger({ log_filename: stdout }, { env: second.shimEnv('daemon') });
    await helper.write('served\n');
    // The writer stays open until the daemon has the pipe (docs/daemon.md: a named FIFO's hang-up before that is lost).
    await waitFor(() => existsSync(stdout) && readLog(stdout).toString() === 'served\n', { what: 'the line in the sandbox' });
    await helper.end();
    expect((await helper.exited).code).toBe(0);
    expect(second.child.exitCode).toBeNull();
  });
});

const escapeRe = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('the status request on the socket', () => {
  it('a status request carrying bytes drops that connection only; the daemon answers the next', async () => {
    const closed = await new Promise<string>((resolve) => {
      const socket = createConnection(daemon.socket);
      let got = '';
      socket.on('data', (chunk: Buffer) => (got += chunk.toString('latin1')));
      socket.on('connect', () => socket.write(Buffer.from([2, 0, 0, 0, 4, 0])));
      socket.on('close', () => resolve(got));
      socket.on('error', () => undefined);
    });
    expect(closed).toBe('');
    await waitFor(() => daemon.diagnostics().some((d) => d.msg === 'dropped a connection on the daemon socket' && d.why === 'a status request carries nothing'), {
      what: 'the drop to be logged',
    });
    expect((await status()).daemon.socket).toBe(daemon.socket);
  });
});

describe('a SIGHUP with another metrics_listen', () => {
  it('moves the endpoint', async () => {
    const { dir } = makeSandbox();
    const config = join(dir, 'moving.yaml');
    const first = await freePort();
    writeConfig(config, first);
    const moving = makeDaemon({ LOG_SPLITTER_CONFIG: config });
    await moving.start();
    await waitFor(() => fetch(`http://127.0.0.1:${first}/metrics`).then((r) => r.ok, () => false), { what: 'the first endpoint' });
    const second = await freePort();
    writeConfig(config, second);
    moving.child.kill('SIGHUP');
    const scrapeSecond = async (): Promise<string | false> => {
      const response = await fetch(`http://127.0.0.1:${second}/metrics`).catch(() => undefined);
      return response?.ok === true && response.text();
    };
    const text = await waitFor(scrapeSecond, {
      what: 'the moved endpoint',
    });
    expect(text).toContain('mesos_log_splitter_workers');
    await expect(fetch(`http://127.0.0.1:${first}/metrics`)).rejects.toThrow();
    expect(await fetch(`http://127.0.0.1:${second}/other`).then((r) => r.status)).toBe(404);
  });
});
