// End to end: the built helper, started as the agent starts it, tees a real pipe into the sandbox and a Forward
// protocol receiver (test/helpers/fluent-receiver.ts) that decodes with @msgpack/msgpack and misbehaves on purpose.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { numberedLines } from './helpers/data.js';
import { killDaemons, makeDaemon } from './helpers/daemon.js';
import { agentEnv } from './helpers/env.js';
import { endAndSummarize, expectEveryLineAccounted, OUTAGES, startHelperWithSink, streamWithOutages } from './helpers/outage.js';
import { FluentReceiver, type ForwardMessage, type ReceiverSecurity } from './helpers/fluent-receiver.js';
import { freeTcpPort, makeCerts } from './helpers/rsyslog.js';
import { makeSandbox } from './helpers/sandbox.js';
import { expectSummaryAddsUp, spawnLogger, type Diagnostic, type PipedProcess } from './helpers/spawn.js';
import { sleep, waitFor } from './helpers/wait.js';

const SHUTDOWN_MS = 2000;
const WRITE_BYTES = 64 * 1024;

let receiver: FluentReceiver | undefined;
afterAll(killDaemons);
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

async function startReceiver(options: { security?: ReceiverSecurity; tls?: boolean; listen?: boolean } = {}): Promise<FluentReceiver> {
  const certs = options.tls ? makeCerts(join(makeSandbox().dir, 'certs')) : undefined;
  receiver = new FluentReceiver(await freeTcpPort(), { certs, security: options.security });
  if (options.listen !== false) await receiver.start();
  return receiver;
}

/** The helper as the agent starts it, with one fluent sink `fwd` to `receiver`; the ids come from the sandbox path. */
async function startHelper(fluent: FluentReceiver, sink: Record<string, unknown> = {}, stream = 'stdout'): Promise<{ helper: PipedProcess; logFilename: string }> {
  const work = makeSandbox().dir;
  const logFilename = join(work, 'slaves/S1/frameworks/F1/executors/E1/runs/C1', stream);
  mkdirSync(dirname(logFilename), { recursive: true });
  const configFile = join(work, 'config.yaml');
  const sinks = { fwd: { type: 'fluent', port: fluent.port, ...sink } };
  writeFileSync(configFile, JSON.stringify({ agent: { enrich: false }, lines: { max_line_bytes: '1KB' }, shutdown_timeout_ms: SHUTDOWN_MS, sinks }));
  const helper = await spawnLogger({ log_filename: logFilename, max_size: '64MB' }, { env: agentEnv({ LOG_SPLITTER_CONFIG: configFile }) });
  return { helper, logFilename };
}

/** Writes `input` in 64 KiB pieces, as a task's pipe delivers it, calling `between` after each. */
async function writeAll(helper: PipedProcess, input: Buffer, between?: (piece: number) => Promise<void>): Promise<void> {
  for (let at = 0, piece = 0; at < input.length; at += WRITE_BYTES, piece++) {
    await helper.write(input.subarray(at, at + WRITE_BYTES));
    await between?.(piece);
  }
}

/** Ends the input; the helper must exit 0 with the sandbox byte-exact. Returns the sink's summary. */
async function finish(helper: PipedProcess, logFilename: string, input: Buffer): Promise<Diagnostic> {
  await helper.end();
  const exit = await helper.exited;
  expect(exit.code, helper.stderr()).toBe(0);
  expect(readFileSync(logFilename).equals(input)).toBe(true);
  const summary = helper.diagnostics().find((d) => d.msg === 'sink summary' && d.sink === 'fwd');
  expectSummaryAddsUp(summary, helper.written());
  return summary!;
}

/** The numbers of the `label` lines received, in arrival order (resent ones again). */
const numbers = (fluent: FluentReceiver, label: string): number[] =>
  fluent
    .logs()
    .filter((log) => log.startsWith(`${label} `))
    .map((log) => Number(log.split(' ')[1]));

/** Every line 0..total-1 arrived, and in order: the first arrival of each comes after the first of the one before. */
function expectAllInOrder(received: number[], total: number): void {
  const seen = new Set<number>();
  const firsts = received.filter((n) => !seen.has(n) && seen.add(n));
  expect(firsts.length).toBe(total);
  expect(firsts.every((n, i) => n === i)).toBe(true);
}

const waitForLines = (fluent: FluentReceiver, label: string, total: number, timeoutMs = 15_000): Promise<unknown> =>
  waitFor(() => new Set(numbers(fluent, label)).size >= total, { timeoutMs, what: `${total} lines` });

