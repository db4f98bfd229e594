// The daemon's state dir decides which pids root waits for and kills: it must be root's alone, and a record there
// that names anything but one of our workers is ignored.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killDaemons, makeDaemon } from './helpers/daemon.js';
import { agentEnv } from './helpers/env.js';
import { hasExited } from './helpers/proc.js';
import { LAUNCHER_DIR } from './helpers/spawn.js';

const dirs: string[] = [];
afterAll(() => {
  killDaemons();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const NOBODY = 65534;

describe('--state-dir', () => {
  it.each([
    ['writable by all (0777)', (dir: string) => chmodSync(dir, 0o777)],
    ['writable by its group (0770)', (dir: string) => chmodSync(dir, 0o770)],
    ['owned by nobody', (dir: string) => chownSync(dir, NOBODY, NOBODY)],
  ])('%s: the daemon refuses to start, naming it', (_, spoil) => {
    const dir = mkdtempSync(join(tmpdir(), 'mls-state-'));
    dirs.push(dir);
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir);
    spoil(stateDir);
    const run = spawnSync(join(LAUNCHER_DIR, 'mesos-log-splitter'), ['daemon', '--socket', join(dir, 'run', 'd.sock'), '--state-dir', stateDir], {
      env: agentEnv(),
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(run.status, run.stderr).toBe(1);
    expect(run.stderr).toBe(`mesos-log-splitter daemon: ${stateDir} must be a directory owned by uid 0 and writable by it alone\n`);
    expect(existsSync(join(stateDir, 'workers'))).toBe(false);
  });

  it('a record naming a process that is not one of our workers: neither waited for nor killed', async () => {
    const bystander = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const stat = readFileSync(`/proc/${bystander.pid}/stat`, 'utf8');
      const started = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
      const daemon = makeDaemon();
      mkdirSync(join(daemon.stateDir, 'workers'), { recursive: true, mode: 0o700 });
      writeFileSync(join(daemon.stateDir, 'workers', String(bystander.pid)), started);
      const before = Date.now();
      await daemon.start();
      // A previous daemon's workers are waited for up to 10 s, then killed.
      expect(Date.now() - before).toBeLessThan(5_000);
      expect(hasExited(bystander.pid!)).toBe(false);
      expect(daemon.diagnostics().filter((d) => String(d.msg).includes('previous'))).toEqual([]);
    } finally {
      bystander.kill('SIGKILL');
    }
  });
});
