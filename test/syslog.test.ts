// The syslog sink driven directly against a real rsyslogd (TCP, TLS, UDP), plus its config validation.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStalledPeer, type StalledPeer } from './helpers/stalled-peer.js';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigReader } from '../src/config-reader.js';
import type { WhenFull } from '../src/lines/line-buffer.js';
import type { StreamMetadata } from '../src/mesos/metadata.js';
import type { Sink } from '../src/sinks/sink.js';
import { syslogSink } from '../src/sinks/syslog/syslog.js';
import { expectCountersAddUp, feed, streamBytes } from './helpers/feed.js';
import { freeTcpPort, rsyslogForFile, type SyslogTransport } from './helpers/rsyslog.js';
import { withOneStream, type OneStream } from './helpers/one-stream.js';
import { SyslogReceiver } from './helpers/syslog-receiver.js';
import { sleep, waitFor } from './helpers/wait.js';

const TIME = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
const STAMP = '2024-01-02T03:04:05.678Z';
/** The marker a cut line ends with is sized for the whole line's length: ` [truncated: 800 of 800 bytes kept]`. */
const MARKER_ROOM = ' [truncated: 800 of 800 bytes kept]'.length;

/** Ids holding every character SD-PARAM values must escape. */
const META: StreamMetadata = {
  stream: 'stdout',
  hostname: 'agent-7.example',
  sandbox: '/var/lib/mesos/sandbox',
  agent_id: 'A1-S0',
  framework_id: 'F"1',
  executor_id: 'ex\\1',
  container_id: 'c]1.c2',
  task_id: 'web.1',
  executor_labels: {},
  task_labels: {},
};
const STDERR_META: StreamMetadata = { ...META, stream: 'stderr' };
const SD = (stream: string, partial = ''): string =>
  `[mesos@32473 agent_id="A1-S0" framework_id="F\\"1" executor_id="ex\\\\1" container_id="c\\]1.c2" task_id="web.1" stream="${stream}"${partial}]`;

/** Lines that arrive together, from one writer. */
interface Arrival {
  lines: (string | Buffer)[];
  meta?: StreamMetadata;
  /** The stream ends without a newline after the last line. */
  unterminated?: boolean;
}

const numbered = (label: string, from: number, to: number): string[] =>
  Array.from({ length: to - from }, (_, i) => `${label} ${from + i}`);

interface TestSink {
  sink: Sink & OneStream;
  logs: Record<string, unknown>[];
}

function makeSink(config: Record<string, unknown>, buffer: { maxBytes?: number; whenFull?: WhenFull } = {}): TestSink {
  const reader = new ConfigReader('sinks.syslog', config);
  const options = syslogSink.parse(reader);
  reader.done();
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const sink = withOneStream(
    syslogSink.create(options, {
      name: 'syslog',
      buffer: { maxBytes: buffer.maxBytes ?? 8 << 20, whenFull: buffer.whenFull ?? 'drop_oldest' },
      log,
      meta: META,
    }),
  );
  sink.start();
  return { sink, logs };
}

const rsyslog = rsyslogForFile();

/**
 * Streams `arrivals` (stamped TIME) through a fresh sink, ends the stream, and returns what rsyslogd wrote for them,
 * raw and parsed. Ending the stream is what sends an unterminated last line, flagged partial.
 */
async function roundTrip(transport: SyslogTransport, config: Record<string, unknown>, arrivals: Arrival[]) {
  const before = rsyslog().messages(transport).length;
  const { sink } = makeSink({ transport, port: rsyslog().ports[transport], ...config });
  for (const { lines, meta = META, unterminated } of arrivals) feed(sink, meta, lines, { time: TIME, unterminated });
  await sink.stop(Date.now() + 2000);
  const count = arrivals.reduce((n, arrival) => n + arrival.lines.length, 0);
  await rsyslog().waitForMessages(transport, before + count);
  await waitFor(() => rsyslog().parsed(transport).length >= before + count, { what: 'parsed messages' });
  const bytes = arrivals.reduce((n, arrival) => n + streamBytes(arrival.lines, arrival.unterminated).length, 0);
  expect(sink.stats).toMatchObject({ linesIn: count, linesSent: count, bytesIn: bytes, bytesSent: bytes, linesDropped: 0, failedSends: 0 });
  expectCountersAddUp(sink);
  return { raw: rsyslog().messages(transport).slice(before), parsed: rsyslog().parsed(transport).slice(before) };
}

