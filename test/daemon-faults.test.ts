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
import { sleep, waitFor } from './helpers/wait.js';

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

describe('auto mode against a daemon too slow to answer in time', () => {
  /** Writes `input` in `pieces` pieces `gapMs` apart, then closes the pipe. */
  async function writeSlowly(helper: PipedProcess, input: Buffer, pieces: number, gapMs: number): Promise<void> {
    const size = Math.ceil(input.length / pieces);
    for (let at = 0; at < input.length; at += size) {
      await helper.write(input.subarray(at, at + size));
      await sleep(gapMs);
    }
    await helper.end();
  }
  const handedOver = (daemon: TestDaemon, pid: number): boolean =>
    daemon.diagnostics().some((d) => d.msg === 'stream handed over' && d.shim === pid);
  const fellBack = (helper: PipedProcess): boolean => helper.diagnostics().some((d) => d.msg === 'serving the stream standalone');

  it('a shim that fell back while the daemon was stopped is never handed over: the sandbox is byte-exact', async () => {
    const daemon = makeDaemon();
    await daemon.start();
    const { stdout } = makeSandbox();
    const input = numberedLines(4000, LINE, 'late');
    process.kill(daemon.child.pid!, 'SIGSTOP');
    let helper: PipedProcess;
    try {
      helper = await spawnLogger({ log_filename: stdout, max_size: '1GB' }, { env: daemon.shimEnv('auto') });
      await waitFor(() => fellBack(helper), { timeoutMs: 10_000, what: 'the fallback' });
      await helper.write(input.subarray(0, input.length / 2));
    } finally {
      process.kill(daemon.child.pid!, 'SIGCONT');
    }
    // The daemon now reads the hello it had queued; give it time to (wrongly) take the pipe.
    await sleep(1000);
    await writeSlowly(helper, input.subarray(input.length / 2), 8, 50);
    expect((await helper.exited).code, helper.stderr()).toBe(0);
    expect(handedOver(daemon, helper.pid), daemon.stderr().slice(-3000)).toBe(false);
    expect(readKept(stdout).equals(input)).toBe(true);
  });

  it('15 streams started at once while the daemon is stopped and continued at random: every sandbox byte-exact', async () => {
    const daemon = makeDaemon();
    await daemon.start();
    // Stopped for 0.1 to 0.6 s at a go, continued for 20 to 150 ms, so it gets through a few connections at a time: some
    // shims are answered within their 500 ms, some give up, and some hellos are answered after their shim gave up.
    let stalling = true;
    const pauses: number[] = [];
    const staller = (async () => {
      while (stalling) {
        const stopMs = 100 + Math.floor(Math.random() * 500);
        pauses.push(stopMs);
        process.kill(daemon.child.pid!, 'SIGSTOP');
        await sleep(stopMs);
        process.kill(daemon.child.pid!, 'SIGCONT');
        await sleep(20 + Math.floor(Math.random() * 130));
      }
    })();
    let streams: { helper: PipedProcess; log: string; input: Buffer }[];
    try {
      streams = await Promise.all(
        Array.from({ length: 15 }, async (_, i) => {
          const { stdout } = makeSandbox();
          const helper = await spawnLogger({ log_filename: stdout, max_size: '1GB' }, { env: daemon.shimEnv('auto') });
          return { helper, log: stdout, input: numberedLines(2000, LINE, `burst-${i}`) };
        }),
      );
      await Promise.all(streams.map((stream) => writeSlowly(stream.helper, stream.input, 16, 200)));
    } finally {
      stalling = false;
      await staller;
    }
    const exits = await Promise.all(streams.map((stream) => stream.helper.exited));
    expect(exits.map((exit) => exit.code)).toEqual(streams.map(() => 0));
    const fallbacks = streams.filter((stream) => fellBack(stream.helper)).length;
    console.log(`burst of 15 under SIGSTOP/SIGCONT (stops of ${pauses.join(' ')} ms): ${fallbacks} fell back, ${15 - fallbacks} handed over`);
    for (const stream of streams) {
      expect(fellBack(stream.helper) && handedOver(daemon, stream.helper.pid)).toBe(false);
      expect(readKept(stream.log).equals(stream.input), stream.log).toBe(true);
    }
  });
});
