// LOG_SPLITTER_ROOT_SCRIPTS: a task can set its own --logrotate_options, so a helper running as root (no --user)
// runs the task's script blocks as root. `run` (the default) keeps the original's behaviour; `refuse` skips them
// natively and keeps logrotate, which would run them as root, off such options.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { numberedLines } from './helpers/data.js';
import { agentEnv } from './helpers/env.js';
import { listDir, makeSandbox } from './helpers/sandbox.js';
import { finalStats, pipeThrough, type PipedProcess } from './helpers/spawn.js';
import { NOBODY } from './helpers/task.js';
import { isRoot } from './helpers/tmpfs.js';

const PAGE = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());
const LINE = PAGE / 4;
/** About four rotations at --max_size of two pages. */
const INPUT = numberedLines(40, LINE);
const VARIABLE = 'LOG_SPLITTER_ROOT_SCRIPTS';

/** Every hook appends its name and the uid it ran as to `<log>.ran` (the sandbox is the task user's, so any may). */
const SCRIPTS = ['firstaction', 'prerotate', 'postrotate', 'lastaction']
  .map((hook) => `${hook}\n  echo "${hook} $(id -u)" >> "$1.ran"\nendscript`)
  .join('\n');

/** Runs a whole stream as the agent would, with `setting` for the variable (undefined: unset). */
async function run(options: string, setting: string | undefined, user?: string) {
  const { dir, stdout } = makeSandbox();
  chownSync(dir, NOBODY, NOBODY);
  const env = agentEnv(setting === undefined ? {} : { [VARIABLE]: setting });
  if (setting === undefined) delete env[VARIABLE];
  const { helper, exit } = await pipeThrough(
    { log_filename: stdout, logrotate_options: options, max_size: `${2 * PAGE}B`, user },
    INPUT,
    { env },
  );
  expect(exit.code, helper.stderr()).toBe(0);
  expect(finalStats(helper).rotations).toBeGreaterThanOrEqual(3);
  const ran = existsSync(`${stdout}.ran`) ? readFileSync(`${stdout}.ran`, 'utf8').trim().split('\n') : [];
  return { dir, stdout, helper, ran };
}

/** The helper's diagnostics that name the variable. */
const aboutVariable = (helper: PipedProcess) =>
  helper.diagnostics().filter((d) => VARIABLE in d || d.variable === VARIABLE);

describe.skipIf(!isRoot()).concurrent(`${VARIABLE} (root helper unless --user)`, () => {
  it('refuse: native rotation skips every script, says so once naming the hooks, and rotates', async () => {
    const { dir, helper, ran } = await run(`rotate 2\n${SCRIPTS}`, 'refuse');
    expect(ran).toEqual([]);
    expect(listDir(dir)).toEqual(['stdout', 'stdout.1', 'stdout.2', 'stdout.logrotate.conf']);
    const said = aboutVariable(helper);
    expect(said.length, helper.stderr()).toBe(1);
    expect(said[0].hooks).toEqual(['firstaction', 'prerotate', 'postrotate', 'lastaction']);
  });

  for (const setting of ['run', undefined]) {
    it(`${setting ?? 'unset'}: scripts run as root, as under the original`, async () => {
      const { helper, ran } = await run(`rotate 2\n${SCRIPTS}`, setting);
      const rotations = finalStats(helper).rotations;
      expect(ran.filter((entry) => entry === 'postrotate 0').length).toBe(rotations);
      expect(ran).toContain('firstaction 0');
      expect(aboutVariable(helper)).toEqual([]);
    });
  }

  for (const setting of ['refuse', 'run']) {
    it(`--user: scripts run as that user under ${setting}`, async () => {
      const { helper, ran } = await run(`rotate 2\n${SCRIPTS}`, setting, 'nobody');
      expect(ran.filter((entry) => entry === `postrotate ${NOBODY}`).length).toBe(finalStats(helper).rotations);
      expect(ran.every((entry) => entry.endsWith(` ${NOBODY}`))).toBe(true);
      expect(aboutVariable(helper)).toEqual([]);
    });
  }

  it('refuse: options logrotate would handle, with scripts, rotate natively without what is not native', async () => {
    const { dir, helper, ran } = await run(`rotate 2\nstart 0\ndateext\n${SCRIPTS}`, 'refuse');
    expect(ran).toEqual([]);
    // Native names (`stdout.1`), not logrotate's with `start 0` and `dateext`.
    expect(listDir(dir)).toEqual(['stdout', 'stdout.1', 'stdout.2', 'stdout.logrotate.conf']);
    const said = aboutVariable(helper);
    expect(said.length, helper.stderr()).toBe(1);
    expect(said[0].commands).toEqual(['firstaction', 'prerotate', 'postrotate', 'lastaction']);
    expect(said[0].ignored).toEqual(["directive 'start'", "directive 'dateext'"]);
    expect(helper.diagnostics().find((d) => 'rotation' in d)?.rotation).toBe('native');
  });

  it('refuse: compresscmd is a command too: logrotate does not run it as root', async () => {
    const { dir } = makeSandbox();
    const marker = `${dir}.ran`;
    // A compressor that records who ran it, then compresses as gzip would (stdin to stdout).
    const compressor = `${dir}.compressor`;
    writeFileSync(compressor, `#!/bin/sh\nid -u >> "${marker}"\nexec gzip "$@"\n`, { mode: 0o755 });
    const { helper } = await run(`rotate 2\ncompress\ncompresscmd ${compressor}`, 'refuse');
    expect(existsSync(marker)).toBe(false);
    expect(aboutVariable(helper)[0]?.commands, helper.stderr()).toEqual(['compresscmd']);
  });

  it('refuse: logrotate still runs on options that name no command', async () => {
    const { dir, helper } = await run('rotate 2\nstart 0', 'refuse');
    expect(listDir(dir).filter((name) => /^stdout\.\d+$/.test(name))).toEqual(['stdout.0', 'stdout.1']);
    expect(helper.diagnostics().find((d) => 'rotation' in d)?.rotation).toBe('logrotate');
  });

  it('an invalid value is an error naming the variable and value, and scripts are refused', async () => {
    const { helper, ran } = await run(`rotate 2\n${SCRIPTS}`, 'Refuse ');
    expect(ran).toEqual([]);
    const error = helper.diagnostics().find((d) => d.variable === VARIABLE);
    expect(error, helper.stderr()).toMatchObject({ level: 50, value: 'Refuse ' });
    expect(error?.msg).toContain(`${VARIABLE}='Refuse '`);
  });
});
