// Fallback mode runs the real logrotate, as root when the agent passes no --user. The task owns the sandbox and can
// replace `<log>.logrotate.conf` between rotations; logrotate must still read the conf the helper wrote, never what
// the task put at that name (root logrotate would run the task's scripts as root, or rotate host files).
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { numberedLines } from './helpers/data.js';
import { listDir, makeSandbox } from './helpers/sandbox.js';
import { finalStats, spawnLogger } from './helpers/spawn.js';
import { asTask, NOBODY } from './helpers/task.js';
import { isRoot } from './helpers/tmpfs.js';
import { waitFor } from './helpers/wait.js';

const PAGE = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());
/** With --max_size of two pages, eight lines fill the file and the ninth starts a rotation. */
const LINE = PAGE / 4;
const PER_ROTATION = 9;
const OPTIONS = 'rotate 2\nstart 0';

/**
 * A conf of the task's choosing: its postrotate records who ran it, and it rotates a root-owned file outside the
 * sandbox. Leading newline: it may follow other output in the live file.
 */
function hostileConf(stdout: string, marker: string, target: string): string {
  const ownLog = `"${stdout}" {\nrotate 7\nstart 100\npostrotate\nid -u >> "${marker}"\nendscript\nsize 0\n}`;
  return `\n${ownLog}\n"${target}" {\nrotate 1\nsize 0\n}\n`;
}

interface Swap {
  name: string;
  /** Puts the hostile conf in place, as the task (and, for the root-owned file, as what the task controls). */
  plant: (env: { dir: string; stdout: string; conf: string; write: (data: string) => Promise<void> }) => Promise<void>;
}

const swaps: Swap[] = [
  {
    name: 'a link to a root-owned file whose content the task chose',
    plant: async ({ dir, conf }) => {
      const rootOwned = join(dirname(dir), 'chosen.conf');
      writeFileSync(rootOwned, conf, { mode: 0o644 });
      asTask(dir, 'ln -sf ../chosen.conf stdout.logrotate.conf');
    },
  },
  {
    name: 'a link to the live file, which holds the task output (root-owned, 0644)',
    plant: async ({ dir, stdout, conf, write }) => {
      await write(conf);
      await waitFor(() => existsSync(stdout) && readFileSync(stdout, 'utf8').endsWith(conf), {
        what: 'the conf in the live file',
      });
      asTask(dir, 'ln -sf stdout stdout.logrotate.conf');
    },
  },
  {
    name: "a file of the task's own",
    plant: async ({ dir, conf }) => {
      asTask(dir, 'rm stdout.logrotate.conf; printf %s "$CONF" > stdout.logrotate.conf', { CONF: conf });
    },
  },
];

describe.skipIf(!isRoot()).concurrent('fallback: the task replaces the .logrotate.conf (task nobody)', () => {
  const cases = [
    ...swaps.map((swap) => ({ swap, user: undefined })),
    // logrotate then runs as the task's user, and reads the conf through the descriptor all the same.
    { swap: swaps[2], user: 'nobody' },
  ];
  for (const { swap, user } of cases) {
    it(`${user === undefined ? 'root helper' : `--user=${user}`}: ${swap.name}`, async () => {
      const { dir, stdout } = makeSandbox();
      chownSync(dir, NOBODY, NOBODY);
      const base = dirname(dir);
      const marker = join(base, 'ran-as');
      const target = join(base, 'host-file');
      writeFileSync(target, '# a root-owned file the task must not rotate\n', { mode: 0o644 });
      const targetBefore = { content: readFileSync(target, 'utf8'), ino: statSync(target).ino };

      const helper = await spawnLogger({
        log_filename: stdout,
        logrotate_options: OPTIONS,
        max_size: `${2 * PAGE}B`,
        user,
      });
      let sent = 0;
      const lines = async (count: number): Promise<void> => {
        await helper.write(numberedLines(count, LINE, 'line', sent));
        sent += count;
      };
      await lines(PER_ROTATION);
      await waitFor(() => existsSync(`${stdout}.0`), { what: 'the first rotation, with the helper conf' });
      const confBytes = readFileSync(`${stdout}.logrotate.conf`);

      await swap.plant({ dir, stdout, conf: hostileConf(stdout, marker, target), write: (data) => helper.write(data) });
      await lines(3 * PER_ROTATION);
      await helper.end();
      const exit = await helper.exited;
      expect(exit.code, helper.stderr()).toBe(0);

      // No command of the task's ran (as root or at all), and no file outside the sandbox changed.
      expect(existsSync(marker), 'the hostile postrotate ran').toBe(false);
      expect({ content: readFileSync(target, 'utf8'), ino: statSync(target).ino }).toEqual(targetBefore);
      expect(existsSync(`${target}.1`)).toBe(false);
      // logrotate rotated with the helper's conf: `start 0`, `rotate 2`, never the hostile `start 100`.
      expect(finalStats(helper).rotations).toBeGreaterThanOrEqual(3);
      const names = listDir(dir).filter((name) => /^stdout\.\d+$/.test(name));
      expect(names, helper.stderr()).toEqual(['stdout.0', 'stdout.1']);
      // The newest rotated file holds lines written well after the swap: rotation went on.
      const newest = [...readFileSync(`${stdout}.0`, 'latin1').matchAll(/^line (\d+) /gm)].map((m) => Number(m[1]));
      expect(Math.max(...newest)).toBeGreaterThanOrEqual(2 * PER_ROTATION);
      // What the helper wrote at start is as the original writes it; the name now holds what the task left there.
      expect(confBytes.toString()).toBe(`"${stdout}" {\n${OPTIONS}\nsize ${PAGE}\n}`);
    });
  }
});

describe.skipIf(!isRoot())('fallback: no conf written at start', () => {
  it('a directory at the conf name: logrotate is not run, and the stream goes on', async () => {
    const { dir, stdout } = makeSandbox();
    chownSync(dir, NOBODY, NOBODY);
    const base = dirname(dir);
    const marker = join(base, 'ran-as');
    const target = join(base, 'host-file');
    writeFileSync(target, '# a root-owned file the task must not rotate\n', { mode: 0o644 });
    writeFileSync(join(base, 'chosen.conf'), hostileConf(stdout, marker, target), { mode: 0o644 });
    // logrotate given a directory reads each file in it, following links.
    asTask(dir, 'mkdir stdout.logrotate.conf; ln -s ../../chosen.conf stdout.logrotate.conf/chosen');

    const input = numberedLines(4 * PER_ROTATION, LINE);
    const helper = await spawnLogger({ log_filename: stdout, logrotate_options: OPTIONS, max_size: `${2 * PAGE}B` });
    await helper.write(input);
    await helper.end();
    expect((await helper.exited).code, helper.stderr()).toBe(0);

    expect(existsSync(marker), 'the hostile postrotate ran').toBe(false);
    expect(existsSync(`${target}.1`)).toBe(false);
    const messages = helper.diagnostics().map((d) => d.msg);
    expect(messages).toContain('failed to write the logrotate configuration');
    expect(messages).toContain('logrotate is not run (see the start-up log); not rotating');
    // Nothing rotated, nothing lost: the live file holds the whole input.
    expect(readFileSync(stdout).equals(input)).toBe(true);
  });
});
