import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../diagnostics.js';
import { ensurePrivateDir } from './private-dir.js';

const POLL_MS = 20;

/**
 * The daemon's workers, one file per pid in `<state-dir>/workers/`, holding the process's start time (so a reused
 * pid is not mistaken for a worker). A daemon that was SIGKILLed leaves its workers flushing what they read; its
 * successor waits for them before it reads any stream, so bytes reach each sandbox in order.
 */
export class WorkerRecords {
  private readonly dir: string;

  constructor(
    stateDir: string,
    /** The bundle the workers run: `node <bundle> daemon-worker [user]`. */
    private readonly bundle: string,
  ) {
    // Root kills what is recorded here: nobody else may write a record.
    ensurePrivateDir(stateDir);
    this.dir = join(stateDir, 'workers');
    ensurePrivateDir(this.dir);
  }

  add(pid: number): void {
    const started = startTime(pid);
    if (started !== undefined) writeFileSync(join(this.dir, String(pid)), started);
  }

  remove(pid: number): void {
    rmSync(join(this.dir, String(pid)), { force: true });
  }

  /**
   * Waits until the recorded workers of a previous daemon have exited. After `boundMs` the stragglers are killed:
   * their unwritten bytes are lost, but nothing is written out of order.
   */
  async waitForPrevious(log: Logger, boundMs: number): Promise<void> {
    const deadline = Date.now() + boundMs;
    // Records and command lines are read once: a pid still running with the recorded start time is the same worker.
    let waitingFor = this.live();
    if (waitingFor.length > 0) log.info({ workers: waitingFor.map(({ pid }) => pid) }, 'waiting for the previous daemon\'s workers to finish writing');
    while (waitingFor.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      waitingFor = waitingFor.filter(({ pid, started }) => startTime(pid) === started);
    }
    for (const { pid } of waitingFor) {
      log.error({ pid, boundMs }, 'a previous worker is still running; killing it (what it held is lost)');
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    for (const name of readdirSync(this.dir)) rmSync(join(this.dir, name), { force: true });
  }

  /** The recorded workers still running. */
  private live(): { pid: number; started: string }[] {
    return readdirSync(this.dir)
      .filter((name) => /^\d+$/.test(name))
      .map((name) => ({ pid: Number(name), started: readFileSync(join(this.dir, name), 'utf8') }))
      .filter(({ pid, started }) => startTime(pid) === started && this.isWorker(pid));
  }

  /** Whether `pid` runs this bundle's daemon-worker: a record naming any other process is neither waited for nor killed. */
  private isWorker(pid: number): boolean {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      return false;
    }
    const at = args.indexOf(this.bundle);
    return at > 0 && args[at + 1] === 'daemon-worker';
  }
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. Undefined once it exited. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // A zombie has exited; its new parent may be slow to reap it.
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}
