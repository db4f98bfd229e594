// Native rotation: logrotate's names and effects for the directives the helper handles itself, checked against
// real logrotate where the two can be compared.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { numberedLines } from './helpers/data.js';
import { logrotateReference } from './helpers/logrotate.js';
import { keptFiles, listDir, makeSandbox, readKept, readLog } from './helpers/sandbox.js';
import { finalStats, pipeThrough } from './helpers/spawn.js';

const PAGE = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());
/** Four lines of a quarter page fill one file of --max_size=PAGE: line 4k+1 starts rotation k. */
const LINE = PAGE / 4;

/** Pipes lines through the helper at --max_size=PAGE so that exactly `rotations` rotations happen. */
async function rotateNatively(options: string | undefined, rotations: number) {
  const { dir, stdout } = makeSandbox();
  const input = numberedLines(4 * rotations + 1, LINE);
  const { helper, exit } = await pipeThrough(
    { log_filename: stdout, logrotate_options: options, max_size: `${PAGE}B` },
    input,
  );
  expect(exit.code, helper.stderr()).toBe(0);
  expect(finalStats(helper).rotations).toBe(rotations);
  return { dir, stdout, input, helper };
}

/** Name -> permission bits, without the helper's and logrotate's own files. */
function layout(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of listDir(dir).filter((n) => !n.includes('.logrotate.'))) {
    out[name] = (statSync(`${dir}/${name}`).mode & 0o7777).toString(8);
  }
  return out;
}

describe.concurrent('same files as logrotate', () => {
  const cases: Array<[string | undefined, number]> = [
    [undefined, 3],
    ['rotate 3', 5],
    ['rotate 3\ncompress', 5],
    ['rotate 3\ncompress\ndelaycompress', 5],
    ['rotate 1\ncompress\ndelaycompress', 3],
    ['compress', 2],
    ['rotate 2\ncopytruncate', 3],
    ['rotate 2\ncreate 0600', 3],
    ['rotate 2\ncreate', 3],
    ['rotate 4\nmissingok\nnotifempty\nnocompress\nsize 1k', 2],
    ['rotate 2\ncompress\nnocompress', 3],
  ];
  for (const [options, rotations] of cases) {
    it(`${JSON.stringify(options ?? '')} after ${rotations} rotations`, async () => {
      const native = await rotateNatively(options, rotations);
      const reference = logrotateReference(options, rotations, (i) => numberedLines(4, LINE, 'generation', 4 * i));
      expect(layout(native.dir)).toEqual(layout(reference.dir));
      // The kept files, gunzipped and joined oldest first, are the tail of the input.
      const kept = readKept(native.stdout);
      expect(kept.equals(native.input.subarray(native.input.length - kept.length))).toBe(true);
      for (const file of keptFiles(native.stdout)) expect(readLog(file).length).toBeLessThanOrEqual(PAGE);
    });
  }
});

describe.concurrent('directives', () => {
  it('no rotate directive keeps no old file', async () => {
    const { dir, stdout, input } = await rotateNatively(undefined, 4);
    expect(listDir(dir)).toEqual(['stdout', 'stdout.logrotate.conf']);
    expect(readFileSync(stdout).equals(input.subarray(4 * 4 * LINE))).toBe(true);
  });

  it('compress + delaycompress: stdout.1 plain, older ones gzipped', async () => {
    const { dir, stdout, input } = await rotateNatively('rotate 3\ncompress\ndelaycompress', 4);
    expect(listDir(dir)).toEqual(['stdout', 'stdout.1', 'stdout.2.gz', 'stdout.3.gz', 'stdout.logrotate.conf']);
    // Generation k (0-based) held lines 4k..4k+3; after 4 rotations stdout.2.gz holds generation 2.
    expect(readLog(`${stdout}.2.gz`).equals(input.subarray(8 * LINE, 12 * LINE))).toBe(true);
    expect(readLog(`${stdout}.1`).equals(input.subarray(12 * LINE, 16 * LINE))).toBe(true);
  });

  it('copytruncate keeps the live file (same inode)', async () => {
    const { stdout } = makeSandbox();
    writeFileSync(stdout, '');
    const inode = statSync(stdout).ino;
    const input = numberedLines(9, LINE);
    const { exit } = await pipeThrough(
      { log_filename: stdout, logrotate_options: 'rotate 3\ncopytruncate', max_size: `${PAGE}B` },
      input,
    );
    expect(exit.code).toBe(0);
    expect(statSync(stdout).ino).toBe(inode);
    expect(keptFiles(stdout).map((f) => f.slice(stdout.length))).toEqual(['.2', '.1', '']);
    expect(readKept(stdout).equals(input)).toBe(true);
  });

  it('create 0640 gives the new live file that mode', async () => {
    const { dir, stdout } = await rotateNatively('rotate 2\ncreate 0640', 1);
    expect(statSync(stdout).mode & 0o777).toBe(0o640);
    expect(statSync(`${stdout}.1`).mode & 0o777).toBe(0o644);
    expect(listDir(dir)).toEqual(['stdout', 'stdout.1', 'stdout.logrotate.conf']);
  });

  it('maxage removes rotated files older than N days at rotation', async () => {
    const { stdout } = makeSandbox();
    const old = Date.now() / 1000 - 3 * 86_400;
    writeFileSync(`${stdout}.1`, 'three days old\n');
    utimesSync(`${stdout}.1`, old, old);
    writeFileSync(`${stdout}.2`, 'also old\n');
    utimesSync(`${stdout}.2`, old, old);
    const input = numberedLines(5, LINE);
    const { exit } = await pipeThrough(
      { log_filename: stdout, logrotate_options: 'rotate 5\nmaxage 2', max_size: `${PAGE}B` },
      input,
    );
    expect(exit.code).toBe(0);
    // The old generations moved up to .2 and .3 and were then expired; the fresh .1 stays.
    expect(keptFiles(stdout).map((f) => f.slice(stdout.length))).toEqual(['.1', '']);
    expect(readKept(stdout).equals(input)).toBe(true);
  });

  it('an existing live file is appended to and its size counts', async () => {
    const { stdout } = makeSandbox();
    // What the fetcher wrote before the task started: three quarters of a file.
    const fetcher = numberedLines(3, LINE, 'fetcher');
    writeFileSync(stdout, fetcher);
    const input = numberedLines(3, LINE);
    const { helper, exit } = await pipeThrough(
      { log_filename: stdout, logrotate_options: 'rotate 2', max_size: `${PAGE}B` },
      input,
    );
    expect(exit.code).toBe(0);
    expect(finalStats(helper).rotations).toBe(1);
    expect(readFileSync(`${stdout}.1`).equals(Buffer.concat([fetcher, input.subarray(0, LINE)]))).toBe(true);
    expect(readFileSync(stdout).equals(input.subarray(LINE))).toBe(true);
  });
});

