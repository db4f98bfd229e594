// Shared sinks in the daemon: each configured sink runs once per worker and every stream feeds it through its own
// queue. One TCP connection for 100 streams with every line in order per stream; a flooding stream does not delay a
// quiet one; one budget for all streams, the stream holding the most dropping first, counters adding up per stream;
// a SIGHUP keeps unchanged sinks (and their connection) and replaces changed ones without losing lines.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DaemonStatus, StreamStatus } from '../src/daemon/status.js';
import { numberedLines } from './helpers/data.js';
import { killDaemons, makeDaemon, runStatus, type TestDaemon } from './helpers/daemon.js';
import { freePort } from './helpers/prometheus.js';
import { makeSandbox } from './helpers/sandbox.js';
import { spawnLogger, type PipedProcess } from './helpers/spawn.js';
import { startStalledPeer } from './helpers/stalled-peer.js';
import { sleep, waitFor } from './helpers/wait.js';

afterAll(killDaemons);

/** A syslog TCP receiver (RFC 6587 octet counting) that counts its connections and records `<label> <n>` per label. */
class CountingReceiver {
  accepts = 0;
  readonly lines = new Map<string, number[]>();
  /** When each `<label> <n>` arrived (ms since the epoch), by label. */
  readonly arrivals = new Map<string, number[]>();
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Reads at most this many bytes per 10 ms (undefined: as fast as it can). */
  constructor(private readonly bytesPer10Ms?: number) {}

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  async start(): Promise<void> {
    this.server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
  }

  count(label: string): number {
    return this.lines.get(label)?.length ?? 0;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.accepts++;
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => this.sockets.delete(socket));
    let pending: Buffer = Buffer.alloc(0);
    let budget = this.bytesPer10Ms ?? Infinity;
    if (this.bytesPer10Ms !== undefined) {
      const refill = setInterval(() => {
        budget = this.bytesPer10Ms!;
        if (socket.isPaused()) socket.resume();
      }, 10);
      socket.on('close', () => clearInterval(refill));
    }
    socket.on('data', (chunk: Buffer) => {
      budget -= chunk.length;
      if (budget <= 0) socket.pause();
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let at = 0;
      for (;;) {
        const space = pending.indexOf(0x20, at);
        if (space < 0) break;
        const length = Number(pending.toString('latin1', at, space));
        if (space + 1 + length > pending.length) break;
        this.take(pending.toString('latin1', space + 1, space + 1 + length));
        at = space + 1 + length;
      }
      pending = pending.subarray(at);
    });
  }

  private take(message: string): void {
    const match = / (\w+) (\d+) \.*$/.exec(message);
    if (match === null) return;
    const [, label, n] = match;
    if (!this.lines.has(label)) {
      this.lines.set(label, []);
      this.arrivals.set(label, []);
    }
    this.lines.get(label)!.push(Number(n));
    this.arrivals.get(label)!.push(Date.now());
  }
}

function writeConfig(sinks: Record<string, unknown>, extra: Record<string, unknown> = {}, path?: string): string {
  const file = path ?? join(makeSandbox().dir, 'config.yaml');
  writeFileSync(file, JSON.stringify({ agent: { enrich: false }, shutdown_timeout_ms: 3000, sinks, ...extra }));
  return file;
}

const syslogTo = (port: number, buffer?: Record<string, unknown>): Record<string, unknown> => ({
  type: 'syslog',
  transport: 'tcp',
  host: '127.0.0.1',
  port,
  ...(buffer === undefined ? {} : { buffer }),
});

async function startDaemon(config: string): Promise<TestDaemon> {
  const daemon = makeDaemon({ LOG_SPLITTER_CONFIG: config });
  await daemon.start();
  return daemon;
}

async function status(daemon: TestDaemon): Promise<DaemonStatus> {
  const run = await runStatus(['--json', '--socket', daemon.socket]);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as DaemonStatus;
}

const streamAt = (doc: DaemonStatus, log: string): StreamStatus | undefined => doc.streams.find((s) => s.log_filename === log);

/** 0 .. count-1. */
const upTo = (count: number): number[] => Array.from({ length: count }, (_, i) => i);