describe('fluent sink in the helper', () => {
  it('tcp: PackedForward records carry the line, Docker fields and our ids; every line once, in order; acks counted', async () => {
    const fluent = await startReceiver();
    const { helper, logFilename } = await startHelper(fluent);
    const total = 20_000;
    const special = Buffer.concat([
      Buffer.from('crlf line\r\n'),
      Buffer.from([...Buffer.from('bad '), 0xc3, 0x28, 0x0a]),
      Buffer.from(`long ${'L'.repeat(2100)}\n`),
    ]);
    const input = Buffer.concat([special, numberedLines(total, 100, 'tcp'), Buffer.from('last, no newline')]);
    const started = Date.now() / 1000;
    await writeAll(helper, input);
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: total + 4, linesSent: total + 4, linesDropped: 0, bufferedLines: 0, reconnects: 0 });

    expectAllInOrder(numbers(fluent, 'tcp'), total);
    expect(fluent.logs().length).toBe(total + 6);
    const messages = fluent.messages;
    const chunks = messages.map((m) => m.option.chunk);
    expect(new Set(chunks).size).toBe(messages.length);
    for (const message of messages) {
      expect(message.tag).toBe('mesos.F1');
      expect(message.binary).toBe(true);
      expect(message.option.size).toBe(message.entries.length);
      expect(message.option.chunk).toMatch(/^[A-Za-z0-9+/]{22}==$/);
      expect(message.option.compressed).toBeUndefined();
    }
    const entries = messages.flatMap((m) => m.entries);
    const ids = { source: 'stdout', hostname: hostname(), agent_id: 'S1', framework_id: 'F1', executor_id: 'E1', container_id: 'C1' };
    const long = `long ${'L'.repeat(2100)}`;
    expect(entries.slice(0, 5).map((e) => e.record)).toEqual([
      { log: 'crlf line', ...ids },
      { log: 'bad \ufffd(', ...ids },
      { log: long.slice(0, 1024), partial_message: 'true', ...ids },
      { log: long.slice(1024, 2048), partial_message: 'true', ...ids },
      { log: long.slice(2048), ...ids },
    ]);
    expect(entries.at(-1)!.record).toEqual({ log: 'last, no newline', partial_message: 'true', ...ids });
    for (const { time } of [entries[0], entries.at(-1)!]) {
      expect(typeof time).toBe('object');
      const { seconds, nanoseconds } = time as { seconds: number; nanoseconds: number };
      expect(seconds + nanoseconds / 1e9).toBeGreaterThanOrEqual(Math.floor(started));
      expect(seconds + nanoseconds / 1e9).toBeLessThanOrEqual(Date.now() / 1000);
      expect(nanoseconds).toBeLessThan(1e9);
    }
  });

  it('compression gzip: CompressedPackedForward decodes; the tag comes from its template', async () => {
    const fluent = await startReceiver();
    const { helper, logFilename } = await startHelper(fluent, { compression: 'gzip', tag: 'app.{stream}.{executor_id}.{task_id}' }, 'stderr');
    const total = 5000;
    const input = numberedLines(total, 80, 'gz');
    await writeAll(helper, input);
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: total, linesSent: total, linesDropped: 0 });
    expectAllInOrder(numbers(fluent, 'gz'), total);
    for (const message of fluent.messages) {
      expect(message.option.compressed).toBe('gzip');
      expect(message.binary).toBe(true);
      // task_id is unknown without enrichment: `_`.
      expect(message.tag).toBe('app.stderr.E1._');
      expect(message.entries.every((entry) => entry.record.source === 'stderr')).toBe(true);
    }
  });

  it('an ack withheld: its lines do not count as sent; after a reset the chunk is resent with the same id', async () => {
    const fluent = await startReceiver();
    fluent.ackPolicy = (message) => (message.connection === 1 ? 'withhold' : 'ack');
    const { helper, logFilename } = await startHelper(fluent);
    const total = 3000;
    const input = numberedLines(total, 100, 'held');
    await writeAll(helper, input);
    await waitFor(() => fluent.messages.length > 0, { what: 'the first message' });
    await sleep(300);
    // One batch in flight: nothing more comes until its ack.
    const withheld = fluent.messages.filter((m) => m.connection === 1);
    expect(withheld.length).toBe(1);
    fluent.resetConnections();
    await waitForLines(fluent, 'held', total);
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: total, linesSent: total, linesDropped: 0, bufferedLines: 0 });
    expect(summary.reconnects).toBeGreaterThanOrEqual(1);
    const resent = fluent.messages.find((m) => m.connection > 1 && m.option.chunk === withheld[0].option.chunk);
    expect(resent?.entries).toEqual(withheld[0].entries);
    expectAllInOrder(numbers(fluent, 'held'), total);
  });

  it('acks never come: the lines arrive but none counts as sent; exit within the shutdown timeout', async () => {
    const fluent = await startReceiver();
    fluent.ackPolicy = () => 'withhold';
    const { helper, logFilename } = await startHelper(fluent);
    const input = numberedLines(500, 80, 'unacked');
    await writeAll(helper, input);
    await waitForLines(fluent, 'unacked', 500);
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: 500, linesSent: 0, bufferedLines: 500, state: 'down' });
  });

  it('acks later than ack_timeout_ms: the connection is dropped and the chunks resent; delayed ones within it are fine', async () => {
    const fluent = await startReceiver();
    fluent.ackPolicy = (_message, index) => ({ delayMs: index < 2 ? 1500 : 50 });
    const { helper, logFilename } = await startHelper(fluent, { ack_timeout_ms: 400 });
    const total = 8000;
    const input = numberedLines(total, 100, 'late');
    await writeAll(helper, input);
    await waitForLines(fluent, 'late', total);
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: total, linesSent: total, linesDropped: 0, bufferedLines: 0 });
    expect(summary.reconnects).toBeGreaterThanOrEqual(1);
    const chunks = fluent.messages.map((m) => m.option.chunk);
    expect(chunks.filter((chunk, i) => chunks.indexOf(chunk) !== i).length).toBeGreaterThanOrEqual(1);
    expect(helper.stderr()).toMatch(/no ack from tcp:\/\/127\.0\.0\.1:\d+ for chunk \S+ within 400 ms/);
    expectAllInOrder(numbers(fluent, 'late'), total);
  });

  it('connections reset mid-message: what was not acknowledged is resent; every line, in order', async () => {
    const fluent = await startReceiver();
    // Two connections in a row are reset once each has read 150 KB (of 2 MB).
    fluent.resetAfterBytes = 150_000;
    fluent.resetTimes = 2;
    const { helper, logFilename } = await startHelper(fluent);
    const total = 20_000;
    const input = numberedLines(total, 100, 'reset');
    await writeAll(helper, input);
    await waitForLines(fluent, 'reset', total);
    const summary = await finish(helper, logFilename, input);
    expect(fluent.resets).toBe(2);
    expect(summary).toMatchObject({ linesIn: total, linesSent: total, linesDropped: 0, bufferedLines: 0 });
    expect(summary.reconnects).toBeGreaterThanOrEqual(2);
    expectAllInOrder(numbers(fluent, 'reset'), total);
  });

  it('receiver refusing connections for a second: lines wait, then all arrive', async () => {
    const fluent = await startReceiver({ listen: false });
    const { helper, logFilename } = await startHelper(fluent);
    const total = 4000;
    const input = numberedLines(total, 100, 'refused');
    await writeAll(helper, input);
    await sleep(1000);
    await fluent.start();
    await waitForLines(fluent, 'refused', total);
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: total, linesSent: total, linesDropped: 0 });
    expect(summary.failedSends).toBeGreaterThan(0);
    expect(helper.stderr()).toMatch(/ECONNREFUSED/);
    expectAllInOrder(numbers(fluent, 'refused'), total);
  });

  it('shared-key handshake with a user, over TLS: delivered', async () => {
    const user = { username: 'agent', password: 's3cret' };
    const fluent = await startReceiver({ tls: true, security: { sharedKey: 'k3y', user } });
    const { helper, logFilename } = await startHelper(fluent, {
      transport: 'tls',
      tls: { ca_file: fluent.options.certs!.ca },
      security: { shared_key: 'k3y', self_hostname: 'agent-7', ...user },
    });
    const total = 3000;
    const input = numberedLines(total, 100, 'tls');
    await writeAll(helper, input);
    await waitForLines(fluent, 'tls', total);
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: total, linesSent: total, linesDropped: 0 });
    expect(fluent.handshakes).toEqual(['ok']);
    expectAllInOrder(numbers(fluent, 'tls'), total);
  });

  it.each([
    ['the client key is wrong', { sharedKey: 'right' }, { shared_key: 'wrong' }, /the server refused the handshake: shared_key mismatch/],
    ['the server proves another key', { sharedKey: 'wrong', wrongServerDigest: true }, { shared_key: 'wrong' }, /PONG digest does not match security\.shared_key/],
    ['the server asks for one, the sink has no key', { sharedKey: 'k3y' }, undefined, /asks for the shared-key handshake \(it sent HELO\): set security\.shared_key/],
  ])('handshake fails (%s): a clear logged error, nothing counted sent', async (_case, security, sinkSecurity, message) => {
    const fluent = await startReceiver({ security });
    const { helper, logFilename } = await startHelper(fluent, sinkSecurity === undefined ? {} : { security: sinkSecurity });
    const input = numberedLines(200, 80, 'denied');
    await writeAll(helper, input);
    await waitFor(() => message.test(helper.stderr()), { what: 'the handshake error' });
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: 200, linesSent: 0, bufferedLines: 200, state: 'down' });
    expect(summary.lastError).toMatch(message);
    expect(numbers(fluent, 'denied')).toEqual([]);
  });

  it('tls: a server certificate the CA file does not vouch for: nothing is sent, the error names the certificate', async () => {
    const fluent = await startReceiver({ tls: true });
    const { helper, logFilename } = await startHelper(fluent, { transport: 'tls', tls: { ca_file: fluent.options.certs!.otherCa } });
    const input = numberedLines(200, 80, 'untrusted');
    await writeAll(helper, input);
    await waitFor(() => /certificate/i.test(helper.stderr()), { what: 'the certificate error' });
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: 200, linesSent: 0, bufferedLines: 200, state: 'down' });
    expect(summary.lastError).toMatch(/certificate/i);
    expect(fluent.messages).toEqual([]);
  });

  it('require_ack: false: no chunk ids, lines count as sent once written', async () => {
    const fluent = await startReceiver();
    fluent.ackPolicy = () => {
      throw new Error('no chunk expected');
    };
    const { helper, logFilename } = await startHelper(fluent, { require_ack: false });
    const total = 5000;
    const input = numberedLines(total, 100, 'noack');
    await writeAll(helper, input);
    await waitForLines(fluent, 'noack', total);
    const summary = await finish(helper, logFilename, input);
    expect(summary).toMatchObject({ linesIn: total, linesSent: total, linesDropped: 0 });
    expect(fluent.messages.every((m: ForwardMessage) => m.option.chunk === undefined)).toBe(true);
    expectAllInOrder(numbers(fluent, 'noack'), total);
  });

  it.each([1, 2, 3])('random receiver outages (seed %i): every line arrives or is counted dropped, first arrivals in order', async (seed) => {
    const fluent = await startReceiver();
    // 4 MB: inside the 8 MB buffer, so no outage may cost a line.
    const plan = { seed, lines: 40_000, lineBytes: 100, label: 'outage', maxPauseMs: 20, ...OUTAGES };
    const helper = await startHelperWithSink({ type: 'fluent', port: fluent.port });
    const run = await streamWithOutages(helper, fluent, plan);
    const summary = await endAndSummarize(helper);
    expectEveryLineAccounted(summary, fluent.received(), run, plan.lines);
    expect(summary.linesDropped).toBe(0);
    expectAllInOrder(numbers(fluent, 'outage'), plan.lines);
  });
});

