// End to end: the built helper, started as the agent starts it, tees a real pipe (64 KiB writes) into the sandbox and
// a Kafka broker: a spec-faithful one in the test (test/helpers/kafka-broker.ts) that decodes the record batches
// itself and misbehaves on request, and librdkafka's mock cluster (kcat), a real Kafka protocol implementation of
// older versions (ApiVersions and Metadata up to v2, Produce up to v7), read back with kcat.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { chunks, numberedLines } from './helpers/data.js';
import { agentEnv } from './helpers/env.js';
import { KAFKA_ERRORS, startKafkaBroker, type KafkaBroker, type StoredRecord } from './helpers/kafka-broker.js';
import { startKafkaMock } from './helpers/kafka-mock.js';
import { freePort } from './helpers/prometheus.js';
import { makeCerts } from './helpers/rsyslog.js';
import { makeSandbox } from './helpers/sandbox.js';
import { expectSummaryAddsUp, LAUNCHER_DIR, LOGGER_BIN, loggerArgv, spawnLogger, spawnPiped, type Diagnostic, type PipedProcess } from './helpers/spawn.js';
import { sleep, waitFor } from './helpers/wait.js';

const SHUTDOWN_MS = 3000;
const PIPE_WRITE = 64 * 1024;

let broker: KafkaBroker | undefined;
afterEach(async () => {
  await broker?.stop();
  broker = undefined;
});

/** A Mesos sandbox path (so the ids come from it) and a config with one kafka sink `k`. */
function setup(stream: 'stdout' | 'stderr', sink: Record<string, unknown>, executor = 'E1', container = 'C1') {
  const work = makeSandbox().dir;
  const logFilename = join(work, `slaves/S1/frameworks/F1/executors/${executor}/runs/${container}`, stream);
  mkdirSync(dirname(logFilename), { recursive: true });
  const configFile = join(work, 'config.yaml');
  // Enrichment off: every line carries the path's ids, and the key falls back from the task id to the executor id.
  writeFileSync(
    configFile,
    JSON.stringify({ agent: { enrich: false }, lines: { max_line_bytes: '1KB' }, shutdown_timeout_ms: SHUTDOWN_MS, sinks: { k: { type: 'kafka', ...sink } } }),
  );
  return { logFilename, configFile };
}

const start = (logFilename: string, configFile: string): Promise<PipedProcess> =>
  spawnLogger({ log_filename: logFilename, max_size: '64MB' }, { env: agentEnv({ LOG_SPLITTER_CONFIG: configFile }) });

async function writeAll(helper: PipedProcess, input: Buffer, pauseMs = 0): Promise<void> {
  for (const chunk of chunks(input, PIPE_WRITE)) {
    await helper.write(chunk);
    if (pauseMs > 0) await sleep(pauseMs);
  }
}

/** Ends the input: exit 0, sandbox byte-exact; returns the sink's summary. */
async function finish(helper: PipedProcess, logFilename: string, input: Buffer): Promise<Diagnostic> {
  await helper.end();
  const exit = await helper.exited;
  expect(exit.code, helper.stderr()).toBe(0);
  expect(readFileSync(logFilename).equals(input)).toBe(true);
  const summary = helper.diagnostics().find((d) => d.msg === 'sink summary' && d.sink === 'k');
  expectSummaryAddsUp(summary, helper.written());
  return summary!;
}

const messages = (records: StoredRecord[]): string[] => records.map((r) => (JSON.parse(r.value.toString()) as { message: string }).message);

/** The numbers of `label N` lines, in the order one partition's log holds them. */
const numbers = (records: StoredRecord[], label: string): number[] =>
  messages(records)
    .filter((m) => m.startsWith(`${label} `))
    .map((m) => Number(m.split(' ')[1]));

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Waits until the broker holds `count` records of `topic`: the first send imports the client, which takes a while. */
const arrived = (topic: string, count: number): Promise<unknown> =>
  waitFor(() => broker!.records(topic).length >= count, { timeoutMs: 30_000, what: `${count} records in ${topic}` });

