// Mesos's own tests of the logrotate container logger (src/tests/container_logger_tests.cpp), without Mesos: the
// task is the same shell loop, writing into the pipe's write end; the helper gets the agent's argv and environment.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { keptFiles, kib, listDir, makeSandbox, readKept } from './helpers/sandbox.js';
import { spawnLogger, type LoggerFlags } from './helpers/spawn.js';
import { isRoot } from './helpers/tmpfs.js';
import { waitFor } from './helpers/wait.js';

/** The task command of Mesos's tests: N lines of 1025 bytes. */
const task = (lines: number): string =>
  `i=0; while [ $i -lt ${lines} ]; do printf '%-1024d\\n' $i; i=$((i+1)); done`;

/** What the task writes, computed independently of the shell. */
const taskOutput = (lines: number): Buffer =>
  Buffer.from(Array.from({ length: lines }, (_, i) => `${String(i).padEnd(1024)}\n`).join(''));

/** Runs the task with its stdout on the helper's pipe, as the agent wires a container to its logger. */
async function runTask(flags: LoggerFlags, lines: number, uid?: number) {
  const helper = await spawnLogger(flags);
  const writer = helper.spawnWriter('/bin/sh', ['-c', task(lines)], uid === undefined ? {} : { uid, gid: uid });
  const [taskCode] = (await once(writer, 'exit')) as [number | null];
  const exit = await helper.exited;
  expect(taskCode).toBe(0);
  expect(exit.code, helper.stderr()).toBe(0);
  // Mesos waits 5 s for its helpers once the task has gone.
  expect(exit.afterEndMs).toBeLessThan(2000);
  return helper;
}

function expectKeptTail(log: string, lines: number): void {
  const input = taskOutput(lines);
  const kept = readKept(log);
  expect(kept.length).toBeGreaterThan(0);
  expect(kept.equals(input.subarray(input.length - kept.length))).toBe(true);
}

describe('Mesos container logger scenarios', () => {
  it('RotateInSandbox: 2MB files, rotate 4, N=11264', async () => {
    const { dir, stdout } = makeSandbox();
    await runTask({ log_filename: stdout, logrotate_options: 'rotate 4', max_size: '2MB' }, 11264);

    expect(kib(stdout)).toBeGreaterThanOrEqual(1024);
    expect(kib(stdout)).toBeLessThanOrEqual(1050);
    for (let i = 1; i <= 4; i++) {
      expect(kib(`${stdout}.${i}`), `stdout.${i}`).toBeGreaterThanOrEqual(2040);
      expect(kib(`${stdout}.${i}`), `stdout.${i}`).toBeLessThanOrEqual(2048);
    }
    expect(existsSync(`${stdout}.5`)).toBe(false);
    expect(listDir(dir)).toEqual(['stdout', 'stdout.1', 'stdout.2', 'stdout.3', 'stdout.4', 'stdout.logrotate.conf']);
    expectKeptTail(stdout, 11264);
  });

  it('CustomRotateOptions: a postrotate script runs and the conf is in the sandbox', async () => {
    const { dir, stdout } = makeSandbox();
    const touched = join(dirname(dir), 'CustomRotateOptions');
    await runTask(
      { log_filename: stdout, logrotate_options: `postrotate\n touch ${touched}\nendscript`, max_size: '2MB' },
      2048,
    );
    expect(existsSync(join(dir, 'stdout.logrotate.conf'))).toBe(true);
    expect(existsSync(touched)).toBe(true);
    // No `rotate` directive: logrotate keeps no old file.
    expect(keptFiles(stdout)).toEqual([stdout]);
  });

  describe.skipIf(!isRoot())('RotateWithSwitchUser (needs root)', () => {
    const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());

    for (const switchUser of [true, false]) {
      it(`switch_user=${switchUser}: files owned by ${switchUser ? 'the task user' : 'root'}`, async () => {
        const { dir, stdout } = makeSandbox();
        // The agent chowns the sandbox to the task user when it switches user.
        if (switchUser) chownSync(dir, nobody, nobody);
        const owner = switchUser ? nobody : 0;
        await runTask(
          {
            log_filename: stdout,
            logrotate_options: 'rotate 4',
            max_size: '2MB',
            user: switchUser ? 'nobody' : undefined,
          },
          3072,
          switchUser ? nobody : undefined,
        );
        expect(statSync(stdout).uid).toBe(owner);
        expect(kib(stdout)).toBeGreaterThanOrEqual(1024);
        expect(kib(stdout)).toBeLessThanOrEqual(1050);
        expect(kib(`${stdout}.1`)).toBeGreaterThanOrEqual(2040);
        expect(kib(`${stdout}.1`)).toBeLessThanOrEqual(2048);
        expect(existsSync(`${stdout}.2`)).toBe(false);
        for (const name of ['stdout.1', 'stdout.logrotate.conf']) {
          expect(statSync(join(dir, name)).uid, name).toBe(owner);
        }
        expectKeptTail(stdout, 3072);
      });
    }

    it('switch_user=true: uid, gid and supplementary groups are all the task user\'s', async () => {
      const { dir, stdout } = makeSandbox();
      chownSync(dir, nobody, nobody);
      const helper = await spawnLogger({ log_filename: stdout, max_size: '2MB', user: 'nobody' });
      await helper.write('a line\n');
      await waitFor(() => existsSync(stdout) && statSync(stdout).size > 0);
      const status = readFileSync(`/proc/${helper.pid}/status`, 'utf8');
      const ids = (field: string): string[] => new RegExp(`^${field}:(.*)$`, 'm').exec(status)![1].trim().split(/\s+/);
      const groups = execFileSync('id', ['-G', 'nobody'], { encoding: 'utf8' }).trim().split(' ');
      expect(ids('Uid')).toEqual(Array(4).fill(String(nobody)));
      expect(ids('Gid')).toEqual(Array(4).fill(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim()));
      expect(ids('Groups').sort()).toEqual(groups.sort());
      await helper.end();
      expect((await helper.exited).code).toBe(0);
    });

    it('switch_user=true: the helper cannot write a sandbox the task user cannot write', async () => {
      const { dir, stdout } = makeSandbox();
      const helper = await spawnLogger({ log_filename: stdout, max_size: '2MB', user: 'nobody' });
      await helper.write('a line\n');
      await helper.end();
      const exit = await helper.exited;
      // The helper runs as nobody: a root-owned 0755 sandbox refuses its files, and it still drains and exits 0.
      expect(exit.code).toBe(0);
      expect(listDir(dir)).toEqual([]);
      expect(helper.diagnostics().some((d) => d.level >= 50 && /EACCES/.test(String(d.err)))).toBe(true);
    });
  });
});
