import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { promisify } from 'node:util';
import { waitFor } from './wait.js';

const execFileAsync = promisify(execFile);

const JOURNALD_BIN = ['/lib/systemd/systemd-journald', '/usr/lib/systemd/systemd-journald'].find((path) =>
  existsSync(path),
);

/** What journalctl -o json gives for one entry: strings, or byte arrays for values it does not print as text. */
export type JournalEntry = Record<string, string | number[] | null>;

// Directories journald creates for volatile journals; removed again once empty (journald recreates them).
const RUN_LOG = ['/run/log/journal', '/run/log'];
let instances = 0;

// A test worker that dies without running afterAll must not leave a journald behind.
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * A standalone systemd-journald of our own: a journal namespace (`systemd-journald NS`), so it never touches a
 * journald the machine may already run, and tests may kill and stop it freely. Its config (written to
 * /etc/systemd/journald@NS.conf by start()) keeps the journal in /run only and turns off rate limiting; remove()
 * deletes the config, sockets and journal files again.
 */
export class TestJournald {
  readonly namespace: string;
  readonly socket: string;
  readonly streamSocket: string;
  private readonly config: string;
  private process: ChildProcess | undefined;
  private exited: Promise<void> | undefined;

  constructor() {
    if (JOURNALD_BIN === undefined) throw new Error('systemd-journald is not installed (apt-get install systemd)');
    this.namespace = `mlstest${process.pid}x${instances++}`;
    this.socket = `/run/systemd/journal.${this.namespace}/socket`;
    this.streamSocket = `/run/systemd/journal.${this.namespace}/stdout`;
    this.config = `/etc/systemd/journald@${this.namespace}.conf`;
  }

  get running(): boolean {
    return this.process !== undefined;
  }

  /** Starts journald and resolves once its stream socket accepts connections. */
  async start(): Promise<void> {
    if (this.process !== undefined) throw new Error('journald is already running');
    writeFileSync(this.config, '[Journal]\nStorage=volatile\nRateLimitIntervalSec=0\nForwardToSyslog=no\nForwardToWall=no\n');
    const child = spawn(JOURNALD_BIN!, [this.namespace], { stdio: ['ignore', 'ignore', 'pipe'] });
    const stderr: Buffer[] = [];
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    this.process = child;
    running.add(child);
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        running.delete(child);
        resolve();
      }),
    );
    void this.exited.then(() => {
      if (this.process === child) this.process = undefined;
    });
    // A killed instance leaves its socket files behind: wait until a connection succeeds, not just for the file.
    await waitFor(
      async () => {
        if (this.process !== child) throw new Error(`journald exited: ${Buffer.concat(stderr).toString()}`);
        return connects(this.streamSocket);
      },
      { timeoutMs: 10_000, intervalMs: 20, what: `journald ${this.namespace} to listen` },
    );
  }

  /** SIGKILL: no flush, no goodbye, stale sockets left behind. */
  async kill(): Promise<void> {
    await this.signalAndWait('SIGKILL');
  }

  async stop(): Promise<void> {
    await this.signalAndWait('SIGTERM');
  }

  /** SIGSTOP: journald stops reading its sockets, so senders hit a full queue. */
  pause(): void {
    this.process?.kill('SIGSTOP');
  }

  resume(): void {
    this.process?.kill('SIGCONT');
  }

  /** Entries whose fields equal `match` (journalctl matches, ANDed), oldest first. */
  async entries(match: Record<string, string>): Promise<JournalEntry[]> {
    const args = [`--namespace=${this.namespace}`, '-o', 'json', '--all', '--no-pager', '-q'];
    for (const [name, value] of Object.entries(match)) args.push(`${name}=${value}`);
    const { stdout } = await execFileAsync('journalctl', args, { maxBuffer: 256 * 1024 * 1024 });
    return stdout
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as JournalEntry);
  }

  /** Polls until at least `count` entries match (journald writes asynchronously), then returns them all. */
  async waitForEntries(match: Record<string, string>, count: number, timeoutMs = 10_000): Promise<JournalEntry[]> {
    let last: JournalEntry[] = [];
    try {
      return await waitFor(
        async () => {
          last = await this.entries(match);
          return last.length >= count ? last : undefined;
        },
        { timeoutMs, intervalMs: 50, what: `${count} journal entries matching ${JSON.stringify(match)}` },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; got ${last.length}`);
    }
  }

  /** Stops journald if it runs, and removes everything the instance left on the machine. */
  async remove(): Promise<void> {
    if (this.process !== undefined) {
      this.resume();
      await this.signalAndWait('SIGKILL');
    }
    rmSync(this.config, { force: true });
    rmSync(`/run/systemd/journal.${this.namespace}`, { recursive: true, force: true });
    const machineId = readFileSync('/etc/machine-id', 'utf8').trim();
    for (const dir of ['/run/log/journal', '/var/log/journal']) {
      rmSync(`${dir}/${machineId}.${this.namespace}`, { recursive: true, force: true });
    }
    for (const dir of RUN_LOG) {
      try {
        rmdirSync(dir);
      } catch {
        // Not empty: another instance still uses it, and removes it when it is done.
      }
    }
  }

  private async signalAndWait(signal: NodeJS.Signals): Promise<void> {
    const child = this.process;
    if (child === undefined) return;
    child.kill(signal);
    await this.exited;
  }
}

function connects(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ path });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
