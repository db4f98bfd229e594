import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, inject } from 'vitest';
import { agentEnv } from './env.js';
import { makePipe } from './pipe.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** This run's install of bin/ and the bundle, made by test/global-setup.ts. */
export const LAUNCHER_DIR = inject('launcherDir');
export const LOGGER_BIN = join(LAUNCHER_DIR, 'mesos-logrotate-logger');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds from end() (or from the writer's exit) to the process's exit; undefined if neither happened. */
  afterEndMs: number | undefined;
}

/** One JSON line of the helper's own diagnostics (pino on stderr). */
export type Diagnostic = Record<string, unknown> & { level: number; msg: string };

const LF = 0x0a;

export interface Written {
  lines: number;
  bytes: number;
}

/**
 * A `sink summary` diagnostic's counters add up: in = sent + dropped + still buffered, for lines and bytes; with
 * `written`, what went in is what the test wrote.
 */
export function expectSummaryAddsUp(summary: Record<string, unknown> | undefined, written?: Written): void {
  expect(summary).toBeDefined();
  const s = summary as Record<string, number>;
  // linesIn is the sum of the others (lines are counted by their newlines when sent or dropped): only a count from
  // outside shows a line the sink lost.
  if (written !== undefined) {
    expect({ linesIn: s.linesIn, bytesIn: s.bytesIn }).toEqual({ linesIn: written.lines, bytesIn: written.bytes });
  }
  expect(s.linesIn).toBe(s.linesSent + s.linesDropped + s.bufferedLines);
  expect(s.bytesIn).toBe(s.bytesSent + s.bytesDropped + s.bufferedBytes);
}

/** A process whose stdin is the read end of a real pipe held by the test. */
export interface PipedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<Exit>;
  /** Resolves once the pipe has taken every byte: a slow reader holds the caller back, as it holds a task. */
  write(data: string | Buffer): Promise<void>;
  /** Closes the test's write end: the reader sees EOF. */
  end(): Promise<void>;
  /** Hands the write end to a new process (a task writing its stdout) and closes the test's copy. */
  spawnWriter(command: string, args: string[], options?: SpawnOptions): ChildProcess;
  /** What `write` gave the pipe so far, in lines (an unterminated last one counts once the end is closed). */
  written(): Written;
  stdout(): string;
  stderr(): string;
  diagnostics(): Diagnostic[];
}

export interface SpawnPipedOptions {
  env?: NodeJS.ProcessEnv;
  /** Capture stdout (for --help); otherwise it is /dev/null, as the agent arranges. */
  captureStdout?: boolean;
  argv0?: string;
  cwd?: string;
  /** Start it as a process-group and session leader (as a supervisor or a job-control shell might). */
  detached?: boolean;
  /** A pipe made beforehand (makePipe), when making it must not count in what a test times. */
  pipe?: { readFd: number; writeFd: number };
}

const live = new Set<ChildProcess>();

/** SIGKILLs whatever a test left running (only processes these helpers started). */
export function killStrays(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  live.clear();
}

/** Starts `command` with a real pipe on stdin, stderr collected, stdout ignored unless asked for. */
export async function spawnPiped(command: string, args: string[], options: SpawnPipedOptions = {}): Promise<PipedProcess> {
  const { readFd, writeFd } = options.pipe ?? (await makePipe());
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      stdio: [readFd, options.captureStdout ? 'pipe' : 'ignore', 'pipe'],
      env: options.env ?? agentEnv(),
      argv0: options.argv0,
      cwd: options.cwd,
      detached: options.detached,
    });
  } catch (err) {
    closeSync(writeFd);
    throw err;
  } finally {
    closeSync(readFd);
  }
  live.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => err.push(chunk));

  const sent = { bytes: 0, newlines: 0, last: LF, ended: false };
  let fd: number | undefined = writeFd;
  let socket: Socket | undefined;
  let endedAt: number | undefined;
  // A writer process's exit and the helper's may be reported in either order; the measure waits for both.
  let writerDone = Promise.resolve();
  const exited = new Promise<Exit>((resolve, reject) => {
    child.once('error', reject);
    // 'close' rather than 'exit': stderr is read to its end.
    child.once('close', (code, signal) => {
      const closedAt = Date.now();
      live.delete(child);
      // The helper survives a bug that escaped every handler (see logrotate-logger.ts); a test must not.
      const escaped = /^.*"msg":"(uncaught exception|unhandled rejection); carrying on".*$/m.exec(Buffer.concat(err).toString());
      if (escaped !== null) return reject(new Error(`the helper logged: ${escaped[0]}`));
      void writerDone.then(() =>
        resolve({ code, signal, afterEndMs: endedAt === undefined ? undefined : Math.max(0, closedAt - endedAt) }),
      );
    });
  });
  const closeOurEnd = (): void => {
    if (socket !== undefined) socket.destroy();
    else if (fd !== undefined) closeSync(fd);
    fd = undefined;
    endedAt = Date.now();
  };

  return {
    child,
    pid: child.pid!,
    exited,
    write(data) {
      if (fd === undefined) return Promise.reject(new Error('the write end is closed'));
      // A Socket on the FIFO's write end: non-blocking writes with Node's own backpressure.
      if (socket === undefined) {
        socket = new Socket({ fd, readable: false, writable: true });
        // EPIPE and friends reach the caller through the write callback.
        socket.on('error', () => undefined);
      }
      const s = socket;
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      sent.bytes += bytes.length;
      for (let at = bytes.indexOf(LF); at >= 0; at = bytes.indexOf(LF, at + 1)) sent.newlines++;
      if (bytes.length > 0) sent.last = bytes[bytes.length - 1];
      return new Promise((resolve, reject) => {
        s.write(data, (error) => (error ? reject(error) : resolve()));
      });
    },
    async end() {
      if (fd !== undefined) closeOurEnd();
      sent.ended = true;
    },
    written: () => ({ lines: sent.newlines + (sent.ended && sent.last !== LF ? 1 : 0), bytes: sent.bytes }),
    spawnWriter(writerCommand, writerArgs, writerOptions = {}) {
      if (fd === undefined || socket !== undefined) throw new Error('the write end is already in use');
      const writer = spawn(writerCommand, writerArgs, { ...writerOptions, stdio: ['ignore', fd, 'inherit'] });
      live.add(writer);
      writerDone = new Promise((resolve) =>
        writer.once('exit', () => {
          live.delete(writer);
          endedAt = Date.now();
          resolve();
        }),
      );
      closeSync(fd);
      fd = undefined;
      return writer;
    },
    stdout: () => Buffer.concat(out).toString('utf8'),
    stderr: () => Buffer.concat(err).toString('utf8'),
    diagnostics: () => parseDiagnostics(Buffer.concat(err).toString('utf8')),
  };
}