describe('100 streams through the daemon to one syslog receiver', () => {
  it('make one TCP connection, and every line of every stream arrives once, in order', async () => {
    const receiver = new CountingReceiver();
    await receiver.start();
    const daemon = await startDaemon(writeConfig({ relay: syslogTo(receiver.port) }));
    const STREAMS = 100;
    const LINES = 300;
    const helpers: PipedProcess[] = [];
    for (let k = 0; k < STREAMS; k++) {
      helpers.push(await spawnLogger({ log_filename: makeSandbox().stdout }, { env: daemon.shimEnv('daemon') }));
    }
    // Interleaved writes of 100-line chunks, as concurrent tasks write.
    for (let part = 0; part < LINES / 100; part++) {
      await Promise.all(helpers.map((helper, k) => helper.write(numberedLines(100, 80, `s${k}`, part * 100))));
    }
    await Promise.all(helpers.map((helper) => helper.end()));
    for (const helper of helpers) expect((await helper.exited).code).toBe(0);
    await waitFor(() => [...upTo(STREAMS)].every((k) => receiver.count(`s${k}`) >= LINES), {
      timeoutMs: 20_000,
      what: 'every line at the receiver',
    });
    for (let k = 0; k < STREAMS; k++) expect(receiver.lines.get(`s${k}`), `stream ${k}`).toEqual(upTo(LINES));
    expect(receiver.accepts).toBe(1);
    const doc = await status(daemon);
    expect(doc.sinks).toEqual([expect.objectContaining({ sink: 'relay', health: 'up', sent_lines: STREAMS * LINES, dropped_lines: 0 })]);
    await receiver.close();
  }, 120_000);
});

describe('fairness', () => {
  it("a stream flooding 64 KiB writes does not delay a quiet stream's lines while its own are buffered", async () => {
    // About 4 MB/s: far below what the flood writes, so its lines pile up in the sink's budget.
    const receiver = new CountingReceiver(40_000);
    await receiver.start();
    const daemon = await startDaemon(writeConfig({ relay: syslogTo(receiver.port, { max_bytes: '16MB' }) }));
    const floodLog = makeSandbox().stdout;
    const quietLog = makeSandbox().stdout;
    const flood = await spawnLogger({ log_filename: floodLog }, { env: daemon.shimEnv('daemon') });
    const quiet = await spawnLogger({ log_filename: quietLog }, { env: daemon.shimEnv('daemon') });
    let flooding = true;
    const flooded = (async () => {
      for (let part = 0; flooding; part++) await flood.write(numberedLines(800, 82, 'flood', part * 800));
    })();
    await waitFor(() => receiver.count('flood') > 0, { what: 'the flood to reach the receiver' });
    await sleep(500);
    const written: number[] = [];
    for (let i = 0; i < 20; i++) {
      written.push(Date.now());
      await quiet.write(numberedLines(1, 80, 'quiet', i));
      await sleep(50);
    }
    await waitFor(() => receiver.count('quiet') === 20, { timeoutMs: 10_000, what: 'the quiet lines' });
    const doc = await status(daemon);
    flooding = false;
    await flooded;
    const delays = receiver.arrivals.get('quiet')!.map((at, i) => at - written[i]);
    expect(receiver.lines.get('quiet')).toEqual(upTo(20));
    // The flood was backlogged the whole time: megabytes held for it while each quiet line went out.
    expect(streamAt(doc, floodLog)!.sinks[0].buffered_bytes).toBeGreaterThan(1 << 20);
    expect(Math.max(...delays), `quiet line delays ${delays.join(', ')} ms`).toBeLessThan(1500);
    expect(streamAt(doc, quietLog)!.sinks[0]).toMatchObject({ sent_lines: 20, dropped_lines: 0, buffered_lines: 0 });
    await Promise.all([flood.end(), quiet.end()]);
    await Promise.all([flood.exited, quiet.exited]);
    await receiver.close();
  }, 120_000);
});