describe('fluent sink shared by the daemon', () => {
  it("stdout and stderr of 4 tasks into one sink, a tag per stream: one message per tag, each stream's lines once and in order", async () => {
    const fluent = await startReceiver();
    const work = makeSandbox().dir;
    const configFile = join(work, 'config.yaml');
    const sinks = { fwd: { type: 'fluent', port: fluent.port, tag: 'mesos.{executor_id}.{stream}' } };
    writeFileSync(configFile, JSON.stringify({ agent: { enrich: false }, shutdown_timeout_ms: SHUTDOWN_MS, sinks }));
    const daemon = makeDaemon({ LOG_SPLITTER_CONFIG: configFile });
    await daemon.start();
    const LINES = 3000;
    const streams = [0, 1, 2, 3].flatMap((t) => (['stdout', 'stderr'] as const).map((stream) => ({ t, stream, label: `t${t}${stream}` })));
    const helpers = await Promise.all(
      streams.map(({ t, stream }) => {
        const logFilename = join(work, `slaves/S1/frameworks/F1/executors/E${t}/runs/C${t}`, stream);
        mkdirSync(dirname(logFilename), { recursive: true });
        return spawnLogger({ log_filename: logFilename, max_size: '64MB' }, { env: daemon.shimEnv('daemon') });
      }),
    );
    // Interleaved 64 KiB writes, as concurrent tasks write.
    const inputs = streams.map(({ label }) => numberedLines(LINES, 100, label));
    for (let at = 0; at < LINES * 100; at += WRITE_BYTES) {
      await Promise.all(helpers.map((helper, k) => helper.write(inputs[k].subarray(at, at + WRITE_BYTES))));
    }
    await Promise.all(helpers.map((helper) => helper.end()));
    for (const helper of helpers) expect((await helper.exited).code, helper.stderr()).toBe(0);
    await waitFor(() => streams.every(({ label }) => new Set(numbers(fluent, label)).size >= LINES), {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: 'every line of every stream',
    });
    for (const { t, stream, label } of streams) {
      expect(numbers(fluent, label), label).toEqual(Array.from({ length: LINES }, (_, i) => i));
      const mine = fluent.messages.filter((m) => m.entries.some((e) => String(e.record.log).startsWith(`${label} `)));
      expect(mine.every((m) => m.tag === `mesos.E${t}.${stream}`)).toBe(true);
      expect(mine.flatMap((m) => m.entries).every((e) => e.record.executor_id === `E${t}` && e.record.source === stream)).toBe(true);
    }
  }, 120_000);
});