const TLS_CONFIG = () => ({
  tls: { ca_file: rsyslog().certs.ca, cert_file: rsyslog().certs.clientCert, key_file: rsyslog().certs.clientKey },
});

describe('RFC 5424 bytes as rsyslogd receives them', () => {
  const arrivals: Arrival[] = [
    { lines: ['hello world'] },
    { lines: ['it failed: "quoted" \\ ] [brackets]'], meta: STDERR_META },
    {
      lines: [Buffer.from([0x62, 0x61, 0x64, 0x20, 0xff, 0xfe, 0x20, 0x65, 0x6e, 0x64]), '', 'tab\there, ünïcödé ✓', 'cut here'],
      unterminated: true,
    },
  ];
  const expected = [
    `<14>1 ${STAMP} agent-7.example web.1 - stdout ${SD('stdout')} hello world`,
    `<11>1 ${STAMP} agent-7.example web.1 - stderr ${SD('stderr')} it failed: "quoted" \\ ] [brackets]`,
    `<14>1 ${STAMP} agent-7.example web.1 - stdout ${SD('stdout')} bad \ufffd\ufffd end`,
    `<14>1 ${STAMP} agent-7.example web.1 - stdout ${SD('stdout')} `,
    `<14>1 ${STAMP} agent-7.example web.1 - stdout ${SD('stdout')} tab\there, ünïcödé ✓`,
    `<14>1 ${STAMP} agent-7.example web.1 - stdout ${SD('stdout', ' partial="true"')} cut here`,
  ];

  it('TCP with octet counting: byte for byte, and rsyslogd parses every field', async () => {
    const { raw, parsed } = await roundTrip('tcp', {}, arrivals);
    expect(raw).toEqual(expected);
    expect(parsed[1]).toEqual({
      pri: '11',
      timereported: '2024-01-02T03:04:05.678Z',
      hostname: 'agent-7.example',
      'app-name': 'web.1',
      procid: '-',
      msgid: 'stderr',
      'structured-data': SD('stderr'),
      msg: 'it failed: "quoted" \\ ] [brackets]',
    });
    expect(parsed[5]['structured-data']).toBe(SD('stdout', ' partial="true"'));
  });

  it('TLS, verifying the server against the test CA and presenting a client certificate', async () => {
    const { raw } = await roundTrip('tls', TLS_CONFIG(), arrivals);
    expect(raw).toEqual(expected);
  });

  it('UDP: one datagram per message', async () => {
    const { raw } = await roundTrip('udp', {}, arrivals);
    expect(raw).toEqual(expected);
  });

  it('facility, hostname, app-name, SD-ID, SD params and BOM are configurable', async () => {
    const { raw, parsed } = await roundTrip(
      'tcp',
      {
        facility: 'local3',
        hostname: 'node-9',
        app_name: 'billing',
        sd_id: 'task@18060.1',
        sd_params: ['task_id', 'stream'],
        utf8_bom: true,
      },
      [{ lines: ['with BOM'] }, { lines: ['on stderr'], meta: STDERR_META }],
    );
    expect(raw).toEqual([
      // local3 = 19: 19 * 8 + 6 (info) and 19 * 8 + 3 (err).
      `<158>1 ${STAMP} node-9 billing - stdout [task@18060.1 task_id="web.1" stream="stdout"] \ufeffwith BOM`,
      `<155>1 ${STAMP} node-9 billing - stderr [task@18060.1 task_id="web.1" stream="stderr"] \ufeffon stderr`,
    ]);
    expect(parsed.map((p) => p.pri)).toEqual(['158', '155']);
  });

  it('the task and framework names from agent enrichment are SD params on request', async () => {
    const named: StreamMetadata = { ...META, task_name: 'web "blue"', framework_name: 'marathon' };
    const { raw } = await roundTrip('tcp', { sd_params: ['task_id', 'task_name', 'framework_name'] }, [{ lines: ['named'], meta: named }]);
    expect(raw).toEqual([
      `<14>1 ${STAMP} agent-7.example web.1 - stdout [mesos@32473 task_id="web.1" task_name="web \\"blue\\"" framework_name="marathon"] named`,
    ]);
    // Not by default: the element carries the ids.
    const { raw: plain } = await roundTrip('tcp', {}, [{ lines: ['ids only'], meta: named }]);
    expect(plain).toEqual([`<14>1 ${STAMP} agent-7.example web.1 - stdout ${SD('stdout')} ids only`]);
  });

  it('app-name falls back to the executor id, then mesos-task; header fields keep RFC limits', async () => {
    const longTask = `${'t'.repeat(40)}.0123456789abcdef`;
    const noTask: StreamMetadata = { ...META, task_id: undefined, hostname: 'bad host\u00e9' };
    const noIds: StreamMetadata = { stream: 'stdout', hostname: '', sandbox: '/x', executor_labels: {}, task_labels: {} };
    const { raw } = await roundTrip('tcp', { sd_params: ['task_id'] }, [
      { lines: ['long task id'], meta: { ...META, task_id: longTask } },
      { lines: ['no task'], meta: noTask },
      { lines: ['no ids'], meta: noIds },
    ]);
    expect(raw).toEqual([
      `<14>1 ${STAMP} agent-7.example ${longTask.slice(0, 48)} - stdout [mesos@32473 task_id="${longTask}"] long task id`,
      `<14>1 ${STAMP} bad_host_ ex\\1 - stdout [mesos@32473] no task`,
      `<14>1 ${STAMP} - mesos-task - stdout [mesos@32473] no ids`,
    ]);
  });

  it('UDP cuts a line to max_message_bytes, on a UTF-8 character boundary, with a visible marker', async () => {
    const line = `${'x'.repeat(200)}${'é'.repeat(300)}`;
    const { raw } = await roundTrip('udp', { max_message_bytes: 480 }, [{ lines: [line] }]);
    const header = `<14>1 ${STAMP} agent-7.example web.1 - stdout ${SD('stdout')} `;
    const pairs = Math.floor((480 - Buffer.byteLength(header) - MARKER_ROOM - 200) / 2);
    expect(raw).toEqual([`${header}${'x'.repeat(200)}${'é'.repeat(pairs)} [truncated: ${200 + 2 * pairs} of 800 bytes kept]`]);
    expect(Buffer.byteLength(raw[0])).toBeLessThanOrEqual(480);
  });
});

