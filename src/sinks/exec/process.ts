import { spawn, type ChildProcess } from 'node:child_process';

/** How an exec process ended: its exit code or signal, or why it never started. */
export type ExitStatus = { code: number | null; signal: NodeJS.Signals | null } | { startError: string };

export function describeExit(status: ExitStatus): string {
  if ('startError' in status) return `could not be started (${status.startError})`;
  return status.signal !== null ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
}

export const isCleanExit = (status: ExitStatus): boolean => 'code' in status && status.code === 0;

/** Groups still running. If the helper exits without closing its sinks, they are killed rather than orphaned. */
const running = new Set<ExecProcess>();
let reaperInstalled = false;

function reapAtExit(incarnation: ExecProcess): void {
  running.add(incarnation);
  if (reaperInstalled) return;
  reaperInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill();
  });
}

/**
 * One incarnation of the exec sink's command, in its own process group so a shell pipeline dies with it. Its stdin
 * is ours; its stdout goes to /dev/null and its stderr to the helper's (the agent's log), as the External container
 * logger arranged. Every failure (spawn error, EPIPE, exit) settles as a status or a rejected write, never as an
 * unhandled 'error' event.
 */
export class ExecProcess {
  readonly startedAt = Date.now();
  /** True once it runs; false if it could not be started. */
  readonly started: Promise<boolean>;
  /** Settles when it is gone, or at once if it never started. */
  readonly exited: Promise<ExitStatus>;
  private status: ExitStatus | undefined;
  /** Its stdin failed and it was killed; it takes no more lines, though its exit may not have been seen yet. */
  dying = false;
  private child: ChildProcess | undefined;
  private readonly pending = new Set<(err?: Error | null) => void>();
  private markStarted!: (ok: boolean) => void;
  private markExited!: (status: ExitStatus) => void;

  /** `first` is written before anything else: lines a previous incarnation may not have read. */
  constructor(argv: readonly string[], env: Record<string, string>, first: Buffer) {
    this.started = new Promise((resolve) => (this.markStarted = resolve));
    this.exited = new Promise((resolve) => (this.markExited = resolve));
    let child: ChildProcess;
    try {
      child = spawn(argv[0], argv.slice(1), { env, stdio: ['pipe', 'ignore', 'inherit'], detached: true });
    } catch (err) {
      // Invalid arguments (e.g. a NUL byte in a metadata value) throw instead of emitting 'error'.
      this.finish({ startError: (err as Error).message });
      return;
    }
    this.child = child;
    // Before 'spawn' this is a start failure (ENOENT, EACCES, EMFILE), which brings no 'exit'; a later one (a failed
    // kill) is followed by 'exit'.
    child.on('error', (err) => {
      if (child.pid === undefined) this.finish({ startError: err.message });
    });
    // Out of file descriptors (EMFILE): Node gave up before making the pipes, and the 'error' above follows.
    if (child.stdin === null || child.stdin === undefined) return;
    // EPIPE: it closed its stdin and can take no more lines. Kill it, so it is restarted rather than kept idle.
    child.stdin.on('error', (err) => {
      this.dying = true;
      this.failPending(new Error(`exec process stopped reading its stdin (${err.message})`));
      this.kill();
    });
    child.once('spawn', () => {
      reapAtExit(this);
      this.markStarted(true);
    });
    child.once('exit', (code, signal) => this.finish({ code, signal }));
    if (first.length > 0) this.write(first).catch(() => undefined);
  }

  /** Resolves when the kernel took the bytes (not when the process read them); rejects if the process is gone first. */
  write(data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.status !== undefined) return reject(new Error(`exec process ${describeExit(this.status)}`));
      const stdin = this.child?.stdin;
      if (stdin === null || stdin === undefined) return reject(new Error('exec process could not be given a stdin'));
      const settle = (err?: Error | null): void => {
        if (!this.pending.delete(settle)) return;
        if (err) reject(err);
        else resolve();
      };
      this.pending.add(settle);
      stdin.write(data, settle);
    });
  }

  /** Closes its stdin: it sees EOF. */
  end(): void {
    if (this.status === undefined) this.child?.stdin?.end();
  }

  /** SIGKILLs its whole process group. */
  kill(): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // ESRCH: the group is already gone.
    }
  }

  private finish(status: ExitStatus): void {
    if (this.status !== undefined) return;
    this.status = status;
    running.delete(this);
    this.failPending(new Error(`exec process ${describeExit(status)} before taking the lines`));
    this.child?.stdin?.destroy();
    // Whatever it left behind in its group would be orphaned, still reading a dead stream.
    this.kill();
    this.markStarted(false);
    this.markExited(status);
  }

  private failPending(err: Error): void {
    for (const settle of [...this.pending]) settle(err);
  }
}
