// Disk errors never stop the stream: the helper keeps draining the pipe, counts what it drops, logs a rate-limited
// error, and writes again once the disk recovers. A full disk is a tiny tmpfs (root only).
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedLines } from './helpers/data.js';
import { makeSandbox, readKept } from './helpers/sandbox.js';
import { finalStats, spawnLogger, type PipedProcess } from './helpers/spawn.js';
import { isRoot, mountTmpfs, unmount } from './helpers/tmpfs.js';
import { waitFor } from './helpers/wait.js';

/** Fills a filesystem: writes into `file` until ENOSPC. */
function fill(file: string): void {
  const block = Buffer.alloc(64 * 1024, 'f');
  let size = 0;
  try {
    for (;;) {
      writeFileSync(file, block, { flag: size === 0 ? 'w' : 'a' });
      size += block.length;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
}

/** Writes `bytes` of lines; resolves with how long the pipe took them (it must never block for long). */
async function pour(helper: PipedProcess, bytes: number, label: string): Promise<number> {
  const start = performance.now();
  const chunk = numberedLines(64, 1024, label);
  for (let written = 0; written < bytes; written += chunk.length) await helper.write(chunk);
  return performance.now() - start;
}

/** Writes a marker line every 100 ms until it shows up in the kept files. */
async function resumes(helper: PipedProcess, log: string, marker: string): Promise<void> {
  await waitFor(
    async () => {
      await helper.write(`${marker}\n`);
      return readKept(log).includes(marker);
    },
    { intervalMs: 100, timeoutMs: 10_000, what: `'${marker}' in the sandbox` },
  );
}

const sandboxErrors = (helper: PipedProcess) =>
  helper.diagnostics().filter((d) => d.level >= 50 && /sandbox write failed/.test(d.msg));

describe.skipIf(!isRoot())('a full disk (tmpfs of 1 MiB, root only)', () => {
  let mount: string;
  beforeAll(() => {
    mount = join(makeSandbox().dir, 'tmpfs');
    mountTmpfs(mount, 1024 * 1024);
  });
  afterAll(() => unmount(mount));

  it('keeps draining, counts the dropped bytes, logs once, and resumes when space returns', async () => {
    const dir = join(mount, 'sandbox');
    mkdirSync(dir);
    const log = join(dir, 'stdout');
    const helper = await spawnLogger({ log_filename: log, logrotate_options: 'rotate 2', max_size: '64KB' });
    await helper.write('before the disk filled\n');
    await waitFor(() => readKept(log).includes('before the disk filled'));

    fill(join(mount, 'filler'));
    // 4 MiB through a full disk: the pipe keeps flowing (the task is never blocked) and the helper stays up.
    const elapsed = await pour(helper, 4 * 1024 * 1024, 'while full');
    expect(elapsed).toBeLessThan(5000);
    expect(helper.child.exitCode).toBe(null);
    await waitFor(() => sandboxErrors(helper).length > 0, { what: 'the disk error on stderr' });
    const errors = sandboxErrors(helper);
    expect(String(errors[0].err)).toMatch(/ENOSPC|no space/i);
    // Rate-limited: one line for thousands of failed writes.
    expect(errors.length).toBe(1);

    unlinkSync(join(mount, 'filler'));
    await resumes(helper, log, 'after space returned');
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code).toBe(0);
    const stats = finalStats(helper);
    expect(stats.bytesDropped).toBeGreaterThan(3 * 1024 * 1024);
    expect(stats.bytesWritten + stats.bytesDropped).toBe(stats.bytesIn);
    expect(stats.bytesIn).toBeGreaterThan(4 * 1024 * 1024);
    // What reached the disk is in order, and the stream ends with what came after the recovery.
    const kept = readKept(log).toString('latin1');
    expect(kept.indexOf('before the disk filled')).toBeLessThan(kept.indexOf('after space returned'));
    expect(kept.endsWith('after space returned\n')).toBe(true);
  });
});

/** The input's line `i` of `label`, as `wholeLines` writes it: 1000 bytes, so page-sized short writes end inside one. */
const LINE_WIDTH = 1000;
const inputLine = (label: string, i: number): Buffer => numberedLines(1, LINE_WIDTH, label, i);

/** `bytes` of lines in 64 KiB arrivals (a line may span two), numbered on from `first`; returns the next number. */
async function wholeLines(helper: PipedProcess, label: string, first: number, bytes: number): Promise<number> {
  const count = Math.ceil(bytes / LINE_WIDTH);
  const data = numberedLines(count, LINE_WIDTH, label, first);
  for (let at = 0; at < data.length; at += 64 * 1024) await helper.write(data.subarray(at, at + 64 * 1024));
  return first + count;
}

/** Lines of the file that are not a whole line of the input (and whether it ends inside one). */
function brokenLines(file: string): string[] {
  const text = readFileSync(file, 'latin1');
  const lines = text.split('\n');
  const broken = lines.slice(0, -1).filter((line) => {
    const match = /^(\S+) (\d+) /.exec(line);
    return match === null || `${line}\n` !== inputLine(match[1], Number(match[2])).toString('latin1');
  });
  if (lines.at(-1) !== '') broken.push(`(ends inside a line) ${lines.at(-1)!.slice(0, 40)}`);
  return broken.map((line) => (line.length > 60 ? `${line.slice(0, 30)}...${line.slice(-30)} (${line.length})` : line));
}

describe.skipIf(!isRoot())('a disk that fills in the middle of a write (tmpfs, root only)', () => {
  let mount: string;
  beforeAll(() => {
    mount = join(makeSandbox().dir, 'tmpfs');
    mountTmpfs(mount, 1024 * 1024);
  });
  afterAll(() => unmount(mount));

  it('leaves only whole lines of the input in the file once space returns', async () => {
    const dir = join(mount, 'sandbox');
    mkdirSync(dir);
    const log = join(dir, 'stdout');
    const helper = await spawnLogger({ log_filename: log, max_size: '10MB' });
    let next = await wholeLines(helper, 'before', 0, 100 * 1000);
    await waitFor(() => existsSync(log) && statSync(log).size === next * LINE_WIDTH, { what: "the 'before' lines" });

    // Full, but for ~10 pages: the next batch is written in part (a short write ends on a page, inside a line),
    // then the disk refuses the rest.
    const filler = join(mount, 'filler');
    fill(filler);
    truncateSync(filler, statSync(filler).size - 45_000);
    next = await wholeLines(helper, 'full', next, 2 * 1024 * 1024);
    await waitFor(() => sandboxErrors(helper).length > 0, { what: 'the disk error on stderr' });

    unlinkSync(filler);
    await waitFor(
      async () => {
        next = await wholeLines(helper, 'after', next, 64 * 1024);
        return readFileSync(log, 'latin1').includes('\nafter ');
      },
      { intervalMs: 100, timeoutMs: 10_000, what: "'after' lines in the file" },
    );
    await helper.end();
    expect((await helper.exited).code).toBe(0);
    expect(brokenLines(log)).toEqual([]);
    const stats = finalStats(helper);
    expect(stats.bytesDropped).toBeGreaterThan(1024 * 1024);
    expect(stats.bytesWritten + stats.bytesDropped).toBe(stats.bytesIn);
    expect(stats.bytesWritten).toBe(statSync(log).size);
  });
});

describe.concurrent('the sandbox removed mid-stream', () => {
  it('keeps draining without exiting, and writes again once the directory is back', async () => {
    const { dir, stdout } = makeSandbox();
    const helper = await spawnLogger({ log_filename: stdout, logrotate_options: 'rotate 2', max_size: '8KB' });
    await helper.write('first\n');
    await waitFor(() => readKept(stdout).includes('first'));
    rmSync(dir, { recursive: true });
    // Enough to rotate many times: every rotation finds the directory gone.
    const elapsed = await pour(helper, 1024 * 1024, 'while gone');
    expect(elapsed).toBeLessThan(5000);
    expect(helper.child.exitCode).toBe(null);
    await waitFor(() => sandboxErrors(helper).length > 0, { what: 'the error on stderr' });
    expect(String(sandboxErrors(helper)[0].err)).toMatch(/ENOENT/);

    mkdirSync(dir);
    await resumes(helper, stdout, 'back again');
    await helper.end();
    expect((await helper.exited).code).toBe(0);
    expect(finalStats(helper).bytesDropped).toBeGreaterThan(0);
  });

  it('a live file deleted under the helper is recreated, not written into the void', async () => {
    const { stdout } = makeSandbox();
    const helper = await spawnLogger({ log_filename: stdout, logrotate_options: 'rotate 2', max_size: '10MB' });
    await helper.write('first\n');
    await waitFor(() => readKept(stdout).includes('first'));
    // An operator frees space by deleting the live file; no rotation is due for a long time.
    unlinkSync(stdout);
    await resumes(helper, stdout, 'still logging');
    await helper.end();
    expect((await helper.exited).code).toBe(0);
    expect(statSync(stdout).size).toBeGreaterThan(0);
    expect(readFileSync(stdout, 'utf8')).toMatch(/^(still logging\n)+$/);
  });
});