describe('max_message_bytes over TCP', () => {
  const line = `${'x'.repeat(200)}${'é'.repeat(300)}`;
  const header = `<14>1 ${STAMP} agent-7.example web.1 - stdout ${SD('stdout')} `;

  it('cuts a line of a valid batch on a character boundary', async () => {
    const { raw } = await roundTrip('tcp', { max_message_bytes: 480 }, [{ lines: ['short', line, 'after'] }]);
    const pairs = Math.floor((480 - Buffer.byteLength(header) - MARKER_ROOM - 200) / 2);
    const cut = `${header}${'x'.repeat(200)}${'é'.repeat(pairs)} [truncated: ${200 + 2 * pairs} of 800 bytes kept]`;
    expect(raw).toEqual([`${header}short`, cut, `${header}after`]);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(480);
  });

  it('cuts a line with invalid bytes after replacing them', async () => {
    const invalid = Buffer.concat([Buffer.from([0xff]), Buffer.from(line)]);
    const { raw } = await roundTrip('tcp', { max_message_bytes: 480 }, [{ lines: ['short', invalid, 'after'] }]);
    const pairs = Math.floor((480 - Buffer.byteLength(header) - MARKER_ROOM - 3 - 200) / 2);
    const cut = `${header}\ufffd${'x'.repeat(200)}${'é'.repeat(pairs)} [truncated: ${203 + 2 * pairs} of 803 bytes kept]`;
    expect(raw).toEqual([`${header}short`, cut, `${header}after`]);
  });
});

