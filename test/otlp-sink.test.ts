// End to end: the built helper, started as the agent starts it, tees a real pipe into the sandbox and an OTLP/HTTP
// receiver that decodes what it gets with protobufjs (or as OTLP/JSON) and misbehaves on purpose.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { chunks, numberedLines } from './helpers/data.js';
import { killDaemons, makeDaemon } from './helpers/daemon.js';
import { agentEnv } from './helpers/env.js';
import type { HttpReceiver } from './helpers/http-receiver.js';
import { otlpReceiver, otlpRecords, partialSuccessBody, statusBody, type OtlpRecord } from './helpers/otlp-receiver.js';
import { endAndSummarize, expectEveryLineAccounted, OUTAGES, startHelperWithSink, streamWithOutages } from './helpers/outage.js';
import { makeSandbox } from './helpers/sandbox.js';
import { expectSummaryAddsUp, spawnLogger, type Diagnostic, type PipedProcess } from './helpers/spawn.js';
import { waitFor } from './helpers/wait.js';

const SHUTDOWN_MS = 10_000;
/** A pipe read's worth: how a task's output reaches the helper under load. */
const PIPE_WRITE = 64 * 1024;
const WIDTH = 150;

afterAll(killDaemons);

const receivers: HttpReceiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

async function startReceiver(label: string): Promise<HttpReceiver> {
  const receiver = otlpReceiver({ label });
  receivers.push(receiver);
  await receiver.start();
  return receiver;
}

/** A Mesos sandbox path (so the ids come from it) and a config with one otlp sink named `otlp`. */
function setup(stream: 'stdout' | 'stderr', sink: Record<string, unknown>, work = makeSandbox().dir, shutdownMs = SHUTDOWN_MS) {
  const logFilename = join(work, 'slaves/S1/frameworks/F1/executors/E1/runs/C1', stream);
  mkdirSync(dirname(logFilename), { recursive: true });
  const configFile = join(work, `config-${stream}.yaml`);
  // JSON is YAML; enrichment is off so every line carries the path's metadata.
  const config = { agent: { enrich: false }, lines: { max_line_bytes: '1KB' }, shutdown_timeout_ms: shutdownMs, sinks: { otlp: { type: 'otlp', ...sink } } };
  writeFileSync(configFile, JSON.stringify(config));
  return { logFilename, configFile, work };
}

const start = (logFilename: string, configFile: string): Promise<PipedProcess> =>
  spawnLogger({ log_filename: logFilename, max_size: '64MB' }, { env: agentEnv({ LOG_SPLITTER_CONFIG: configFile }) });

/**
 * Writes `input` in pipe-sized pieces, ends the stream, and checks the exit and that the sandbox file is `whole`
 * (what was written before, and `input`).
 */
async function run(helper: PipedProcess, logFilename: string, input: Buffer, whole = input): Promise<Diagnostic> {
  for (const piece of chunks(input, PIPE_WRITE)) await helper.write(piece);
  await helper.end();
  const exit = await helper.exited;
  expect(exit.code, helper.stderr()).toBe(0);
  expect(readFileSync(logFilename).equals(whole)).toBe(true);
  const summary = helper.diagnostics().find((d) => d.msg === 'sink summary' && d.sink === 'otlp');
  expectSummaryAddsUp(summary, helper.written());
  return summary!;
}

/** The records of every request the receiver accepted, in arrival order. */
const acceptedRecords = (receiver: HttpReceiver): OtlpRecord[] => receiver.accepted().flatMap(otlpRecords);

/** The number after `label` in a body. */
const numberOf = (label: string, body: string): number | undefined => {
  const match = new RegExp(`^${label} (\\d+) `).exec(body);
  return match === null ? undefined : Number(match[1]);
};

/**
 * Every one of `total` lines arrived, and in order: each accepted request's lines go up, and a line's first arrival
 * comes after that of every line before it (a retried batch may bring lines again, never ahead of their turn).
 */
function expectAllInOrder(receiver: HttpReceiver, label: string, total: number): void {
  const firstSeen: number[] = [];
  const seen = new Set<number>();
  for (const request of receiver.accepted()) {
    const numbers = otlpRecords(request)
      .map((record) => numberOf(label, record.body))
      .filter((n) => n !== undefined);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    for (const n of numbers) {
      if (!seen.has(n)) firstSeen.push(n);
      seen.add(n);
    }
  }
  expect(firstSeen).toEqual(Array.from({ length: total }, (_, i) => i));
}

const RESOURCE = {
  'service.name': 'E1',
  'host.name': hostname(),
  'mesos.agent.id': 'S1',
  'mesos.framework.id': 'F1',
  'mesos.executor.id': 'E1',
  'mesos.container.id': 'C1',
};

