import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentEnv } from './env.js';
import { parseDiagnostics, type Diagnostic, LAUNCHER_DIR } from './spawn.js';
import { waitFor } from './wait.js';

/** A `mesos-log-splitter daemon` of the test's own: its socket and state dir in a temp dir. */
export interface TestDaemon {
  readonly socket: string;
  readonly stateDir: string;
  child: ChildProcess;
  /** Env for a shim that talks to this daemon. */
  shimEnv(mode?: 'auto' | 'daemon' | 'standalone', extra?: Record<string, string>): NodeJS.ProcessEnv;
  /** Starts it (again): resolves once it serves. */
  start(): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Pids of its live workers, as its state dir records them. */
  workerPids(): number[];
  diagnostics(): Diagnostic[];
  stderr(): string;
}

const daemons = new Set<TestDaemon>();
const dirs: string[] = [];
const workersSeen = new Set<number>();

export function makeDaemon(env: Record<string, string> = {}, args: string[] = []): TestDaemon {
  const dir = mkdtempSync(join(tmpdir(), 'mls-daemon-'));
  dirs.push(dir);
  const socket = join(dir, 'run', 'daemon.sock');
  const stateDir = join(dir, 'state');
  let err = '';
  const daemon: TestDaemon = {
    socket,
    stateDir,
    child: undefined as unknown as ChildProcess,
    shimEnv: (mode = 'daemon', extra = {}) => agentEnv({ LOG_SPLITTER_MODE: mode, LOG_SPLITTER_DAEMON_SOCKET: socket, ...env, ...extra }),
    async start() {
      const child = spawn(join(LAUNCHER_DIR, 'mesos-log-splitter'), ['daemon', '--socket', socket, '--state-dir', stateDir, ...args], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: agentEnv(env),
      });
      daemon.child = child;
      child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const serving = err.split('"msg":"daemon serving"').length;
      await waitFor(() => child.exitCode !== null || err.split('"msg":"daemon serving"').length > serving, {
        timeoutMs: 15_000,
        what: 'the daemon to serve',
      });
      if (child.exitCode !== null) throw new Error(`the daemon exited with ${child.exitCode}:\n${err}`);
    },
    async kill(signal) {
      const child = daemon.child;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(signal);
      await exited;
    },
    workerPids() {
      const dir = join(stateDir, 'workers');
      const pids = existsSync(dir) ? readdirSync(dir).map(Number) : [];
      for (const pid of pids) workersSeen.add(pid);
      return pids;
    },
    diagnostics: () => parseDiagnostics(err),
    stderr: () => err,
  };
  daemons.add(daemon);
  return daemon;
}

/** Runs `mesos-log-splitter status ARGS` (async: the test process may be serving the daemon's agent meanwhile). */
export function runStatus(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(join(LAUNCHER_DIR, 'mesos-log-splitter'), ['status', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: agentEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

/** SIGKILLs the daemons and workers the tests started and removes their dirs. */
export function killDaemons(): void {
  for (const daemon of daemons) {
    daemon.workerPids();
    daemon.child?.kill('SIGKILL');
  }
  for (const pid of workersSeen) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  daemons.clear();
  workersSeen.clear();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
