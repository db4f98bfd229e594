// Directives the helper does not handle natively: it runs the real logrotate on the conf it wrote, as the original
// does, and says so once on stderr.
import { readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { numberedLines } from './helpers/data.js';
import { logrotateReference } from './helpers/logrotate.js';
import { keptFiles, listDir, makeSandbox, readKept } from './helpers/sandbox.js';
import { finalStats, pipeThrough, type PipedProcess } from './helpers/spawn.js';

const MAX = 8192;
// Lines that divide --max_size: no line straddles a cut, whatever the timing.
const LINE = 128;

/** The one diagnostic saying which rotation path was taken. */
function rotationChoice(helper: PipedProcess) {
  const choices = helper.diagnostics().filter((d) => 'rotation' in d);
  expect(choices.length, helper.stderr()).toBe(1);
  return choices[0];
}

describe.concurrent('fallback to logrotate', () => {
  it('`start 0` is not native: logrotate rotates, with its names', async () => {
    const { dir, stdout } = makeSandbox();
    const options = 'rotate 2\nstart 0';
    const input = numberedLines(400, LINE);
    const { helper, exit } = await pipeThrough({ log_filename: stdout, logrotate_options: options, max_size: `${MAX}B` }, input);
    expect(exit.code, helper.stderr()).toBe(0);

    const choice = rotationChoice(helper);
    expect(choice.rotation).toBe('logrotate');
    expect(String(choice.reason)).toContain('start');
    expect(choice.logrotate).toBe('logrotate');

    const rotations = finalStats(helper).rotations;
    expect(rotations).toBeGreaterThan(2);
    const reference = logrotateReference(options, rotations, (i) => numberedLines(50, LINE, 'generation', i));
    const names = (d: string): string[] => listDir(d).filter((name) => !name.includes('.logrotate.'));
    expect(names(dir)).toEqual(names(reference.dir));
    expect(names(dir)).toEqual(['stdout', 'stdout.0', 'stdout.1']);
    // logrotate kept its state next to the conf: it really ran.
    expect(statSync(`${stdout}.logrotate.state`).isFile()).toBe(true);

    // The same guarantees as native rotation: the tail of the input, cut on lines, within --max_size, and (for
    // logrotate's `size` rule) at least --max_size less one page.
    const kept = Buffer.concat([`${stdout}.1`, `${stdout}.0`, stdout].map((f) => readFileSync(f)));
    expect(kept.equals(input.subarray(input.length - kept.length))).toBe(true);
    const threshold = Number(/size (\d+)/.exec(readFileSync(`${stdout}.logrotate.conf`, 'utf8'))![1]);
    for (const file of [`${stdout}.1`, `${stdout}.0`]) {
      const data = readFileSync(file);
      expect(data.length).toBeLessThanOrEqual(MAX);
      expect(data.length).toBeGreaterThanOrEqual(threshold);
      expect(data.at(-1)).toBe(0x0a);
    }
  });

  it('a postrotate script with an unhandled directive runs under logrotate', async () => {
    const { dir, stdout } = makeSandbox();
    const options = `rotate 1\nstart 5\npostrotate\n  echo "$1 $2" >> ${dir}.marker\nendscript`;
    const input = numberedLines(100, LINE);
    const { helper, exit } = await pipeThrough({ log_filename: stdout, logrotate_options: options, max_size: `${MAX}B` }, input);
    expect(exit.code).toBe(0);
    expect(rotationChoice(helper).rotation).toBe('logrotate');
    const runs = readFileSync(`${dir}.marker`, 'utf8').trim().split('\n');
    expect(runs.length).toBe(finalStats(helper).rotations);
    expect(runs[0]).toBe(`${stdout} ${stdout}.5`);
    expect(listDir(dir)).toEqual(['stdout', 'stdout.5', 'stdout.logrotate.conf', 'stdout.logrotate.state']);
  });

  it('native directives say so once, and logrotate leaves no state file', async () => {
    const { dir, stdout } = makeSandbox();
    const input = numberedLines(400, LINE);
    const { helper, exit } = await pipeThrough(
      { log_filename: stdout, logrotate_options: 'rotate 2\ncompress', max_size: `${MAX}B` },
      input,
    );
    expect(exit.code).toBe(0);
    expect(rotationChoice(helper).rotation).toBe('native');
    expect(listDir(dir)).toEqual(['stdout', 'stdout.1.gz', 'stdout.2.gz', 'stdout.logrotate.conf']);
    const kept = readKept(stdout);
    expect(kept.equals(input.subarray(input.length - kept.length))).toBe(true);
    expect(keptFiles(stdout).length).toBe(3);
  });
});