describe('TLS verification', () => {
  it('refuses a server its CA did not sign, and stops promptly', async () => {
    const before = rsyslog().messages('tls').length;
    const { sink } = makeSink({
      transport: 'tls',
      port: rsyslog().ports.tls,
      tls: { ca_file: rsyslog().certs.otherCa, cert_file: rsyslog().certs.clientCert, key_file: rsyslog().certs.clientKey },
    });
    feed(sink, META, ['must not leave'], { time: TIME });
    await waitFor(() => sink.stats.failedSends >= 1, { what: 'a failed send' });
    expect(sink.status().lastError).toMatch(/certificate/i);
    const started = Date.now();
    await sink.stop(Date.now() + 300);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(sink.stats.linesSent).toBe(0);
    expect(sink.buffered()).toEqual({ lines: 1, bytes: 15 });
    expectCountersAddUp(sink);
    await sleep(100);
    expect(rsyslog().messages('tls').length).toBe(before);
  });

  it('checks the certificate against servername when one is set', async () => {
    const { raw } = await roundTrip('tls', { tls: { ...TLS_CONFIG().tls, servername: 'localhost' } }, [{ lines: ['by name'] }]);
    expect(raw).toEqual([`<14>1 ${STAMP} agent-7.example web.1 - stdout ${SD('stdout')} by name`]);

    const { sink } = makeSink({
      transport: 'tls',
      port: rsyslog().ports.tls,
      tls: { ...TLS_CONFIG().tls, servername: 'other.example' },
    });
    feed(sink, META, ['wrong name'], { time: TIME });
    await waitFor(() => sink.stats.failedSends >= 1, { what: 'a failed send' });
    expect(sink.status().lastError).toMatch(/other\.example/);
    await sink.stop(Date.now() + 100);
    expect(sink.stats.linesSent).toBe(0);
  });

  it('a server that requires a client certificate gets nothing without one, and the sink shows down', async () => {
    const before = rsyslog().messages('tls').length;
    const { sink } = makeSink({ transport: 'tls', port: rsyslog().ports.tls, tls: { ca_file: rsyslog().certs.ca } });
    for (let i = 0; i < 5; i++) {
      feed(sink, META, [`no client cert ${i}`], { time: TIME });
      await sleep(50);
    }
    await waitFor(() => sink.stats.failedSends >= 1, { what: 'a failed send' });
    expect(sink.status()).toMatchObject({ state: 'down', lastError: expect.stringMatching(/ECONNRESET|EPIPE|closed/) });
    await sink.stop(Date.now() + 100);
    // Refused after the client's side of the TLS 1.3 handshake: no batch may count as sent.
    expect(sink.stats.linesSent).toBe(0);
    expectCountersAddUp(sink);
    expect(rsyslog().messages('tls').length).toBe(before);
  });

  it('a key file unreadable for a while (being renewed) fails only those attempts; lines arrive once it is back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'syslog-key-'));
    const key = join(dir, 'client.key');
    copyFileSync(rsyslog().certs.clientKey, key);
    const before = rsyslog().messages('tls').length;
    const { sink } = makeSink({ transport: 'tls', port: rsyslog().ports.tls, tls: { ...TLS_CONFIG().tls, key_file: key } });
    rmSync(key);
    feed(sink, META, ['while renewing'], { time: TIME });
    await waitFor(() => sink.stats.failedSends >= 2, { what: 'two failed sends' });
    expect(sink.status()).toMatchObject({ state: 'down', lastError: expect.stringMatching(/ENOENT.*client\.key/) });
    copyFileSync(rsyslog().certs.clientKey, key);
    const got = await rsyslog().waitForMessages('tls', before + 1);
    expect(got.slice(before)).toEqual([`<14>1 ${STAMP} agent-7.example web.1 - stdout ${SD('stdout')} while renewing`]);
    await sink.stop(Date.now() + 1000);
    expect(sink.stats).toMatchObject({ linesSent: 1, reconnects: 0 });
    rmSync(dir, { recursive: true });
  });

  it('reject_unauthorized: false is the explicit opt-out', async () => {
    const { raw } = await roundTrip(
      'tls',
      {
        tls: {
          ca_file: rsyslog().certs.otherCa,
          cert_file: rsyslog().certs.clientCert,
          key_file: rsyslog().certs.clientKey,
          reject_unauthorized: false,
        },
      },
      [{ lines: ['unverified'] }],
    );
    expect(raw).toEqual([`<14>1 ${STAMP} agent-7.example web.1 - stdout ${SD('stdout')} unverified`]);
  });
});

