// Byte fidelity: the kept files, joined oldest first, are exactly the tail of what went into the pipe, whatever the
// bytes; rotated files end on a line boundary and never exceed --max_size.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { randomBytes } from './helpers/data.js';
import { keptFiles, makeSandbox, readKept } from './helpers/sandbox.js';
import { catThrough, finalStats, pipeThrough } from './helpers/spawn.js';

const MAX = 8192;

/** Runs `input` through the helper at --max_size=MAX: written by `cat`, or by the test in pseudo-random pieces. */
async function run(input: Buffer, options: string, writer: 'cat' | { seed: number }) {
  const { stdout } = makeSandbox();
  const flags = { log_filename: stdout, logrotate_options: options, max_size: `${MAX}B` };
  let result;
  if (writer === 'cat') {
    result = await catThrough(flags, input);
  } else {
    // Chunk edges fall mid-line and mid-character.
    const sizes = randomBytes(input.length / 64 + 1, writer.seed);
    const pieces: Buffer[] = [];
    for (let offset = 0, i = 0; offset < input.length; i++) {
      const size = 1 + sizes[i % sizes.length] * 97;
      pieces.push(input.subarray(offset, offset + size));
      offset += size;
    }
    result = await pipeThrough(flags, pieces);
  }
  const { helper, exit } = result;
  expect(exit.code, helper.stderr()).toBe(0);
  const stats = finalStats(helper);
  expect(stats.bytesIn).toBe(input.length);
  expect(stats.bytesWritten).toBe(input.length);
  expect(stats.bytesDropped).toBe(0);
  return { stdout, helper };
}

function expectTail(log: string, input: Buffer): void {
  const kept = readKept(log);
  expect(kept.length).toBeGreaterThan(0);
  // Compare as hex only on failure, to keep the message readable.
  if (!kept.equals(input.subarray(input.length - kept.length))) {
    expect(kept.toString('hex')).toBe(input.subarray(input.length - kept.length).toString('hex'));
  }
}

/**
 * Rotated files (not the live one) hold at most --max_size bytes and, unless `paced`, end with a newline. A writer
 * that pauses mid-line for over 50 ms gets that partial line written out (latency wins), so a cut may follow it.
 */
function expectLineCuts(log: string, paced = false): void {
  const rotated = keptFiles(log).filter((file) => file !== log);
  expect(rotated.length).toBeGreaterThan(2);
  for (const file of rotated) {
    const data = readFileSync(file);
    expect(data.length, file).toBeLessThanOrEqual(MAX);
    if (!paced) expect(data.at(-1), `${file} ends with a newline`).toBe(0x0a);
  }
}

const invalidUtf8 = Buffer.from([
  0xff, 0xfe, 0x0a, // never valid
  0xc0, 0xaf, 0x0a, // overlong '/'
  0xe2, 0x82, 0x0a, // truncated euro sign
  0xed, 0xa0, 0x80, 0x0a, // UTF-16 surrogate
  0xf4, 0x90, 0x80, 0x80, 0x0a, // above U+10FFFF
  0x80, 0x80, 0xbf, 0x0a, // stray continuation bytes
  0xef, 0xbb, 0xbf, 0x41, 0x0a, // a BOM mid-stream
]);

const hostile: Record<string, Buffer> = {
  'random binary': randomBytes(200_000, 7),
  'invalid UTF-8': Buffer.concat(Array.from({ length: 3000 }, (_, i) => Buffer.concat([Buffer.from(`${i} `), invalidUtf8]))),
  'NUL bytes': Buffer.from(Array.from({ length: 4000 }, (_, i) => `a\0b\0\0${i}\0\n\0\0\n`).join(''), 'latin1'),
  'CR, CRLF and lone CR': Buffer.from(
    Array.from({ length: 4000 }, (_, i) => `crlf ${i}\r\nlone\rcr ${i}\r\r\n\r\n`).join(''),
  ),
  'ANSI escapes': Buffer.from(
    Array.from({ length: 3000 }, (_, i) => `\x1b[31mred ${i}\x1b[0m \x1b[2K\x1b[1G\x1b]0;title\x07 \x1b[?25l\n`).join(''),
  ),
  'UTF-8 text': Buffer.from(Array.from({ length: 3000 }, (_, i) => `ünïcödé ${i} 日本語 🚀 ‮rtl‬\n`).join('')),
  'empty lines': Buffer.from('\n'.repeat(50_000)),
};

describe.concurrent('byte fidelity through the pipe', () => {
  for (const [name, body] of Object.entries(hostile)) {
    it(`${name}: all files kept, joined = the input`, async () => {
      const input = Buffer.concat([body, Buffer.from('last line without a newline')]);
      const { stdout } = await run(input, 'rotate 1000', 'cat');
      expectTail(stdout, input);
      expectLineCuts(stdout);
      expect(readFileSync(stdout).subarray(-27).toString()).toBe('last line without a newline');
    });
  }

  it('written in pieces whose edges fall mid-line and mid-character', async () => {
    const input = Buffer.concat([hostile['invalid UTF-8'], hostile['UTF-8 text'], randomBytes(100_000, 3)]);
    const { stdout } = await run(input, 'rotate 1000', { seed: 5 });
    expectTail(stdout, input);
    expectLineCuts(stdout, true);
  });

  it('random binary, rotate 3 + compress: the kept files are the tail of the input', async () => {
    const input = randomBytes(300_000, 11);
    const { stdout } = await run(input, 'rotate 3\ncompress', { seed: 3 });
    expect(keptFiles(stdout).map((f) => f.slice(stdout.length))).toEqual(['.3.gz', '.2.gz', '.1.gz', '']);
    expectTail(stdout, input);
  });

  it('lines longer than --max_size are cut at the limit and continue in the next file', async () => {
    const long = (n: number, fill: string): Buffer => Buffer.from(`${fill.repeat(n - 1)}\n`);
    const input = Buffer.concat([
      Buffer.from('short one\n'),
      long(3 * MAX + 100, 'a'),
      Buffer.from('short two\n'),
      long(MAX, 'b'), // exactly one file
      long(MAX + 1, 'c'), // one byte too many
      Buffer.from('short three\n'),
      long(2 * MAX, 'd'), // the last line, still unterminated when EOF comes
    ]).subarray(0, -1);
    const { stdout } = await run(input, 'rotate 1000', 'cat');
    expectTail(stdout, input);
    const files = keptFiles(stdout).map((file) => readFileSync(file));
    for (const data of files) expect(data.length).toBeLessThanOrEqual(MAX);
    // A file ends mid-line only when one line filled it to the limit.
    for (const data of files.slice(0, -1)) if (data.at(-1) !== 0x0a) expect(data.length).toBe(MAX);
    expect(files.filter((data) => data.at(-1) !== 0x0a).length).toBeGreaterThanOrEqual(5);
    // Short lines are never split, and 'short one' is alone: the long line did not share its file.
    expect(files[0].toString()).toBe('short one\n');
    expect(files.some((data) => data.equals(long(MAX, 'b')))).toBe(true);
  });

  it('rotates at the line boundary before --max_size, never past it', async () => {
    // Lines of 1000 bytes: 8 fit in 8192, the 9th would not.
    const input = Buffer.from(Array.from({ length: 100 }, (_, i) => `${String(i).padEnd(999, '-')}\n`).join(''));
    const { stdout } = await run(input, 'rotate 1000', 'cat');
    const sizes = keptFiles(stdout).map((file) => readFileSync(file).length);
    expect(sizes).toEqual([...Array(12).fill(8000), 4000]);
  });
});
