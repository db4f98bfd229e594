// A task can set its own --logrotate_options (CONTAINER_LOGGER_LOGROTATE_STDOUT_OPTIONS). With `create 4755 root
// root`, a root helper that gave the new live file that mode and then wrote the task's output into it would leave a
// set-uid root program of the task's choosing: writes by root do not clear set-id bits, as anyone else's do. Each
// case writes a real program (/usr/bin/id) as the task's output, then runs what the sandbox holds as `nobody`.
import { execFileSync } from 'node:child_process';
import { chownSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { numberedLines } from './helpers/data.js';
import { agentEnv } from './helpers/env.js';
import { makeSandbox } from './helpers/sandbox.js';
import { spawnLogger, type PipedProcess } from './helpers/spawn.js';
import { NOBODY } from './helpers/task.js';
import { isRoot } from './helpers/tmpfs.js';
import { waitFor } from './helpers/wait.js';

const MAX_SIZE = 64 * 1024;
const LINE = 4096;
/** The task's payload: a program that prints its effective uid when run with `-u`. */
const PROGRAM = readFileSync('/usr/bin/id');

/** What `file`, run as nobody, prints as its effective uid. */
function euidRunningAsNobody(file: string): string {
  const args = [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', file, '-u'];
  return execFileSync('setpriv', args, { encoding: 'utf8' }).trim();
}

/** Every file in the sandbox with a set-user-ID, set-group-ID or sticky bit, with its mode and owner. */
function specialModes(dir: string): string[] {
  return readdirSync(dir)
    .map((name) => ({ name, stats: lstatSync(join(dir, name)) }))
    .filter(({ stats }) => (stats.mode & 0o7000) !== 0)
    .map(({ name, stats }) => `${name} ${(stats.mode & 0o7777).toString(8)} uid ${stats.uid}`);
}

/** Fills the live file to exactly --max_size, so that the program starts a file of its own, then writes it. */
async function writeProgram(helper: PipedProcess, stdout: string): Promise<void> {
  await helper.write(numberedLines(MAX_SIZE / LINE, LINE));
  await helper.write(PROGRAM);
  await waitFor(
    () => {
      try {
        return readFileSync(stdout).equals(PROGRAM);
      } catch {
        return false;
      }
    },
    { what: 'the program alone in the live file' },
  );
}

describe.skipIf(!isRoot())('set-id bits on files of the task output (root helper, sandbox of nobody)', () => {
  it('native create 4755 root root: rotated files are not set-uid root programs', async () => {
    const { dir, stdout } = makeSandbox();
    chownSync(dir, NOBODY, NOBODY);
    // As the audit ran it: refusing root scripts does not make options harmless.
    const helper = await spawnLogger(
      { log_filename: stdout, logrotate_options: 'rotate 3\ncreate 4755 root root', max_size: '64KB' },
      { env: agentEnv({ LOG_SPLITTER_ROOT_SCRIPTS: 'refuse' }) },
    );
    await writeProgram(helper, stdout);
    // The next file's worth moves the program to stdout.1.
    await helper.write(numberedLines(MAX_SIZE / LINE, LINE, 'after'));
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code, helper.stderr()).toBe(0);

    expect(specialModes(dir)).toEqual([]);
    const rotated = lstatSync(`${stdout}.1`);
    expect({ uid: rotated.uid, mode: (rotated.mode & 0o7777).toString(8) }).toEqual({ uid: 0, mode: '755' });
    expect(readFileSync(`${stdout}.1`).subarray(0, PROGRAM.length).equals(PROGRAM)).toBe(true);
    expect(euidRunningAsNobody(`${stdout}.1`)).toBe(String(NOBODY));
    const masked = helper.diagnostics().find((d) => d.file === stdout && d.mode === '4755');
    expect(masked?.given, helper.stderr()).toBe('755');
  });

  it('fallback logrotate creating the live file 4755 root: the helper clears the bits before writing', async () => {
    const { dir, stdout } = makeSandbox();
    chownSync(dir, NOBODY, NOBODY);
    // dateext leaves rotation to root logrotate, which gives the empty file the mode asked (3.21, checked).
    const helper = await spawnLogger({
      log_filename: stdout,
      logrotate_options: 'rotate 3\ncreate 4755 root root\ndateext',
      max_size: '64KB',
    });
    await writeProgram(helper, stdout);
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code, helper.stderr()).toBe(0);

    expect(specialModes(dir)).toEqual([]);
    const live = lstatSync(stdout);
    expect({ uid: live.uid, mode: (live.mode & 0o7777).toString(8) }).toEqual({ uid: 0, mode: '755' });
    expect(euidRunningAsNobody(stdout)).toBe(String(NOBODY));
    const cleared = helper.diagnostics().find((d) => d.path === stdout && d.mode === '4755');
    expect(cleared, helper.stderr()).toBeDefined();
  });
});
