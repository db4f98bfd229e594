// The daemon failing under running streams: no task write ever fails (EPIPE), streams resume, and what a failure
// costs is measured against the loss bounds (SIGTERM: nothing; SIGKILL: at most 256 KiB per stream).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { numberedLines } from './helpers/data.js';
import { killDaemons, makeDaemon, type TestDaemon } from './helpers/daemon.js';
import { hasExited } from './helpers/proc.js';
import { makeSandbox, readKept } from './helpers/sandbox.js';
import { LAUNCHER_DIR, spawnLogger, type PipedProcess } from './helpers/spawn.js';
import { waitFor } from './helpers/wait.js';

afterAll(killDaemons);

const CHUNK = 64 * 1024;
const LINE = 128;

interface Stream {
  helper: PipedProcess;
  log: string;
  input: Buffer;
  /** Chunks the pipe has taken so far. */
  written: number;
  /** Resolves when every chunk is written and the pipe closed; rejects on a failed write (EPIPE). */
  done: Promise<void>;
}

/**
 * `count` streams through the daemon, each writing `chunks` chunks of 64 KiB of numbered lines as fast as the pipe
 * takes them. Each waits after `meetAt` chunks until all have got that far, so that a fault injected when
 * `met` resolves finds every stream in the middle of writing (none already done, none not yet started).
 */
async function startStreams(daemon: TestDaemon, count: number, chunks: number, meetAt = 0): Promise<{ streams: Stream[]; met: Promise<void> }> {
  let arrived = 0;
  let meet: () => void = () => undefined;
  const met = new Promise<void>((resolve) => (meet = resolve));
  const streams = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const { stdout } = makeSandbox();
      // No rotation: the whole input stays in one file.
      const helper = await spawnLogger({ log_filename: stdout, max_size: '1GB' }, { env: daemon.shimEnv('daemon') });
      const input = numberedLines((chunks * CHUNK) / LINE, LINE, `stream-${i}`);
      const stream: Stream = { helper, log: stdout, input, written: 0, done: Promise.resolve() };
      stream.done = (async () => {
        for (let at = 0; at < input.length; at += CHUNK) {
          if (stream.written === meetAt && ++arrived === count) meet();
          if (stream.written === meetAt) await met;
          await helper.write(input.subarray(at, at + CHUNK));
          stream.written++;
        }
        await helper.end();
      })();
      return stream;
    }),
  );
  return { streams, met };
}

/**
 * The sandbox must be the input with at most one contiguous piece missing: returns that piece's size (0: exact).
 * Throws if the bytes differ otherwise (reordered, duplicated, more than one gap).
 */
function gapIn(input: Buffer, got: Buffer): number {
  if (got.length > input.length) throw new Error(`the sandbox holds ${got.length - input.length} bytes more than the input`);
  let prefix = 0;
  while (prefix < got.length && got[prefix] === input[prefix]) prefix++;
  const tail = got.length - prefix;
  if (!got.subarray(prefix).equals(input.subarray(input.length - tail))) {
    throw new Error(`the sandbox differs from the input after byte ${prefix} by more than one gap`);
  }
  return input.length - got.length;
}

async function finish(daemon: TestDaemon, streams: Stream[]): Promise<number[]> {
  // No writer saw EPIPE: every write resolved.
  await Promise.all(streams.map((stream) => stream.done));
  const exits = await Promise.all(streams.map((stream) => stream.helper.exited));
  expect(exits.map((exit) => exit.code), daemon.stderr().slice(-3000)).toEqual(streams.map(() => 0));
  return streams.map((stream) => gapIn(stream.input, readKept(stream.log)));
}

const resumedCount = (daemon: TestDaemon, since: number): number =>
  daemon.diagnostics().slice(since).filter((d) => d.msg === 'stream handed over' && d.resumed === true).length;

describe('the daemon stops under 20 writing streams', () => {
  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    it(`${signal}, then a restart: no EPIPE, every stream resumes within 2 s, ${signal === 'SIGTERM' ? 'byte-exact' : 'at most one gap of 256 KiB'}`, async () => {
      const daemon = makeDaemon();
      await daemon.start();
      const { streams, met } = await startStreams(daemon, 20, 32, 8);
      await met;
      const oldWorkers = daemon.workerPids();
      await daemon.kill(signal);
      const writtenAtKill = streams.map((stream) => stream.written);
      const seen = daemon.diagnostics().length;
      const restarted = Date.now();
      await daemon.start();
      const serving = Date.now();
      await waitFor(() => resumedCount(daemon, seen) === 20, { timeoutMs: 10_000, what: '20 resumed hand-overs' }).catch((err) => {
        throw new Error(`${(err as Error).message}; ${resumedCount(daemon, seen)} so far; the daemon's log:\n${daemon.stderr().slice(-4000)}`);
      });
      const resumedMs = Date.now() - restarted;
      // The successor waited for its predecessor's workers (they write what they had read) before serving.
      for (const pid of oldWorkers) expect(hasExited(pid)).toBe(true);
      const gaps = await finish(daemon, streams);
      expect(streams.every((stream, i) => stream.written > writtenAtKill[i])).toBe(true);
      console.log(
        `${signal}: restart to serving ${serving - restarted} ms, to all 20 streams handed over again ${resumedMs} ms; ` +
          `gaps per stream (bytes): ${gaps.join(' ')}`,
      );
      expect(resumedMs).toBeLessThan(2000 + (serving - restarted));
      if (signal === 'SIGTERM') expect(gaps).toEqual(streams.map(() => 0));
      else for (const gap of gaps) expect(gap).toBeLessThanOrEqual(256 * 1024);
    });
  }
});