describe('faults', () => {
  it('UDP with rsyslogd down: datagrams count as sent, nothing is retried, nothing fails', async () => {
    await rsyslog().stop();
    try {
      const { sink } = makeSink({ transport: 'udp', port: rsyslog().ports.udp });
      feed(sink, META, numbered('lost', 0, 50), { time: TIME });
      await waitFor(() => sink.stats.linesSent === 50, { what: '50 datagrams sent' });
      await sink.stop(Date.now() + 1000);
      expect(sink.stats).toMatchObject({ linesSent: 50, failedSends: 0, reconnects: 0 });
      expectCountersAddUp(sink);
    } finally {
      await rsyslog().start();
    }
  });

  it('rsyslogd down at start: lines wait in the buffer and arrive once it is up', async () => {
    await rsyslog().stop();
    const before = rsyslog().messages('tcp').length;
    const { sink } = makeSink({ port: rsyslog().ports.tcp });
    feed(sink, META, numbered('early', 0, 100), { time: TIME });
    await waitFor(() => sink.stats.failedSends >= 2, { what: 'failed sends' });
    expect(sink.status().state).toBe('down');
    await rsyslog().start();
    const got = await rsyslog().waitForMessages('tcp', before + 100);
    expect(got.slice(before).map((m) => m.split('] ')[1])).toEqual(numbered('early', 0, 100));
    await sink.stop(Date.now() + 2000);
    // 10 * 'early N\n' + 90 * 'early NN\n'.
    expect(sink.stats).toMatchObject({ linesIn: 100, linesSent: 100, bytesIn: 890, bytesSent: 890, linesDropped: 0, reconnects: 0 });
    expectCountersAddUp(sink);
  });

  /**
   * Hung, then killed: what rsyslogd had not read yet (the kernel took it, so the send resolved) dies with it. Streams
   * `total` lines at a steady pace and returns which arrived and the sink.
   */
  async function hangKillRestart(config: Record<string, unknown>, total: number) {
    const before = rsyslog().messages('tcp').length;
    const { sink, logs } = makeSink({ port: rsyslog().ports.tcp, ...config });
    let next = 0;
    // 50 lines per arrival, 5 ms apart.
    const stream = async (until: number): Promise<void> => {
      for (; next < until; next += 50) {
        feed(sink, META, numbered('kill', next, Math.min(next + 50, until)));
        await sleep(5);
      }
    };
    await stream(total * 0.4);
    rsyslog().hang();
    await stream(total * 0.5);
    await sleep(100);
    await rsyslog().stop('SIGKILL');
    await stream(total * 0.6);
    await rsyslog().start();
    await stream(total);
    await waitFor(() => sink.stats.linesSent === total, { timeoutMs: 20_000, what: 'every line sent' });
    await sink.stop(Date.now() + 2000);
    // rsyslogd writes a batch once it has it; give the last one a moment.
    await sleep(300);
    const bodies = rsyslog().messages('tcp').slice(before).map((m) => m.split('] ')[1]);
    const received = new Set(bodies);
    const missing = numbered('kill', 0, total).filter((body) => !received.has(body));
    return { sink, logs, bodies, missing };
  }

  it('rsyslogd hung, killed mid-stream and restarted: every line arrives at least once', async () => {
    const total = 5000;
    const { sink, logs, bodies, missing } = await hangKillRestart({}, total);
    expect(missing).toEqual([]);
    // The resent window shows up as duplicates: at least once, not exactly once.
    expect(bodies.length).toBeGreaterThan(total);
    const bytes = streamBytes(numbered('kill', 0, total)).length;
    expect(sink.stats).toMatchObject({ linesIn: total, linesSent: total, bytesIn: bytes, bytesSent: bytes, linesDropped: 0 });
    expect(sink.stats.reconnects).toBeGreaterThanOrEqual(1);
    expect(logs.some((l) => l.msg === 'syslog connection lost; will reconnect and resend the newest frames')).toBe(true);
    expectCountersAddUp(sink);
  });

  it('without the replay window the same fault loses lines (why the window exists)', async () => {
    const { missing } = await hangKillRestart({ replay_max_bytes: 0 }, 5000);
    expect(missing.length).toBeGreaterThan(0);
  });

  /**
   * 100 lines sent and received, then the receiver is killed with all of them in its queue (lost), and the stream
   * has nothing more: only the replay window can still deliver them.
   */
  async function lostAfterTheLastLine(label: string) {
    const receiver = new SyslogReceiver('tcp', await freeTcpPort(), label, undefined, Infinity);
    await receiver.start();
    const { sink, logs } = makeSink({ port: receiver.port });
    feed(sink, META, numbered(label, 0, 100));
    await waitFor(() => receiver.received().length === 100, { what: '100 lines received' });
    await receiver.kill();
    await waitFor(() => logs.some((l) => l.msg === 'syslog connection lost; will reconnect and resend the newest frames'), {
      what: 'the loss noticed',
    });
    expect(receiver.received()).toEqual([]);
    return { receiver, sink, logs, bytes: streamBytes(numbered(label, 0, 100)).length };
  }

  it('a connection lost after the last line: stop() resends the replay window before it closes', async () => {
    const { receiver, sink } = await lostAfterTheLastLine('drained');
    await receiver.start();
    await sink.stop(Date.now() + 5000);
    await receiver.drained();
    expect(receiver.received()).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(sink.stats).toMatchObject({ linesIn: 100, linesSent: 100, linesDropped: 0 });
    await receiver.close();
  });

  it('a replay still owed at the stop deadline counts as replay_overflow, not as sent', async () => {
    const { receiver, sink, logs, bytes } = await lostAfterTheLastLine('owed');
    await sink.stop(Date.now() + 300);
    expect(sink.stats).toMatchObject({
      linesIn: 100,
      linesSent: 0,
      linesDropped: 100,
      droppedBy: { replay_overflow: { lines: 100, bytes } },
    });
    expect(logs.find((l) => String(l.msg).includes('(replay_overflow)'))).toMatchObject({ level: 50, lines: 100, bytes });
    expectCountersAddUp(sink);
    await receiver.close();
  });

  it('a peer that accepts and closes at once gets reconnects with backoff, not a busy loop; stop() stays prompt', async () => {
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      socket.resume();
      socket.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const { sink, logs } = makeSink({ port });
      const started = Date.now();
      for (let i = 0; Date.now() - started < 1600; i++) {
        feed(sink, META, numbered('again', i * 10, i * 10 + 10));
        await sleep(10);
      }
      // Delays of 100, 200, 400, 800 ms after each connection the peer closed: 5 or 6 in 1.6 s, not hundreds.
      expect(connections).toBeGreaterThanOrEqual(3);
      expect(connections).toBeLessThanOrEqual(7);
      const lost = logs.filter((l) => l.msg === 'syslog connection lost; will reconnect and resend the newest frames');
      expect(lost[0]).toMatchObject({ reconnectInMs: 100 });
      const stopping = Date.now();
      await sink.stop(Date.now() + 200);
      expect(Date.now() - stopping).toBeLessThan(1000);
      expectCountersAddUp(sink);
    } finally {
      server.close();
    }
  });

  describe('a TCP peer that accepts and never reads', () => {
    let peer: StalledPeer;
    beforeAll(async () => (peer = await startStalledPeer()));
    afterAll(() => peer.close());

    /** Lets the stalled peers read at last: how many whole octet-counted frames had reached them. */
    async function drainPeers(): Promise<number> {
      let frames = 0;
      for (const socket of peer.sockets) {
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.resume();
        await new Promise((resolve) => socket.once('close', resolve));
        const data = Buffer.concat(chunks);
        for (let at = 0; ; ) {
          const space = data.indexOf(0x20, at);
          if (space < 0) break;
          const end = space + 1 + Number(data.subarray(at, space).toString('latin1'));
          if (end > data.length) break;
          frames++;
          at = end;
        }
      }
      peer.sockets.clear();
      return frames;
    }

    it.each(['drop_oldest', 'drop_newest'] as const)('%s: the buffer fills, drops are counted, stop() is prompt', async (whenFull) => {
      const { sink } = makeSink({ port: peer.port }, { maxBytes: 256 * 1024, whenFull });
      // 50 lines of 1000 bytes per arrival, about a pipe read: the buffer fills arrival by arrival.
      const arrival = Array.from({ length: 50 }, () => Buffer.alloc(1000, 'y'));
      // Far more than the loopback socket buffers and the sink's buffer hold together.
      for (let round = 0; round < 100; round++) {
        for (let i = 0; i < 20; i++) feed(sink, META, arrival);
        await sleep(5);
      }
      expect(sink.stats.droppedBy.buffer_full?.lines).toBeGreaterThan(0);
      expect(sink.stats.droppedBy.buffer_full?.lines).toBe(sink.stats.linesDropped);
      // Whole lines are dropped.
      expect(sink.stats.bytesDropped).toBe(sink.stats.linesDropped * 1001);
      expect(sink.buffered().bytes).toBeLessThanOrEqual(256 * 1024);
      const started = Date.now();
      await sink.stop(Date.now() + 200);
      expect(Date.now() - started).toBeLessThan(1500);
      expect(sink.stats).toMatchObject({ linesIn: 100_000, bytesIn: 100_100_000 });
      // The batch cut short by stop() is not counted as sent: it stays buffered. The peer did not fail it.
      expect(sink.stats.failedSends).toBe(0);
      expect(sink.status()).toMatchObject({ state: 'down', lastError: 'a send was still pending at the stop deadline' });
      expect(sink.buffered().lines).toBeGreaterThan(0);
      expectCountersAddUp(sink);
      // Every line counted as sent was in the peer's socket; the cut batch may have left a few whole frames too.
      const frames = await drainPeers();
      expect(frames).toBeGreaterThanOrEqual(sink.stats.linesSent);
      expect(frames).toBeLessThanOrEqual(sink.stats.linesSent + sink.buffered().lines);
    });
  });
});

