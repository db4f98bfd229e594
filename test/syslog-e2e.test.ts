// End to end: the built helper, started as the agent starts it, tees a real pipe into the sandbox and a real rsyslogd.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { startStalledPeer, type StalledPeer } from './helpers/stalled-peer.js';
import { createServer, type AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedLines } from './helpers/data.js';
import { streamKeepingThenChanging } from './helpers/reload.js';
import { rsyslogForFile, type SyslogTransport } from './helpers/rsyslog.js';
import { makeSandbox } from './helpers/sandbox.js';
import { agentEnv } from './helpers/env.js';
import { expectSummaryAddsUp, spawnLogger, type Diagnostic, type Exit, type PipedProcess } from './helpers/spawn.js';
import { sleep, waitFor } from './helpers/wait.js';

const SHUTDOWN_MS = 1000;

const rsyslog = rsyslogForFile();

/** A Mesos sandbox path (so the ids come from it) and a config file naming the sinks. */
function setup(stream: 'stdout' | 'stderr', sinks: Record<string, unknown>) {
  const work = makeSandbox().dir;
  const logFilename = join(work, 'slaves/S1/frameworks/F1/executors/E1/runs/C1', stream);
  mkdirSync(dirname(logFilename), { recursive: true });
  const configFile = join(work, 'config.yaml');
  // JSON is YAML; enrichment is off so every line carries the same, path-derived metadata.
  writeFileSync(
    configFile,
    JSON.stringify({ agent: { enrich: false }, lines: { max_line_bytes: '1KB' }, shutdown_timeout_ms: SHUTDOWN_MS, sinks }),
  );
  return { logFilename, configFile };
}

/** The helper as the agent starts it; max_size is above every input here, so the sandbox is one file. */
const start = (logFilename: string, configFile: string): Promise<PipedProcess> =>
  spawnLogger({ log_filename: logFilename, max_size: '64MB' }, { env: agentEnv({ LOG_SPLITTER_CONFIG: configFile }) });

/** Ends the input: the helper must exit 0 with the sandbox file byte-exact. */
async function endExact(helper: PipedProcess, logFilename: string, input: Buffer): Promise<Exit> {
  await helper.end();
  const exit = await helper.exited;
  expect(exit.code, helper.stderr()).toBe(0);
  expect(readFileSync(logFilename).equals(input)).toBe(true);
  return exit;
}

function summaries(helper: PipedProcess): Map<string, Diagnostic> {
  return new Map(helper.diagnostics().filter((d) => d.msg === 'sink summary').map((d) => [d.sink as string, d]));
}

/** The body of each received message (after the structured data), for the lines that start with `prefix`. */
const bodies = (transport: SyslogTransport, prefix: string): string[] =>
  rsyslog()
    .messages(transport)
    .map((m) => m.slice(m.indexOf('] ') + 2))
    .filter((body) => body.startsWith(prefix));

/** One syslog sink of `transport` to the test's rsyslogd, named after the transport. */
const sinkTo = (transport: SyslogTransport): Record<string, Record<string, unknown>> => ({
  [transport]: {
    type: 'syslog',
    transport,
    port: rsyslog().ports[transport],
    ...(transport === 'tls' && {
      tls: { ca_file: rsyslog().certs.ca, cert_file: rsyslog().certs.clientCert, key_file: rsyslog().certs.clientKey },
    }),
  },
});

const SD = (stream: string, partial = ''): string =>
  `[mesos@32473 agent_id="S1" framework_id="F1" executor_id="E1" container_id="C1" stream="${stream}"${partial}]`;