describe('otlp sink in the helper', () => {
  it('protobuf, gzip: stdout and stderr lines each once and in order, with resource, scope, severity, times and stream; sandbox exact', async () => {
    const receiver = await startReceiver('pb');
    const work = makeSandbox().dir;
    const total = 20_000;
    const out = setup('stdout', { url: receiver.url }, work);
    const err = setup('stderr', { url: receiver.url }, work);
    const outInput = numberedLines(total, WIDTH, 'out');
    const tail = Buffer.concat([
      Buffer.from([...Buffer.from('err bad '), 0xc3, 0x28, 0x0a]),
      Buffer.from(`err long ${'L'.repeat(1100)}\n`),
      Buffer.from('err last, no newline'),
    ]);
    const errInput = Buffer.concat([numberedLines(total, WIDTH, 'err'), tail]);
    const before = BigInt(Date.now()) * 1_000_000n;
    const [outHelper, errHelper] = await Promise.all([start(out.logFilename, out.configFile), start(err.logFilename, err.configFile)]);
    const [outSummary, errSummary] = await Promise.all([run(outHelper, out.logFilename, outInput), run(errHelper, err.logFilename, errInput)]);
    const after = BigInt(Date.now()) * 1_000_000n;

    expect(outSummary).toMatchObject({ type: 'otlp', linesIn: total, linesSent: total, linesDropped: 0, failedSends: 0, state: 'up' });
    expect(errSummary).toMatchObject({ linesIn: total + 3, linesSent: total + 3, linesDropped: 0, failedSends: 0 });
    for (const request of receiver.requests) {
      expect(request).toMatchObject({ method: 'POST', path: '/v1/logs', answer: 200 });
      expect(request.headers).toMatchObject({ 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' });
      expect(request.wire.length).toBeLessThan(request.body.length);
    }
    const records = acceptedRecords(receiver);
    for (const [label, severityNumber, severityText, stream] of [['out', 9, 'INFO', 'stdout'], ['err', 17, 'ERROR', 'stderr']] as const) {
      const mine = records.filter((r) => r.body.startsWith(`${label} `));
      expect(mine.map((r) => numberOf(label, r.body)).filter((n) => n !== undefined)).toEqual(Array.from({ length: total }, (_, i) => i));
      expect(mine[0]).toMatchObject({ scope: 'mesos-log-splitter', severityNumber, severityText, attributes: { 'log.iostream': stream } });
      expect(mine[0].resource).toEqual(RESOURCE);
      // One expect per record takes seconds for 40,000: the records that differ from the first, or are out of time.
      const same = (record: OtlpRecord): boolean =>
        JSON.stringify([record.resource, record.scope, record.severityNumber, record.severityText, record.attributes['log.iostream']]) ===
          JSON.stringify([mine[0].resource, mine[0].scope, severityNumber, severityText, stream]) &&
        record.timeUnixNano >= before &&
        record.timeUnixNano <= after &&
        record.observedTimeUnixNano === record.timeUnixNano;
      expect(mine.filter((record) => !same(record))).toEqual([]);
    }
    const numbered = new RegExp(`^(out|err) \\d+ \\.+$`);
    expect(records.filter((r) => !numbered.test(r.body)).map((r) => [r.body.slice(0, 20), r.body.length, r.attributes['mesos.line.partial']])).toEqual([
      ['err bad \ufffd(', 10, undefined],
      [`err long ${'L'.repeat(11)}`, 1024, true],
      ['LLLLLLLLLLLLLLLLLLLL', 1109 - 1024, undefined],
      ['err last, no newline', 20, true],
    ]);
  });

  it('json, no compression: the OTLP/JSON mapping (camelCase, 64-bit times as strings), every line once and in order', async () => {
    const receiver = await startReceiver('js');
    const total = 5000;
    const { logFilename, configFile } = setup('stderr', { url: `${receiver.url}/`, encoding: 'json', compression: 'none' });
    const summary = await run(await start(logFilename, configFile), logFilename, numberedLines(total, WIDTH, 'js'));
    expect(summary).toMatchObject({ linesIn: total, linesSent: total, failedSends: 0 });
    for (const request of receiver.requests) {
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers['content-encoding']).toBeUndefined();
      expect(request.body.toString()).toMatch(/^\{"resourceLogs":\[\{"resource":\{"attributes":\[\{"key":"service.name"/);
    }
    expectAllInOrder(receiver, 'js', total);
    expect(receiver.received()).toHaveLength(total);
    const [first] = acceptedRecords(receiver);
    expect(first).toMatchObject({ resource: RESOURCE, severityNumber: 17, severityText: 'ERROR', attributes: { 'log.iostream': 'stderr' } });
  });

  it('500, 429 with Retry-After, resets before and after the body, a slow answer: every line at least once, in order', async () => {
    const receiver = await startReceiver('fault');
    const total = 20_000;
    const { logFilename, configFile } = setup('stdout', { url: receiver.url, timeout_ms: 1000, batch: { max_lines: 1024 } });
    // Batches of 1024 lines make 20 requests, more than the answers queued. A success between faults resets the
    // backoff, so the retries stay within the test's time.
    const ok = { status: 200 };
    receiver.queue(
      { status: 500, body: 'collector broke' },
      ok,
      { status: 429, headers: { 'retry-after': '1' } },
      ok,
      { reset: 'at-headers' },
      ok,
      { status: 200, delayMs: 2500 },
      ok,
      { status: 503 },
      ok,
      { reset: 'after-body' },
      ok,
      { status: 502 },
      { status: 504 },
    );
    const summary = await run(await start(logFilename, configFile), logFilename, numberedLines(total, WIDTH, 'fault'));
    expect(summary).toMatchObject({ linesIn: total, linesSent: total, linesDropped: 0, bufferedLines: 0, state: 'up' });
    expect(summary.failedSends).toBe(8);
    // The slow answer may still be waiting to find its sender gone.
    await waitFor(() => receiver.requests[6].answer !== 0, { what: 'the slow answer' });
    expect(receiver.requests.slice(0, 14).map((r) => r.answer)).toEqual([500, 200, 429, 200, 'reset', 200, 'reset', 200, 503, 200, 'reset', 200, 502, 504]);
    // Retry-After: 1 is honoured: the retry comes a second later, not after the 50-100 ms a first failure waits.
    expect(receiver.requests[3].at - receiver.requests[2].at).toBeGreaterThanOrEqual(950);
    expectAllInOrder(receiver, 'fault', total);
  });

  it('400 with a Status message: that batch is counted rejected, sent once, and logged with the message; later lines arrive', async () => {
    const receiver = await startReceiver('bad');
    const { logFilename, configFile } = setup('stdout', { url: receiver.url });
    // 72 characters: the Status's length byte is printable ('H'), so only a decoded Status logs the message alone.
    const message = "log record 0 is older than the collector's 24h retention window, refused";
    receiver.queue({ status: 400, body: statusBody(3, message), headers: { 'content-type': 'application/x-protobuf' } });
    const helper = await start(logFilename, configFile);
    const first = numberedLines(100, WIDTH, 'bad');
    await helper.write(first);
    await waitFor(() => receiver.requests.length === 1, { what: 'the first request' });
    const rest = numberedLines(900, WIDTH, 'bad', 100);
    const summary = await run(helper, logFilename, rest, Buffer.concat([first, rest]));
    expect(summary).toMatchObject({ linesIn: 1000, linesSent: 900, linesDropped: 100, droppedBy: { rejected: { lines: 100, bytes: 100 * WIDTH } } });
    expect(summary.failedSends).toBe(0);
    const [rejected, ...others] = receiver.requests;
    expect(rejected.answer).toBe(400);
    expect(otlpRecords(rejected).map((r) => numberOf('bad', r.body))).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(others.every((r) => r.answer === 200)).toBe(true);
    expect(receiver.received()).toEqual(Array.from({ length: 900 }, (_, i) => 100 + i));
    const logged = helper.diagnostics().find((d) => d.msg.startsWith('peer rejected a batch'));
    expect(logged).toMatchObject({ sink: 'otlp', status: 400, lines: 100 });
    expect(logged!.err).toBe(`HTTP 400: ${message}`);
  });

  it('partial_success: the records the collector refused count as dropped (rejected) and are logged, not retried', async () => {
    const receiver = await startReceiver('part');
    const { logFilename, configFile } = setup('stdout', { url: receiver.url });
    receiver.queue({ status: 200, body: partialSuccessBody(7, 'seven records too large'), headers: { 'content-type': 'application/x-protobuf' } });
    const helper = await start(logFilename, configFile);
    const input = numberedLines(100, WIDTH, 'part');
    const summary = await run(helper, logFilename, input);
    expect(receiver.requests.map((r) => r.answer)).toEqual([200]);
    expect(summary).toMatchObject({ linesIn: 100, linesSent: 93, linesDropped: 7, droppedBy: { rejected: { lines: 7, bytes: 7 * WIDTH } }, failedSends: 0 });
    const logged = helper.diagnostics().find((d) => d.msg.startsWith('collector took a batch but refused'));
    expect(logged).toMatchObject({ sink: 'otlp', rejected: 7, records: 100, err: 'seven records too large' });
  });

  it('a collector that never answers: the helper exits at the shutdown deadline, the lines counted buffered', async () => {
    const receiver = await startReceiver('stall');
    receiver.queue({ status: 200, delayMs: 30_000 });
    const { logFilename, configFile } = setup('stdout', { url: receiver.url }, makeSandbox().dir, 1000);
    const helper = await start(logFilename, configFile);
    await helper.write(numberedLines(100, WIDTH, 'stall'));
    await waitFor(() => receiver.requests.length > 0, { what: 'the first request' });
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code, helper.stderr()).toBe(0);
    expect(exit.afterEndMs).toBeLessThan(5000);
    const summary = helper.diagnostics().find((d) => d.msg === 'sink summary');
    expect(summary).toMatchObject({ linesIn: 100, linesSent: 0, bufferedLines: 100 });
    expectSummaryAddsUp(summary, helper.written());
  });

  it.each([1, 2, 3])('random collector outages (seed %i): every line arrives or is counted dropped, first arrivals in order', async (seed) => {
    const receiver = await startReceiver('outage');
    // 4 MB: inside the 8 MB buffer, so no outage may cost a line.
    const plan = { seed, lines: 40_000, lineBytes: 100, label: 'outage', maxPauseMs: 20, ...OUTAGES };
    const helper = await startHelperWithSink({ type: 'otlp', url: receiver.url });
    const run = await streamWithOutages(helper, receiver, plan);
    const summary = await endAndSummarize(helper);
    expectEveryLineAccounted(summary, receiver.received(), run, plan.lines);
    expectAllInOrder(receiver, 'outage', plan.lines);
  });
});

describe('otlp sink shared by the daemon', () => {
  it("stdout and stderr of 4 tasks into one sink: requests mix streams, one ResourceLogs per task, each stream's lines once and in order", async () => {
    const receiver = await startReceiver('shared');
    const work = makeSandbox().dir;
    const configFile = join(work, 'config.yaml');
    writeFileSync(configFile, JSON.stringify({ agent: { enrich: false }, shutdown_timeout_ms: SHUTDOWN_MS, sinks: { otlp: { type: 'otlp', url: receiver.url } } }));
    const daemon = makeDaemon({ LOG_SPLITTER_CONFIG: configFile });
    await daemon.start();
    const TASKS = 4;
    const LINES = 3000;
    const streams = Array.from({ length: TASKS }, (_, t) => (['stdout', 'stderr'] as const).map((stream) => ({ t, stream, label: `t${t}${stream}` }))).flat();
    const helpers = await Promise.all(
      streams.map(({ t, stream }) => {
        const logFilename = join(work, `slaves/S1/frameworks/F1/executors/E${t}/runs/C${t}`, stream);
        mkdirSync(dirname(logFilename), { recursive: true });
        return spawnLogger({ log_filename: logFilename, max_size: '64MB' }, { env: daemon.shimEnv('daemon') });
      }),
    );
    // Interleaved 64 KiB-sized writes, as concurrent tasks write.
    const inputs = streams.map(({ label }) => numberedLines(LINES, WIDTH, label));
    for (let at = 0; at < LINES * WIDTH; at += PIPE_WRITE) {
      await Promise.all(helpers.map((helper, k) => helper.write(inputs[k].subarray(at, at + PIPE_WRITE))));
    }
    await Promise.all(helpers.map((helper) => helper.end()));
    for (const helper of helpers) expect((await helper.exited).code, helper.stderr()).toBe(0);
    await waitFor(() => streams.every(({ label }) => acceptedRecords(receiver).filter((r) => numberOf(label, r.body) !== undefined).length >= LINES), {
      timeoutMs: 30_000,
      intervalMs: 500,
      what: 'every line of every stream',
    });
    const records = acceptedRecords(receiver);
    for (const { t, stream, label } of streams) {
      const mine = records.filter((r) => numberOf(label, r.body) !== undefined);
      expect(mine.map((r) => numberOf(label, r.body)), label).toEqual(Array.from({ length: LINES }, (_, i) => i));
      const wrong = mine.filter(
        (r) => r.resource['mesos.executor.id'] !== `E${t}` || r.resource['mesos.container.id'] !== `C${t}` || r.attributes['log.iostream'] !== stream,
      );
      expect(wrong, label).toEqual([]);
    }
    // Batches hold lines of several streams: within one request, a task's stdout and stderr share its ResourceLogs,
    // and each task has one.
    const mixed = receiver.accepted().map(otlpRecords).filter((request) => new Set(request.map((r) => r.resource['mesos.executor.id'])).size > 1);
    expect(mixed.length).toBeGreaterThan(0);
    for (const request of mixed) {
      const indexByTask = new Map<unknown, Set<number>>();
      for (const record of request) {
        const task = record.resource['mesos.executor.id'];
        if (!indexByTask.has(task)) indexByTask.set(task, new Set());
        indexByTask.get(task)!.add(record.resourceIndex);
      }
      expect([...indexByTask.values()].every((indexes) => indexes.size === 1)).toBe(true);
    }
  }, 120_000);
});