describe('kafka sink in the helper', () => {
  it('every line as a JSON record, in order under the writer key, topic from the template, sandbox exact', async () => {
    broker = await startKafkaBroker();
    const { logFilename, configFile } = setup('stderr', {
      brokers: [broker.bootstrap],
      topic: 'logs-{framework_id}-{stream}',
      headers: ['stream', 'container_id'],
      compression: 'gzip',
    });
    const total = 20_000;
    const input = Buffer.concat([numberedLines(total, 100, 'json'), Buffer.from('a "quoted" \\ line\tä\n'), Buffer.from('last, no newline')]);
    const helper = await start(logFilename, configFile);
    await writeAll(helper, input);
    await arrived('logs-F1-stderr', total + 1);
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ type: 'kafka', linesIn: total + 2, linesSent: total + 2, linesDropped: 0, bufferedLines: 0 });

    expect(broker.topics()).toEqual(['logs-F1-stderr']);
    const records = broker.records('logs-F1-stderr');
    // One key, so one partition, in order, each line once (the producer is idempotent).
    expect(new Set(records.map((r) => `${r.key}/${r.partition}`))).toEqual(new Set([`E1/${records[0].partition}`]));
    expect(numbers(records, 'json')).toEqual(range(total));
    const [first] = records;
    expect(JSON.parse(first.value.toString())).toEqual({
      time: new Date(first.timestamp).toISOString(),
      message: `json 0 ${'.'.repeat(100 - 'json 0 '.length - 1)}`,
      stream: 'stderr',
      hostname: hostname(),
      agent_id: 'S1',
      framework_id: 'F1',
      executor_id: 'E1',
      container_id: 'C1',
    });
    expect(first.headers).toEqual([
      ['stream', 'stderr'],
      ['container_id', 'C1'],
    ]);
    expect(messages(records.slice(-2))).toEqual(['a "quoted" \\ line\tä', 'last, no newline']);
    expect(JSON.parse(records.at(-1)!.value.toString())).toMatchObject({ partial: true });
    expect(JSON.parse(records.at(-2)!.value.toString())).not.toHaveProperty('partial');
  });

  it('format raw, key container_id, no compression: the line bytes as the value', async () => {
    broker = await startKafkaBroker();
    const { logFilename, configFile } = setup('stdout', { brokers: [broker.bootstrap], topic: 'raw', format: 'raw', key: 'container_id', compression: 'none' });
    const input = numberedLines(3000, 80, 'raw');
    const helper = await start(logFilename, configFile);
    await writeAll(helper, input);
    await arrived('raw', 3000);
    await finish(helper, logFilename, input);
    const records = broker.records('raw');
    expect(records.map((r) => r.key)).toEqual(Array(3000).fill('C1'));
    expect(Buffer.concat(records.map((r) => Buffer.concat([r.value, Buffer.from('\n')]))).equals(input)).toBe(true);
  });

  it('broker down at start, then up: lines wait in the buffer and all arrive once', async () => {
    broker = await startKafkaBroker();
    await broker.stop();
    const { logFilename, configFile } = setup('stdout', { brokers: [broker.bootstrap], topic: 'late' });
    const input = numberedLines(5000, 64, 'late');
    const helper = await start(logFilename, configFile);
    await writeAll(helper, input);
    await waitFor(() => helper.diagnostics().some((d) => d.msg === 'sink send failed; will retry'), { timeoutMs: 15_000, what: 'a failed send' });
    await broker.start();
    await waitFor(() => broker!.records('late').length >= 5000, { timeoutMs: 20_000, what: '5000 records' });
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: 5000, linesSent: 5000, linesDropped: 0 });
    expect(summary.failedSends).toBeGreaterThan(0);
    expect(numbers(broker.records('late'), 'late')).toEqual(range(5000));
  });

  it('connections reset after the broker appended, and a broker restart mid-stream: every line exactly once, in order', async () => {
    broker = await startKafkaBroker();
    const { logFilename, configFile } = setup('stdout', { brokers: [broker.bootstrap], topic: 'resets', compression: 'gzip' });
    const input = numberedLines(12_000, 100, 'reset');
    const parts = chunks(input, input.length / 4);
    const helper = await start(logFilename, configFile);
    await writeAll(helper, parts[0], 5);
    await waitFor(() => broker!.records('resets').length > 0, { what: 'the first records' });
    // Appended, then no answer: the resend carries the same producer id and sequence, and the broker drops it.
    broker.resetAfterAppend(3);
    await writeAll(helper, parts[1], 5);
    await broker.stop();
    await writeAll(helper, parts[2], 5);
    await sleep(300);
    await broker.start();
    await writeAll(helper, parts[3], 5);
    await waitFor(() => broker!.records('resets').length >= 12_000, { timeoutMs: 20_000, what: 'every record' });
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: 12_000, linesSent: 12_000, linesDropped: 0 });
    // Each reset was followed by a new connection (the restart may fall in the same gap as the last one).
    expect(summary.reconnects as number).toBeGreaterThanOrEqual(3);
    expect(numbers(broker.records('resets'), 'reset')).toEqual(range(12_000));
  });

  it('a refusal (MESSAGE_TOO_LARGE) drops that batch as rejected, once, with the broker message logged; a retriable error (NOT_LEADER_OR_FOLLOWER) is retried', async () => {
    broker = await startKafkaBroker();
    const { logFilename, configFile } = setup('stdout', { brokers: [broker.bootstrap], topic: 'refusals', batch: { max_lines: 100 } });
    const helper = await start(logFilename, configFile);
    const first = numberedLines(100, 64, 'ok');
    await helper.write(first);
    await waitFor(() => broker!.records('refusals').length === 100, { what: 'the first batch' });

    const requests = broker.produceRequests();
    broker.failProduce(KAFKA_ERRORS.MESSAGE_TOO_LARGE, 1);
    const refused = numberedLines(100, 64, 'refused');
    await helper.write(refused);
    await waitFor(() => broker!.produceRequests() > requests, { what: 'the refused request' });
    await sleep(500);
    // Not sent again.
    expect(broker.produceRequests()).toBe(requests + 1);
    broker.failProduce(KAFKA_ERRORS.NOT_LEADER_OR_FOLLOWER, 5);
    const retried = numberedLines(100, 64, 'retried');
    await helper.write(retried);
    await waitFor(() => numbers(broker!.records('refusals'), 'retried').length === 100, { timeoutMs: 15_000, what: 'the retried batch' });

    const after = numberedLines(100, 64, 'after');
    await helper.write(after);
    await waitFor(() => numbers(broker!.records('refusals'), 'after').length === 100, { what: 'the batch after' });
    const input = Buffer.concat([first, refused, retried, after]);
    const summary = await finish(helper, logFilename, input);

    expect(numbers(broker.records('refusals'), 'refused')).toEqual([]);
    expect(summary).toMatchObject({ linesIn: 400, linesSent: 300, linesDropped: 100, droppedBy: { rejected: { lines: 100, bytes: 6400 } } });
    expect(summary.failedSends).toBeGreaterThan(0);
    const rejected = helper.diagnostics().find((d) => d.msg.startsWith('peer rejected a batch'));
    expect(rejected?.err).toMatch(/MESSAGE_TOO_LARGE: test broker refused: code 10/);
  });

  it('a broker that never acknowledges: at EOF the helper exits within the shutdown timeout, the lines counted buffered', async () => {
    broker = await startKafkaBroker();
    broker.delayAcks(60_000);
    const { logFilename, configFile } = setup('stdout', { brokers: [broker.bootstrap], topic: 'withheld' });
    const input = numberedLines(2000, 64, 'withheld');
    const helper = await start(logFilename, configFile);
    await writeAll(helper, input);
    await waitFor(() => broker!.produceRequests() > 0, { what: 'a produce request' });
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code, helper.stderr()).toBe(0);
    expect(exit.afterEndMs).toBeLessThan(SHUTDOWN_MS + 2000);
    const summary = helper.diagnostics().find((d) => d.msg === 'sink summary' && d.sink === 'k');
    expect(summary).toMatchObject({ linesIn: 2000, linesSent: 0, bufferedLines: 2000 });
    expectSummaryAddsUp(summary, helper.written());
  });

  it('TLS verified against the CA, SASL SCRAM-SHA-512 with a password file: every line arrives', async () => {
    const dir = makeSandbox().dir;
    const certs = makeCerts(join(dir, 'certs'));
    broker = await startKafkaBroker({ tls: { cert: certs.serverCert, key: certs.serverKey }, sasl: { mechanism: 'SCRAM-SHA-512', username: 'logs', password: 'p4ss' } });
    const passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, 'p4ss\n');
    const { logFilename, configFile } = setup('stdout', {
      brokers: [broker.bootstrap],
      topic: 'secure',
      transport: 'tls',
      tls: { ca_file: certs.ca },
      sasl: { mechanism: 'scram-sha-512', username: 'logs', password_file: passwordFile },
    });
    const input = numberedLines(4000, 100, 'secure');
    const helper = await start(logFilename, configFile);
    await writeAll(helper, input);
    await arrived('secure', 4000);
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: 4000, linesSent: 4000, linesDropped: 0 });
    expect(numbers(broker.records('secure'), 'secure')).toEqual(range(4000));
    expect(broker.failedLogins()).toBe(0);
  });

  it('TLS: a broker certificate from another CA is refused; nothing is sent, the lines wait', async () => {
    const certs = makeCerts(join(makeSandbox().dir, 'certs'));
    broker = await startKafkaBroker({ tls: { cert: certs.serverCert, key: certs.serverKey } });
    const { logFilename, configFile } = setup('stdout', { brokers: [broker.bootstrap], topic: 'untrusted', transport: 'tls', tls: { ca_file: certs.otherCa } });
    const input = numberedLines(500, 64, 'untrusted');
    const helper = await start(logFilename, configFile);
    await writeAll(helper, input);
    await waitFor(() => helper.diagnostics().some((d) => d.msg === 'sink send failed; will retry'), { timeoutMs: 15_000, what: 'a failed send' });
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: 500, linesSent: 0, linesDropped: 0, bufferedLines: 500, state: 'down' });
    const failed = helper.diagnostics().find((d) => d.msg === 'sink send failed; will retry');
    expect(failed?.err).toMatch(/certificate/);
    expect(broker.produceRequests()).toBe(0);
  });

  it('SASL PLAIN with a wrong password: retried, not rejected; the password file fixed, the lines arrive', async () => {
    broker = await startKafkaBroker({ sasl: { mechanism: 'PLAIN', username: 'logs', password: 'right' } });
    const passwordFile = join(makeSandbox().dir, 'password');
    writeFileSync(passwordFile, 'wrong');
    const { logFilename, configFile } = setup('stdout', {
      brokers: [broker.bootstrap],
      topic: 'login',
      sasl: { mechanism: 'plain', username: 'logs', password_file: passwordFile },
    });
    const input = numberedLines(1000, 64, 'login');
    const helper = await start(logFilename, configFile);
    await writeAll(helper, input);
    await waitFor(() => helper.diagnostics().some((d) => d.msg === 'sink send failed; will retry'), { timeoutMs: 15_000, what: 'a failed send' });
    expect(broker.failedLogins()).toBeGreaterThan(0);
    expect(broker.records('login')).toEqual([]);
    writeFileSync(passwordFile, 'right');
    await waitFor(() => broker!.records('login').length >= 1000, { timeoutMs: 40_000, what: 'every record after the fix' });
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: 1000, linesSent: 1000, linesDropped: 0 });
    expect(numbers(broker.records('login'), 'login')).toEqual(range(1000));
  });

  it("librdkafka's mock cluster (kcat, 3 brokers): 20k lines of two writers (lz4, gzip), read back with kcat, each writer's in order under its key, on the Java partitioner's partition", async () => {
    const mock = await startKafkaMock(3);
    try {
      const perWriter = 10_000;
      const writers = await Promise.all(
        [
          ['E1', 'lz4'],
          ['E2', 'gzip'],
        ].map(async ([executor, compression]) => {
          const { logFilename, configFile } = setup('stdout', { brokers: mock.brokers, topic: 'mock-{framework_id}', compression }, executor, `C-${executor}`);
          const input = numberedLines(perWriter, 100, executor);
          return { executor, logFilename, input, helper: await start(logFilename, configFile) };
        }),
      );
      await Promise.all(writers.map(({ helper, input }) => writeAll(helper, input)));
      // Acknowledged (acks=all) before EOF, so the summaries say every line was sent.
      await waitFor(async () => (await mock.consume('mock-F1')).length >= 2 * perWriter, { timeoutMs: 40_000, intervalMs: 500, what: `${2 * perWriter} records in the mock` });
      for (const { helper, logFilename, input } of writers) {
        const summary = await finish(helper, logFilename, input);
        expect(summary).toMatchObject({ linesIn: perWriter, linesSent: perWriter, linesDropped: 0, bufferedLines: 0 });
      }
      const records = await mock.consume('mock-F1');
      expect(records).toHaveLength(2 * perWriter);
      for (const { executor } of writers) {
        const mine = records.filter((r) => r.key === executor);
        // One key, one partition, in the log's order: each line once, in order.
        expect(new Set(mine.map((r) => r.partition)).size).toBe(1);
        expect(mine.map((r) => Number(JSON.parse(r.payload!).message.split(' ')[1]))).toEqual(range(perWriter));
        const value = JSON.parse(mine[0].payload!);
        expect(value).toEqual({
          time: new Date(mine[0].ts).toISOString(),
          message: `${executor} 0 ${'.'.repeat(100 - `${executor} 0 `.length - 1)}`,
          stream: 'stdout',
          hostname: hostname(),
          agent_id: 'S1',
          framework_id: 'F1',
          executor_id: executor,
          container_id: `C-${executor}`,
        });
        // librdkafka's murmur2_random (the Java client's partitioner) puts the key on the same partition of a topic
        // with as many partitions (the mock's default).
        expect(await mock.partitionOf(`probe-${executor}`, executor)).toBe(mine[0].partition);
      }
    } finally {
      await mock.stop();
    }
  });

  it("the mock cluster not there yet (the bootstrap port refuses): lines wait, then all arrive once it is", async () => {
    const port = await freePort();
    const { logFilename, configFile } = setup('stdout', { brokers: [`127.0.0.1:${port}`], topic: 'late-mock' });
    const input = numberedLines(5000, 80, 'late');
    const helper = await start(logFilename, configFile);
    await writeAll(helper, input);
    const failed = await waitFor(() => helper.diagnostics().find((d) => d.msg === 'sink send failed; will retry'), { timeoutMs: 15_000, what: 'a failed send' });
    expect(failed.err).toMatch(/ECONNREFUSED/);
    const mock = await startKafkaMock();
    // The bootstrap address forwards to the mock broker, which the metadata then names itself.
    const forwarder = createServer((socket) => {
      const [host, mockPort] = mock.brokers[0].split(':');
      const upstream = connect(Number(mockPort), host);
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    try {
      await new Promise<void>((resolve) => forwarder.listen(port, '127.0.0.1', resolve));
      await waitFor(async () => (await mock.consume('late-mock')).length >= 5000, { timeoutMs: 40_000, intervalMs: 500, what: '5000 records in the mock' });
      const summary = await finish(helper, logFilename, input);
      expect(summary).toMatchObject({ linesIn: 5000, linesSent: 5000, linesDropped: 0 });
      expect(summary.failedSends).toBeGreaterThan(0);
      const records = await mock.consume('late-mock');
      expect(records.map((r) => Number(JSON.parse(r.payload!).message.split(' ')[1]))).toEqual(range(5000));
    } finally {
      forwarder.close();
      await mock.stop();
    }
  });

  it('installed as a release is, without node_modules: every line arrives', async () => {
    broker = await startKafkaBroker();
    const { logFilename, configFile } = setup('stdout', { brokers: [broker.bootstrap], topic: 'installed' });
    const launcherDir = mkdtempSync(join(tmpdir(), 'mls-libexec-'));
    try {
      copyFileSync(join(LAUNCHER_DIR, 'mesos-log-splitter.mjs'), join(launcherDir, 'mesos-log-splitter.mjs'));
      copyFileSync(LOGGER_BIN, join(launcherDir, 'mesos-logrotate-logger'));
      chmodSync(launcherDir, 0o755);
      chmodSync(join(launcherDir, 'mesos-logrotate-logger'), 0o755);
      const helper = await spawnPiped(join(launcherDir, 'mesos-logrotate-logger'), loggerArgv({ log_filename: logFilename, max_size: '64MB' }), {
        argv0: 'mesos-logrotate-logger',
        cwd: '/',
        env: agentEnv({ LOG_SPLITTER_CONFIG: configFile }),
      });
      const input = numberedLines(5000, 100, 'installed');
      await writeAll(helper, input);
      await arrived('installed', 5000);
      const summary = await finish(helper, logFilename, input);
      expect(summary).toMatchObject({ linesIn: 5000, linesSent: 5000, linesDropped: 0 });
      expect(numbers(broker.records('installed'), 'installed')).toEqual(range(5000));
    } finally {
      rmSync(launcherDir, { recursive: true, force: true });
    }
  });

  it('a config error names the key and the value', () => {
    const dir = makeSandbox().dir;
    const check = (sink: Record<string, unknown>): string => {
      const file = join(dir, 'config.yaml');
      writeFileSync(file, JSON.stringify({ sinks: { k: { type: 'kafka', ...sink } } }));
      const env = agentEnv();
      delete env.LOG_SPLITTER_CONFIG;
      const result = spawnSync(join(LAUNCHER_DIR, 'mesos-log-splitter'), ['check-config', file], { env, encoding: 'utf8', timeout: 20_000 });
      expect(result.status).not.toBe(0);
      return result.stderr;
    };
    expect(check({})).toMatch(/sinks\.k\.brokers is required/);
    expect(check({ brokers: ['kafka-1'] })).toMatch(/sinks\.k\.brokers: \["kafka-1"\] has "kafka-1"; each must be host:port/);
    expect(check({ brokers: ['k:9092'], compression: 'brotli' })).toMatch(/sinks\.k\.compression: "brotli" must be one of none, gzip, lz4/);
    expect(check({ brokers: ['k:9092'], compression: 'snappy' })).toMatch(/sinks\.k\.compression: "snappy" is not supported: this client compresses with lz4 or gzip/);
    expect(check({ brokers: ['k:9092'], key: 'task' })).toMatch(/sinks\.k\.key: "task" must be one of task_id, container_id, none/);
    expect(check({ brokers: ['k:9092'], topic: 'logs-{task}' })).toMatch(/sinks\.k\.topic: "logs-\{task\}" has an unknown placeholder \{task\}/);
    expect(check({ brokers: ['k:9092'], tls: { ca_file: '/x' } })).toMatch(/sinks\.k\.tls: .* applies only to transport tls/);
    expect(check({ brokers: ['k:9092'], sasl: { username: 'u' } })).toMatch(/sinks\.k\.sasl\.password or password_file is required/);
    expect(check({ brokers: ['k:9092'], headers: ['task'] })).toMatch(/sinks\.k\.headers: \["task"\] has task; choose from stream, hostname/);
  });
});