describe('a worker dies', () => {
  it('SIGKILL: the daemon starts another and hands it the streams again; no EPIPE, at most one gap of 320 KiB each', async () => {
    const daemon = makeDaemon();
    await daemon.start();
    const { streams, met } = await startStreams(daemon, 5, 32, 8);
    await met;
    const [worker] = daemon.workerPids();
    process.kill(worker, 'SIGKILL');
    await waitFor(() => daemon.workerPids().some((pid) => pid !== worker), { what: 'a new worker' });
    const gaps = await finish(daemon, streams);
    console.log(`worker SIGKILL: gaps per stream (bytes): ${gaps.join(' ')}`);
    // What the worker had read and not written: its sandbox queue (paused at 256 KiB) plus the read that filled it.
    for (const gap of gaps) expect(gap).toBeLessThanOrEqual(256 * 1024 + CHUNK);
    expect(daemon.diagnostics().some((d) => d.msg === 'worker exited; starting another for its streams')).toBe(true);
  });
});

describe('the shim is SIGKILLed', () => {
  it('the stream still reaches EOF through the daemon: byte-exact, no EPIPE', async () => {
    const daemon = makeDaemon();
    await daemon.start();
    const {
      streams: [stream],
      met,
    } = await startStreams(daemon, 1, 16, 4);
    await met;
    stream.helper.child.kill('SIGKILL');
    await stream.done;
    expect((await stream.helper.exited).signal).toBe('SIGKILL');
    await waitFor(() => daemon.diagnostics().some((d) => d.msg === 'stream ended' && d.log_filename === stream.log), {
      timeoutMs: 20_000,
      what: 'the stream to end in the daemon',
    });
    expect(readFileSync(stream.log).equals(stream.input)).toBe(true);
  });
});

describe('a restarted daemon and its predecessor\'s workers', () => {
  it('it serves no stream until the workers recorded in its state dir have exited', async () => {
    const daemon = makeDaemon();
    // Stands in for a worker of a SIGKILLed daemon, still writing for 1.5 s: what the daemon checks, its command line
    // names the bundle and daemon-worker.
    const bundle = join(LAUNCHER_DIR, 'mesos-log-splitter.mjs');
    const worker = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 1500)', bundle, 'daemon-worker'], { stdio: 'ignore' });
    const stat = readFileSync(`/proc/${worker.pid}/stat`, 'utf8');
    mkdirSync(join(daemon.stateDir, 'workers'), { recursive: true });
    writeFileSync(join(daemon.stateDir, 'workers', String(worker.pid)), stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    await daemon.start();
    expect(hasExited(worker.pid!)).toBe(true);
    expect(daemon.diagnostics().some((d) => d.msg === "waiting for the previous daemon's workers to finish writing")).toBe(true);
  });
});

describe('daemon mode with no daemon yet', () => {
  it('the shim holds the pipe and waits; the stream is served once the daemon starts, byte-exact, no EPIPE', async () => {
    const daemon = makeDaemon();
    const {
      streams: [stream],
    } = await startStreams(daemon, 1, 4);
    // The pipe buffer fills and the writer blocks: no EPIPE, no fallback.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(stream.written).toBeLessThan(4);
    expect(stream.helper.child.exitCode).toBe(null);
    // The agent's log (the shim's stderr) says so once, not at every retry.
    expect(stream.helper.stderr()).toBe(
      `mesos-logrotate-logger: waiting for the daemon (LOG_SPLITTER_MODE=daemon): no daemon at ${daemon.socket}: No such file or directory\n`,
    );
    await daemon.start();
    await stream.done;
    expect((await stream.helper.exited).code).toBe(0);
    expect(readFileSync(stream.log).equals(stream.input)).toBe(true);
    expect(stream.helper.stderr().split('\n').slice(1)).toEqual([`mesos-logrotate-logger: connected to the daemon at ${daemon.socket} after waiting`, '']);
  });
});