describe('config', () => {
  const parse = (config: Record<string, unknown>) => {
    const reader = new ConfigReader('sinks.out', config);
    const options = syslogSink.parse(reader);
    reader.done();
    return options;
  };

  it('normalizes defaults per transport', () => {
    expect(parse({})).toEqual({
      transport: 'tcp',
      host: '127.0.0.1',
      port: 514,
      facility: 'user',
      sd_id: 'mesos@32473',
      sd_params: ['agent_id', 'framework_id', 'executor_id', 'container_id', 'task_id', 'stream'],
      utf8_bom: false,
      max_message_bytes: 0,
      connect_timeout_ms: 5000,
      replay_max_bytes: 1048576,
      replay_max_age_ms: 5000,
    });
    expect(parse({ transport: 'tls' })).toMatchObject({ port: 6514, tls: { reject_unauthorized: true } });
    expect(parse({ transport: 'udp' })).toMatchObject({ port: 514, max_message_bytes: 2048 });
    expect(parse({ transport: 'udp' })).not.toHaveProperty('replay_max_bytes');
  });

  it.each([
    [{ transport: 'relp' }, 'sinks.out.transport: "relp" must be one of tcp, tls, udp'],
    [{ facility: 'local8' }, 'sinks.out.facility: "local8" must be one of'],
    [{ port: 0 }, 'sinks.out.port: 0 must be a whole number from 1 to 65535'],
    [{ app_name: 'a'.repeat(49) }, 'sinks.out.app_name'],
    [{ app_name: 'has space' }, 'printable ASCII'],
    [{ hostname: 'bad host' }, 'sinks.out.hostname'],
    [{ sd_id: 'mesos' }, 'sinks.out.sd_id: "mesos" must be name@enterprise-number'],
    [{ sd_id: 'me=sos@1' }, 'sinks.out.sd_id'],
    [{ sd_params: ['task_labels'] }, 'has task_labels; choose from'],
    [{ transport: 'udp', max_message_bytes: '64KB' }, 'sinks.out.max_message_bytes: "64KB" must be from 480 to 65507 bytes'],
    [{ max_message_bytes: 100 }, 'must be 0 (no limit) or at least 480 bytes'],
    [{ transport: 'udp', replay_max_bytes: '1MB' }, 'sinks.out.replay_max_bytes: "1MB" applies only to transport tcp or tls'],
    [{ tls: { ca_file: '/ca.pem' } }, 'sinks.out.tls: {"ca_file":"/ca.pem"} applies only to transport tls'],
    [{ transport: 'tls', tls: { cert_file: '/c.pem' } }, 'sinks.out.tls.cert_file: "/c.pem" needs both cert_file and key_file'],
    [{ transport: 'tls', tls: { ca_file: '/nonexistent/ca.pem' } }, 'sinks.out.tls.ca_file: "/nonexistent/ca.pem" cannot be read (ENOENT)'],
    [{ transport: 'tls', tls: { ca_file: '/dev/zero' } }, 'sinks.out.tls.ca_file: "/dev/zero" is not a regular file'],
    [{ transport: 'tls', tls: { ca: '/ca.pem' } }, 'sinks.out.tls.ca: "/ca.pem" is not a known key'],
    [{ transport: 'tls', tls: { reject_unauthorized: 'no' } }, 'sinks.out.tls.reject_unauthorized: "no" must be true or false'],
    [{ colour: 'blue' }, 'sinks.out.colour: "blue" is not a known key'],
  ])('rejects %j', (config, message) => {
    expect(() => parse(config)).toThrow(message);
  });
});