export function parseDiagnostics(stderr: string): Diagnostic[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Diagnostic);
}

/** The flags the agent passes; absent ones are left out, as the agent leaves out unset optional flags. */
export interface LoggerFlags {
  log_filename: string;
  logrotate_options?: string;
  logrotate_path?: string;
  max_size?: string;
  user?: string;
}

/** argv exactly as the agent builds it: `--help=false` first, then one `--name=value` per flag, alphabetical. */
export function loggerArgv(flags: LoggerFlags): string[] {
  const all: Record<string, string | undefined> = { logrotate_path: 'logrotate', max_size: '2MB', ...flags };
  const names = Object.keys(all)
    .filter((name) => all[name] !== undefined)
    .sort();
  return ['--help=false', ...names.map((name) => `--${name}=${all[name]}`)];
}

/** Starts bin/mesos-logrotate-logger as the agent does: bare argv[0], the agent's argv and environment, a pipe on stdin. */
export function spawnLogger(flags: LoggerFlags, options: SpawnPipedOptions = {}): Promise<PipedProcess> {
  return spawnRawLogger(loggerArgv(flags), options);
}

export function spawnRawLogger(argv: string[], options: SpawnPipedOptions = {}): Promise<PipedProcess> {
  return spawnPiped(LOGGER_BIN, argv, { argv0: 'mesos-logrotate-logger', ...options });
}

/** Runs a whole stream: writes `input` (in chunks, honouring backpressure), closes the pipe and waits for the exit. */
export async function pipeThrough(
  flags: LoggerFlags,
  input: Buffer | Buffer[],
  options: SpawnPipedOptions = {},
): Promise<{ helper: PipedProcess; exit: Exit }> {
  const helper = await spawnLogger(flags, options);
  for (const chunk of Array.isArray(input) ? input : [input]) await helper.write(chunk);
  await helper.end();
  return { helper, exit: await helper.exited };
}

/** The counters the helper logs when the stream ends (bytesIn, bytesWritten, bytesDropped, rotations, ...). */
export function finalStats(helper: PipedProcess): Diagnostic & Record<'bytesIn' | 'bytesWritten' | 'bytesDropped' | 'rotations', number> {
  const found = helper
    .diagnostics()
    .filter((d) => typeof d.bytesIn === 'number' && typeof d.bytesDropped === 'number')
    .at(-1);
  if (found === undefined) throw new Error(`no closing counters on stderr:\n${helper.stderr()}`);
  return found as Diagnostic & Record<'bytesIn' | 'bytesWritten' | 'bytesDropped' | 'rotations', number>;
}

/**
 * Runs a whole stream written by `cat` from a file, as a task writes: blocking writes straight into the pipe, so
 * the test's own event loop never paces the bytes (a stalled writer would make the helper flush a partial line).
 */
export async function catThrough(
  flags: LoggerFlags,
  input: Buffer,
  options: SpawnPipedOptions = {},
): Promise<{ helper: PipedProcess; exit: Exit }> {
  const dir = mkdtempSync(join(tmpdir(), 'mls-input-'));
  try {
    writeFileSync(join(dir, 'input'), input);
    const helper = await spawnLogger(flags, options);
    helper.spawnWriter('cat', [join(dir, 'input')]);
    return { helper, exit: await helper.exited };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