describe.concurrent('scripts', () => {
  const hooks = ['firstaction', 'prerotate', 'postrotate', 'lastaction'];
  /** Each hook records its name, its arguments and whether the rotated file exists. */
  const options = (marker: string, rotate: number): string =>
    [
      `rotate ${rotate}`,
      ...hooks.flatMap((hook) => [
        hook,
        `  echo "${hook} [$1] [$2] $# old=$(test -e "$1.1" && cat "$1.1" | wc -c)" >> ${marker}`,
        'endscript',
      ]),
    ].join('\n');

  /** One rotation of four lines, by the helper or by logrotate; the marker's lines with the path as LOG. */
  async function scriptLines(rotate: number, by: 'helper' | 'logrotate'): Promise<string[]> {
    const { dir, stdout } = makeSandbox();
    const marker = `${dir}.marker`;
    const input = numberedLines(5, LINE);
    if (by === 'helper') {
      const { exit } = await pipeThrough(
        { log_filename: stdout, logrotate_options: options(marker, rotate), max_size: `${PAGE}B` },
        input,
      );
      expect(exit.code).toBe(0);
    } else {
      writeFileSync(stdout, input.subarray(0, 4 * LINE));
      const conf = `${stdout}.logrotate.conf`;
      writeFileSync(conf, `"${stdout}" {\n${options(marker, rotate)}\nsize 0\n}`);
      execFileSync('logrotate', ['--state', `${stdout}.logrotate.state`, conf]);
    }
    return readFileSync(marker, 'utf8').replaceAll(stdout, 'LOG').trim().split('\n');
  }

  for (const rotate of [2, 0]) {
    it(`rotate ${rotate}: /bin/sh scripts in logrotate's order; prerotate and postrotate get logrotate's arguments`, async () => {
      const native = await scriptLines(rotate, 'helper');
      const reference = await scriptLines(rotate, 'logrotate');
      expect(native.map((line) => line.split(' ')[0])).toEqual(hooks);
      // postrotate gets the rotated file as $2 and sees it, even with rotate 0 (logrotate removes it afterwards).
      expect(native.slice(1, 3)).toEqual(reference.slice(1, 3));
      expect(native[2]).toBe(`postrotate [LOG] [LOG.1] 2 old=${4 * LINE}`);
      // logrotate hands firstaction/lastaction its raw pattern text ("LOG" with quotes); the helper, the path.
      expect(native[0]).toBe('firstaction [LOG] [] 1 old=');
      expect(native[3]).toMatch(/^lastaction \[LOG\] \[\] 1 old=/);
    });
  }

  it('rotate 0 leaves no old file once postrotate is done', async () => {
    const { dir } = await rotateNatively('postrotate\n  cp "$2" "$2.seen"\nendscript', 2);
    expect(listDir(dir)).toEqual(['stdout', 'stdout.1.seen', 'stdout.logrotate.conf']);
  });

  it('a failing script does not stop rotation', async () => {
    const { dir } = await rotateNatively('rotate 1\nprerotate\n  exit 3\nendscript', 1);
    expect(listDir(dir)).toEqual(['stdout', 'stdout.1', 'stdout.logrotate.conf']);
  });
});