describe('syslog sink in the helper', () => {
  it('tees to TCP, TLS and UDP with exact RFC 5424 bytes while the sandbox stays byte-exact', async () => {
    const tag = `tee-${Date.now()}`;
    const { logFilename, configFile } = setup('stderr', {
      tcp: { type: 'syslog', port: rsyslog().ports.tcp },
      udp: { type: 'syslog', transport: 'udp', port: rsyslog().ports.udp },
      tls: {
        type: 'syslog',
        transport: 'tls',
        port: rsyslog().ports.tls,
        tls: { ca_file: rsyslog().certs.ca, cert_file: rsyslog().certs.clientCert, key_file: rsyslog().certs.clientKey },
      },
    });
    const input = Buffer.concat([
      Buffer.from(`${tag} plain\n`),
      Buffer.from(`${tag} crlf\r\n`),
      Buffer.from([...Buffer.from(`${tag} bad `), 0xc3, 0x28, 0x0a]),
      Buffer.from(`${tag} long ${'L'.repeat(2100)}\n`),
      Buffer.from(`${tag} last, no newline`),
    ]);
    const helper = await start(logFilename, configFile);
    await helper.write(input);
    await endExact(helper, logFilename, input);

    const long = `${tag} long ${'L'.repeat(2100)}`;
    const expectedBodies = [
      [`${tag} plain`, ''],
      [`${tag} crlf`, ''],
      [`${tag} bad \ufffd(`, ''],
      [long.slice(0, 1024), ' partial="true"'],
      [long.slice(1024, 2048), ' partial="true"'],
      [long.slice(2048), ''],
      [`${tag} last, no newline`, ' partial="true"'],
    ];
    const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
    for (const transport of ['tcp', 'udp', 'tls'] as const) {
      const got = await waitFor(
        () => {
          const messages = rsyslog().messages(transport).filter((m) => m.includes(`] ${tag}`) || m.includes(`] LLL`));
          return messages.length >= expectedBodies.length && messages;
        },
        { what: `${transport} messages` },
      );
      for (const message of got) expect(message.split(' ')[1]).toMatch(stamp);
      expect(got.map((m) => m.replace(/^(\S+ )\S+ /, '$1'))).toEqual(
        expectedBodies.map(([body, partial]) => `<11>1 ${hostname()} E1 - stderr ${SD('stderr', partial)} ${body}`),
      );
      const summary = summaries(helper).get(transport);
      // 7 messages, 5 lines: the long line went as three pieces.
      expect(summary).toMatchObject({ type: 'syslog', linesIn: 5, linesSent: 5, linesDropped: 0, bufferedLines: 0 });
      expectSummaryAddsUp(summary, helper.written());
    }
  });

  it.each(['tcp', 'tls'] as const)('%s: rsyslogd down at start, then started: lines wait and arrive; exit 0', async (transport) => {
    await rsyslog().stop();
    const { logFilename, configFile } = setup('stdout', sinkTo(transport));
    const input = numberedLines(500, 64, `late-${transport}`);
    const helper = await start(logFilename, configFile);
    await helper.write(input);
    await sleep(400);
    await rsyslog().start();
    await waitFor(() => bodies(transport, `late-${transport} `).length >= 500, { timeoutMs: 10_000, what: '500 lines' });
    await endExact(helper, logFilename, input);
    expect(new Set(bodies(transport, `late-${transport} `)).size).toBe(500);
    const summary = summaries(helper).get(transport);
    expect(summary).toMatchObject({ linesIn: 500, linesSent: 500, linesDropped: 0 });
    expect(summary!.failedSends).toBeGreaterThan(0);
    expectSummaryAddsUp(summary, helper.written());
  });

  it('rsyslogd never up: exit 0 within the shutdown timeout, undelivered lines counted as buffered', async () => {
    await rsyslog().stop();
    try {
      const { logFilename, configFile } = setup('stdout', { tcp: { type: 'syslog', port: rsyslog().ports.tcp } });
      const input = numberedLines(300, 50, 'never');
      const helper = await start(logFilename, configFile);
      await helper.write(input);
      const exit = await endExact(helper, logFilename, input);
      expect(exit.afterEndMs).toBeLessThan(SHUTDOWN_MS + 1500);
      const summary = summaries(helper).get('tcp');
      expect(summary).toMatchObject({ linesIn: 300, linesSent: 0, bufferedLines: 300, state: 'down' });
      expect(summary!.lastError).toMatch(/ECONNREFUSED/);
      expectSummaryAddsUp(summary, helper.written());
    } finally {
      await rsyslog().start();
    }
  });

  it.each(['tcp', 'tls'] as const)('%s: rsyslogd hung and killed mid-stream, then restarted: every line at least once, sandbox exact', async (transport) => {
    const { logFilename, configFile } = setup('stdout', sinkTo(transport));
    const total = 4000;
    const label = `mid-${transport}`;
    const input = numberedLines(total, 80, label);
    const helper = await start(logFilename, configFile);
    const writeLines = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i += 100) {
        await helper.write(input.subarray(i * 80, Math.min(to, i + 100) * 80));
        await sleep(5);
      }
    };
    await writeLines(0, 1500);
    // Connected first (a TLS handshake takes a while): the fault must cut a connection, not an attempt.
    await waitFor(() => bodies(transport, `${label} `).length > 0, { what: 'the first lines' });
    rsyslog().hang();
    await writeLines(1500, 2000);
    await sleep(100);
    await rsyslog().stop('SIGKILL');
    await writeLines(2000, 2500);
    await rsyslog().start();
    await writeLines(2500, total);
    await waitFor(() => new Set(bodies(transport, `${label} `)).size >= total, { timeoutMs: 15_000, what: 'every line' });
    await endExact(helper, logFilename, input);
    const received = new Set(bodies(transport, `${label} `).map((body) => body.split(' ')[1]));
    expect(Array.from({ length: total }, (_, i) => String(i)).filter((i) => !received.has(i))).toEqual([]);
    const summary = summaries(helper).get(transport);
    expect(summary).toMatchObject({ linesIn: total, linesSent: total, linesDropped: 0, bufferedLines: 0 });
    expect(summary!.reconnects).toBeGreaterThanOrEqual(1);
    expectSummaryAddsUp(summary, helper.written());
  });

  it('udp: rsyslogd down at start, then killed and restarted mid-stream: no crash, exit 0, sandbox exact', async () => {
    // UDP cannot know what arrived: datagrams sent while rsyslogd is down are lost, and count as sent.
    await rsyslog().stop();
    const { logFilename, configFile } = setup('stdout', sinkTo('udp'));
    const input = numberedLines(4000, 64, 'udp-fault');
    const helper = await start(logFilename, configFile);
    const part = (i: number): Buffer => input.subarray(i * 64_000, (i + 1) * 64_000);
    await helper.write(part(0));
    await sleep(200);
    await rsyslog().start();
    await helper.write(part(1));
    await waitFor(() => bodies('udp', 'udp-fault 1').length > 0, { what: 'datagrams once rsyslogd is up' });
    await rsyslog().stop('SIGKILL');
    await helper.write(part(2));
    await sleep(200);
    await rsyslog().start();
    for (let i = 3000; i < 4000; i += 100) {
      await helper.write(input.subarray(i * 64, (i + 100) * 64));
      await sleep(20);
    }
    await endExact(helper, logFilename, input);
    // The last lines were sent after the restart: they arrive.
    await waitFor(() => bodies('udp', 'udp-fault 3999 ').length === 1, { what: 'the last line' });
    const summary = summaries(helper).get('udp');
    expect(summary).toMatchObject({ linesIn: 4000, linesSent: 4000, linesDropped: 0, bufferedLines: 0 });
    expectSummaryAddsUp(summary, helper.written());
  });

  it.each(['tcp', 'tls'] as const)('%s: a peer that answers with garbage and resets the connection: no crash, exit 0, sandbox exact', async (transport) => {
    const server = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.write(Buffer.from('\x16\x03\x01garbage\r\n\x00\xff not syslog, not TLS\n', 'latin1'));
      setTimeout(() => socket.resetAndDestroy(), 20);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const sink = { ...sinkTo(transport)[transport], port };
      const { logFilename, configFile } = setup('stdout', { [transport]: sink });
      const input = numberedLines(2000, 64, 'garbage');
      const helper = await start(logFilename, configFile);
      for (let i = 0; i < 4; i++) {
        await helper.write(input.subarray(i * 32_000, (i + 1) * 32_000));
        await sleep(100);
      }
      await endExact(helper, logFilename, input);
      const summary = summaries(helper).get(transport)!;
      // TCP: the kernel took each batch before the reset, so it counts as sent, and the reset as a lost connection.
      // TLS: no handshake ever completes, so every send fails.
      if (transport === 'tcp') {
        expect(summary.reconnects).toBeGreaterThan(0);
      } else {
        expect(summary).toMatchObject({ linesSent: 0, reconnects: 0, state: 'down' });
        expect(summary.failedSends).toBeGreaterThan(0);
      }
      expectSummaryAddsUp(summary, helper.written());
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it.each(['tcp', 'tls'] as const)('%s: SIGHUPs mid-stream keeping the sink (every line once, in order), then changing it (every line at least once)', async (transport) => {
    const label = `hup-${transport}`;
    const { logFilename, configFile } = setup('stdout', sinkTo(transport));
    // A changed sink's retired generation delivers its backlog for shutdown_timeout_ms, not handing it to its
    // successor (docs/operations.md, Reloading the config): give it time on a machine the rest of the suite slows down.
    const config = JSON.stringify({ ...JSON.parse(readFileSync(configFile, 'utf8')), shutdown_timeout_ms: 15_000 });
    writeFileSync(configFile, config);
    const changed = JSON.stringify({ ...JSON.parse(config), sinks: { [transport]: { ...sinkTo(transport)[transport], app_name: 'changed' } } });
    const total = 100_000;
    const input = numberedLines(total, 50, label);
    const helper = await start(logFilename, configFile);
    const reloads = await streamKeepingThenChanging(helper, logFilename, input, (total / 2) * 50, configFile, config, changed);
    expect(reloads).toBeGreaterThan(20);
    await waitFor(() => new Set(bodies(transport, `${label} `)).size >= total, { timeoutMs: 15_000, what: 'every line' });
    await endExact(helper, logFilename, input);
    const numbers = bodies(transport, `${label} `).map((body) => Number(body.split(' ')[1]));
    // The first half went through one unchanged sink: exactly once, in order. (Once the sink changes, the retired
    // generation may still be delivering the end of it while the new one sends later lines: they interleave.)
    expect(numbers.filter((i) => i < total / 2)).toEqual(Array.from({ length: total / 2 }, (_, i) => i));
    expect(new Set(numbers).size).toBe(total);
    const generations = helper.diagnostics().filter((d) => d.msg === 'sink summary');
    expect(generations.length).toBeGreaterThan(1);
    for (const summary of generations) expectSummaryAddsUp(summary);
    expect(generations.reduce((sum, s) => sum + (s.linesIn as number), 0)).toBe(total);
    expect(generations.every((s) => s.linesDropped === 0)).toBe(true);
  });

  describe('a TCP peer that accepts and never reads', () => {
    let peer: StalledPeer;
    beforeAll(async () => (peer = await startStalledPeer()));
    afterAll(() => peer.close());

    it('the sandbox is byte-exact, drops are counted, nothing unacknowledged counts as sent, exit 0 promptly', async () => {
      const { port } = peer;
      const { logFilename, configFile } = setup('stdout', {
        stuck: { type: 'syslog', port, buffer: { max_bytes: '4MB', when_full: 'drop_newest' } },
      });
      // 24 MiB: well past what the peer's socket buffer takes plus the sink's 4 MiB (a 1 MB window of it).
      const input = numberedLines(200_000, 128, 'stuck');
      const helper = await start(logFilename, configFile);
      for (let at = 0; at < input.length; at += 1 << 20) await helper.write(input.subarray(at, at + (1 << 20)));
      const exit = await endExact(helper, logFilename, input);
      expect(exit.afterEndMs).toBeLessThan(SHUTDOWN_MS + 1500);
      const summary = summaries(helper).get('stuck') as Record<string, unknown>;
      expect(summary).toMatchObject({ linesIn: 200_000 });
      const { buffer_full: full, replay_overflow: unacknowledged } = summary.droppedBy as Record<string, { lines: number; bytes: number }>;
      expect(full.lines).toBeGreaterThan(0);
      // The window full of frames the peer never acknowledged: dropped at the deadline, never counted sent.
      expect(unacknowledged.lines).toBeGreaterThan(0);
      expect([summary.linesDropped, summary.bytesDropped]).toEqual([full.lines + unacknowledged.lines, full.bytes + unacknowledged.bytes]);
      // The next batch waited for room in the window: still buffered, not sent, and reported as pending.
      expect(summary).toMatchObject({ state: 'down', lastError: 'a send was still pending at the stop deadline' });
      expect(summary.bufferedLines).toBeGreaterThan(0);
      expectSummaryAddsUp(summary, helper.written());
    });
  });
});
