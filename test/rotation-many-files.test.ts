// A task can keep every old file (`rotate -1`, or a large count) and plant as many as it likes: each rotation then
// renames every one, as logrotate does. That may slow the task's own stream, but the helper must still be gone within
// 5 s of EOF (the agent's limit), keep every byte, and never move the live file onto an old one.
import { execFileSync } from 'node:child_process';
import {
  chownSync,
  closeSync,
  existsSync,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chunks, numberedLines } from './helpers/data.js';
import { makeSandbox } from './helpers/sandbox.js';
import { spawnLogger } from './helpers/spawn.js';
import { asTask, NOBODY } from './helpers/task.js';
import { isRoot } from './helpers/tmpfs.js';
import { sleep, waitFor } from './helpers/wait.js';

const PLANTED = 30_000;
const MAX_SIZE = 64 * 1024;
const LINE = 1024;
const PAGE = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());

/** The live file and the old files (`stdout.<N>`, planted or rotated), not the helper's conf. */
const logFiles = (dir: string): string[] => readdirSync(dir).filter((name) => /^stdout(\.\d+)?$/.test(name));

/** Every line in the log files of `dir`, sorted. */
function linesIn(dir: string): string[] {
  const lines: string[] = [];
  for (const name of logFiles(dir)) {
    const text = readFileSync(join(dir, name), 'latin1');
    if (text !== '') lines.push(...text.replace(/\n$/, '').split('\n'));
  }
  return lines.sort();
}

const sortedLines = (input: Buffer): string[] => input.toString('latin1').replace(/\n$/, '').split('\n').sort();

/** A sandbox of nobody's holding `stdout.1` … `stdout.<PLANTED>`, empty, planted by the task. */
function plantedSandbox(): { dir: string; stdout: string } {
  const sandbox = makeSandbox();
  chownSync(sandbox.dir, NOBODY, NOBODY);
  asTask(sandbox.dir, `seq -f 'stdout.%.0f' 1 ${PLANTED} | xargs touch`);
  return sandbox;
}

describe.skipIf(!isRoot())(`rotate -1 over ${PLANTED} planted files (root helper, task nobody)`, () => {
  it('1 MiB at --max_size=64KB: exit within 5 s of EOF, every byte kept, no old file overwritten', async () => {
    const { dir, stdout } = plantedSandbox();
    const input = numberedLines(1024, LINE);
    const helper = await spawnLogger({ log_filename: stdout, logrotate_options: 'rotate -1', max_size: '64KB' });
    for (const chunk of chunks(input, 64 * 1024)) await helper.write(chunk);
    await helper.end();
    const exit = await helper.exited;

    expect(exit.code, helper.stderr()).toBe(0);
    expect(exit.afterEndMs).toBeLessThan(5000);
    expect(linesIn(dir)).toEqual(sortedLines(input));
    const empty = logFiles(dir).filter((name) => lstatSync(join(dir, name)).size === 0);
    expect(empty).toHaveLength(PLANTED);
    const unfinished = helper.diagnostics().find((d) => /still moving up/.test(d.msg));
    expect(unfinished?.remaining, helper.stderr()).toBeGreaterThan(0);
  }, 120_000);

  it('a shift spread over several rotations ends as one logrotate shift: every planted file one up', async () => {
    const { dir, stdout } = plantedSandbox();
    const helper = await spawnLogger({ log_filename: stdout, logrotate_options: 'rotate -1', max_size: '64KB' });
    // A file's worth at a time, each written before the next is sent (so each starts one rotation), paced, until the
    // live file has moved: the stream goes on while the old files move, and no second rotation starts.
    let sent = 0;
    while (!existsSync(`${stdout}.${PLANTED + 1}`) || (sizeOf(`${stdout}.1`) ?? 0) === 0) {
      const file = numberedLines(MAX_SIZE / LINE, LINE, 'line', sent);
      await helper.write(file);
      sent += MAX_SIZE / LINE;
      await waitFor(() => endsWith(stdout, file.subarray(-LINE)), { timeoutMs: 10_000, what: `line ${sent - 1}` });
      await sleep(100);
      if (sent > 400 * (MAX_SIZE / LINE)) throw new Error(`the live file never moved:\n${helper.stderr()}`);
    }
    await helper.end();
    expect((await helper.exited).code, helper.stderr()).toBe(0);

    const names = logFiles(dir).sort((a, b) => index(a) - index(b));
    expect(names).toEqual(['stdout', ...Array.from({ length: PLANTED + 1 }, (_, i) => `stdout.${i + 1}`)]);
    const sizes = names.map((name) => lstatSync(join(dir, name)).size);
    // Everything before the rotation in stdout.1 (more than --max_size: it grew while the files moved), the planted
    // files one up, the rest in the live file.
    expect(sizes[1]).toBeGreaterThan(MAX_SIZE);
    expect(sizes.slice(2).every((size) => size === 0)).toBe(true);
    expect(sizes[0] + sizes[1]).toBe(sent * LINE);
    expect(linesIn(dir)).toEqual(sortedLines(numberedLines(sent, LINE)));
  }, 120_000);
});

/** Whether `file` ends with `tail`; false while it is missing (between two steps of a rotation). */
function endsWith(file: string, tail: Buffer): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const at = fstatSync(fd).size - tail.length;
    const end = Buffer.alloc(tail.length);
    return at >= 0 && readSync(fd, end, 0, tail.length, at) === tail.length && end.equals(tail);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A file's size; undefined while the name is missing (between two renames of a rotation). */
function sizeOf(file: string): number | undefined {
  try {
    return lstatSync(file).size;
  } catch {
    return undefined;
  }
}

const index = (name: string): number => (name === 'stdout' ? 0 : Number(name.slice('stdout.'.length)));

describe('the time after EOF', () => {
  it('no rotation starts once it is up: the rest goes into the live file', async () => {
    const { dir, stdout } = makeSandbox();
    // The second rotation waits for the first's postrotate until the limit kills it, and then does not move the file.
    const helper = await spawnLogger({
      log_filename: stdout,
      logrotate_options: 'rotate 2\npostrotate\nsleep 20\nendscript',
      max_size: `${PAGE}B`,
    });
    const input = numberedLines(9, PAGE / 4);
    await helper.write(input);
    await waitFor(() => existsSync(`${stdout}.1`), { what: 'the first rotation' });
    await helper.end();
    const exit = await helper.exited;

    expect(exit.code, helper.stderr()).toBe(0);
    expect(exit.afterEndMs).toBeLessThan(5000);
    expect(logFiles(dir).sort()).toEqual(['stdout', 'stdout.1']);
    expect(readFileSync(`${stdout}.1`).equals(input.subarray(0, PAGE))).toBe(true);
    expect(readFileSync(stdout).equals(input.subarray(PAGE))).toBe(true);
    expect(helper.diagnostics().some((d) => /the time after EOF is up; no more rotations/.test(d.msg))).toBe(true);
  });
});