describe('one budget for all streams of a sink', () => {
  it('with a stalled receiver, the stream that holds the most drops; counters add up per stream; metrics lint clean', async () => {
    const peer = await startStalledPeer();
    const metricsPort = await freePort();
    const daemon = await startDaemon(
      writeConfig({ stuck: syslogTo(peer.port, { max_bytes: '8MB' }) }, { daemon: { metrics_listen: `127.0.0.1:${metricsPort}` } }),
    );
    const bigLog = makeSandbox().stdout;
    const smallLog = makeSandbox().stdout;
    const big = await spawnLogger({ log_filename: bigLog }, { env: daemon.shimEnv('daemon') });
    const small = await spawnLogger({ log_filename: smallLog }, { env: daemon.shimEnv('daemon') });
    const BIG_LINES = 100_000;
    const SMALL_LINES = 20_000;
    await big.write(numberedLines(BIG_LINES, 100, 'big'));
    await waitFor(async () => (streamAt(await status(daemon), bigLog)?.sinks[0]?.dropped_lines ?? 0) > 0, { what: 'the big stream to drop' });
    await small.write(numberedLines(SMALL_LINES, 100, 'small'));
    const doc = await waitFor(
      async () => {
        const doc = await status(daemon);
        return streamAt(doc, smallLog)?.bytes_in === SMALL_LINES * 100 && doc;
      },
      { what: 'the small stream read' },
    );
    const bigSink = streamAt(doc, bigLog)!.sinks[0];
    const smallSink = streamAt(doc, smallLog)!.sinks[0];
    // The queues get the 7 MB budget less the replay window (1 MB) and the reused batch memory (an eighth of 8 MB):
    // 2 MB fit once the big stream gives up lines, so the small one drops nothing.
    expect(smallSink.dropped_lines).toBe(0);
    expect(bigSink.dropped_lines).toBeGreaterThan(BIG_LINES / 2);
    expect(bigSink.dropped_by.buffer_full.lines).toBe(bigSink.dropped_lines);
    expect(bigSink.sent_lines + bigSink.dropped_lines + bigSink.buffered_lines).toBe(BIG_LINES);
    expect(smallSink.sent_lines + smallSink.dropped_lines + smallSink.buffered_lines).toBe(SMALL_LINES);
    expect(doc.sinks).toEqual([
      expect.objectContaining({ sink: 'stuck', dropped_lines: bigSink.dropped_lines, budget_bytes: 7 << 20 }),
    ]);
    // One budget: what the sink holds for both streams stays within it (per stream, each could hold nearly all of it).
    expect(doc.sinks[0].held_bytes).toBeLessThanOrEqual(7 << 20);
    expect(doc.sinks[0].held_bytes).toBeGreaterThan(5 << 20);

    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(text).toMatch(/mesos_log_splitter_sink_dropped_lines_total\{sink="stuck",type="syslog",reason="buffer_full"\} [1-9]/);
    expect(text).toMatch(/mesos_log_splitter_stream_sink_dropped_lines_total\{sink="stuck",type="syslog",.*reason="buffer_full"\} [1-9]/);
    expect(text).toContain('mesos_log_splitter_sink_budget_bytes{sink="stuck",type="syslog"} 7340032');
    await Promise.all([big.end(), small.end()]);
    expect((await big.exited).code).toBe(0);
    expect((await small.exited).code).toBe(0);
    const after = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(after).not.toContain('mesos_log_splitter_stream_sink_');
    expect(after).toMatch(/mesos_log_splitter_sink_dropped_lines_total\{sink="stuck",type="syslog",reason="buffer_full"\} [1-9]/);
    await peer.close();
  }, 120_000);
});

describe('SIGHUP with shared sinks', () => {
  it('keeps an unchanged sink and its connection; a changed one delivers what it held and the new one the rest', async () => {
    const [kept, before, after] = [new CountingReceiver(), new CountingReceiver(), new CountingReceiver()];
    for (const receiver of [kept, before, after]) await receiver.start();
    const config = writeConfig({ keep: syslogTo(kept.port), move: syslogTo(before.port) });
    const daemon = await startDaemon(config);
    const helpers: PipedProcess[] = [];
    for (let k = 0; k < 3; k++) helpers.push(await spawnLogger({ log_filename: makeSandbox().stdout }, { env: daemon.shimEnv('daemon') }));
    const write = (from: number): Promise<unknown> =>
      Promise.all(helpers.map((helper, k) => helper.write(numberedLines(500, 60, `r${k}`, from))));
    await write(0);
    await waitFor(() => [0, 1, 2].every((k) => before.count(`r${k}`) === 500), { what: 'the first half at the first receiver' });
    writeConfig({ keep: syslogTo(kept.port), move: syslogTo(after.port) }, {}, config);
    daemon.child.kill('SIGHUP');
    await waitFor(() => daemon.diagnostics().filter((d) => d.msg === 'config reloaded').length === 3, { what: 'three reloads' });
    await write(500);
    await Promise.all(helpers.map((helper) => helper.end()));
    for (const helper of helpers) expect((await helper.exited).code).toBe(0);
    await waitFor(() => [0, 1, 2].every((k) => kept.count(`r${k}`) === 1000 && after.count(`r${k}`) === 500), {
      timeoutMs: 15_000,
      what: 'every line at the receivers',
    });
    for (let k = 0; k < 3; k++) {
      expect(kept.lines.get(`r${k}`)).toEqual(upTo(1000));
      expect(before.lines.get(`r${k}`)).toEqual(upTo(500));
      expect(after.lines.get(`r${k}`)).toEqual(upTo(500).map((i) => 500 + i));
    }
    expect([kept.accepts, before.accepts, after.accepts]).toEqual([1, 1, 1]);
    await waitFor(() => daemon.diagnostics().some((d) => d.msg === 'shared sink stopped' && d.sink === 'move'), { what: 'the old sink stopped' });
    for (const receiver of [kept, before, after]) await receiver.close();
  }, 120_000);
});
