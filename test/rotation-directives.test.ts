// Odd and hostile directive values (issue 13): read as logrotate 3.21 reads them, checked side by side with real
// logrotate on the same files; a rotation costs the files that exist, not the count; the helper exits in time at EOF.
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { chunks, numberedLines } from './helpers/data.js';
import { procStat } from './helpers/proc.js';
import { makeSandbox } from './helpers/sandbox.js';
import { finalStats, pipeThrough, spawnLogger } from './helpers/spawn.js';
import { sleep, waitFor } from './helpers/wait.js';

const PAGE = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());
/** Four lines fill a file of --max_size=PAGE: the fifth starts a rotation. */
const LINE = PAGE / 4;
const DAY_S = 86_400;

/** Old files present before the rotation: name -> age in days. */
type Existing = Record<string, number>;

/** Name -> content (gunzipped) of the sandbox after one rotation, without the helper's and logrotate's own files. */
function contents(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).filter((n) => !n.includes('.logrotate.') && n !== 'stdout').sort()) {
    const data = readFileSync(join(dir, name));
    out[name] = (data[0] === 0x1f && data[1] === 0x8b ? gunzipSync(data) : data).toString().slice(0, 40);
  }
  return out;
}

function plant(dir: string, existing: Existing): void {
  for (const [name, days] of Object.entries(existing)) {
    const file = join(dir, name);
    writeFileSync(file, `old ${name}\n`);
    const at = Date.now() / 1000 - days * DAY_S;
    utimesSync(file, at, at);
  }
}

/** One rotation by the helper: four lines fill the file, the fifth rotates it. */
async function byHelper(options: string, existing: Existing) {
  const { dir, stdout } = makeSandbox();
  plant(dir, existing);
  const { helper, exit } = await pipeThrough(
    { log_filename: stdout, logrotate_options: options, max_size: `${PAGE}B` },
    numberedLines(5, LINE),
  );
  expect(exit.code, helper.stderr()).toBe(0);
  return { files: contents(dir), helper };
}

/** One rotation by logrotate, of the same four lines, on the conf the helper writes (threshold 0). */
function byLogrotate(options: string, existing: Existing): Record<string, string> {
  const { dir, stdout } = makeSandbox();
  plant(dir, existing);
  writeFileSync(stdout, numberedLines(4, LINE));
  const conf = `${stdout}.logrotate.conf`;
  writeFileSync(conf, `"${stdout}" {\n${options}\nsize 0\n}`);
  try {
    execFileSync('logrotate', ['--state', `${stdout}.logrotate.state`, conf], { stdio: 'ignore' });
  } catch {
    // A value logrotate rejects: it says so and rotates nothing.
  }
  return contents(dir);
}

describe.concurrent('edge values, side by side with logrotate 3.21', () => {
  const cases: Array<[string, Existing]> = [
    // strtol saturates at LONG_MAX, whose low 32 bits are -1: keep every old file.
    ['rotate 99999999999999999999', { 'stdout.1': 0, 'stdout.2': 0, 'stdout.7': 0 }],
    ['rotate -1', { 'stdout.1': 0, 'stdout.2': 0 }],
    ['rotate -1\ncompress', { 'stdout.1.gz': 0, 'stdout.5.gz': 0, 'stdout.3': 0 }],
    // ... and LONG_MIN's are 0.
    ['rotate -99999999999999999999', { 'stdout.1': 0, 'stdout.2': 0 }],
    ['rotate 4294967298', { 'stdout.1': 0, 'stdout.2': 0, 'stdout.3': 0 }],
    // Base 0: octal and hex.
    ['rotate 010', { 'stdout.1': 0, 'stdout.7': 0, 'stdout.8': 0, 'stdout.9': 0 }],
    ['rotate 0x2', { 'stdout.1': 0, 'stdout.2': 0, 'stdout.3': 0 }],
    ['rotate +2', { 'stdout.1': 0, 'stdout.2': 0 }],
    ['rotate 0', { 'stdout.1': 0, 'stdout.2': 0 }],
    ['rotate 0\ncompress', { 'stdout.1': 0, 'stdout.1.gz': 0 }],
    ['rotate 2\ncompress', { 'stdout.1': 0, 'stdout.2': 0, 'stdout.1.gz': 0, 'stdout.2.gz': 0 }],
    ['rotate 3\ncompress\ndelaycompress', { 'stdout.1': 0, 'stdout.2.gz': 0 }],
    ['rotate 1\ncompress\ndelaycompress', { 'stdout.1': 0 }],
    // maxage 0 is off, and so is a value whose low 32 bits are 0.
    ['rotate 3\nmaxage 0', { 'stdout.1': 10, 'stdout.2': 10 }],
    ['rotate 3\nmaxage 4294967296', { 'stdout.1': 10, 'stdout.2': 10 }],
    ['rotate 3\nmaxage 0x2', { 'stdout.1': 3, 'stdout.2': 1 }],
    ['rotate 3\nmaxage 2147483647', { 'stdout.1': 10000, 'stdout.2': 1 }],
  ];
  for (const [options, existing] of cases) {
    it(`${JSON.stringify(options)} with ${Object.keys(existing).join(' ')}`, async () => {
      const { files, helper } = await byHelper(options, existing);
      expect(files).toEqual(byLogrotate(options, existing));
      expect(helper.diagnostics().find((d) => d.msg === 'rotating natively')).toBeDefined();
    });
  }

  // logrotate reports these and rotates nothing; the helper leaves them to logrotate, as the original does.
  const rejected = ['rotate -2', 'rotate 2 3', 'rotate 3abc', 'rotate 0x', 'maxage -1', 'maxage 99999999999999999999'];
  for (const options of rejected) {
    it(`${JSON.stringify(options)} is left to logrotate`, async () => {
      const existing = { 'stdout.1': 0 };
      const { files, helper } = await byHelper(options, existing);
      expect(files).toEqual(byLogrotate(options, existing));
      expect(helper.diagnostics().find((d) => d.msg === 'rotating with logrotate')).toBeDefined();
    });
  }
});

describe('cost of a rotation', () => {
  it('rotate 100000: twenty rotations take well under a second each', async () => {
    const { dir, stdout } = makeSandbox();
    const started = Date.now();
    const { helper, exit } = await pipeThrough(
      { log_filename: stdout, logrotate_options: 'rotate 100000', max_size: `${PAGE}B` },
      numberedLines(81, LINE),
    );
    const elapsed = Date.now() - started;
    expect(exit.code, helper.stderr()).toBe(0);
    expect(finalStats(helper).rotations).toBe(20);
    expect(readdirSync(dir).filter((name) => /^stdout\.\d+$/.test(name))).toHaveLength(20);
    // Before, each rotation tried 200,000 renames: about 2 s each.
    expect(elapsed).toBeLessThan(3000);
  });

  it('rotate 99999999999999999999 keeps every file and never spins', async () => {
    const { dir, stdout } = makeSandbox();
    const input = numberedLines(41, LINE);
    const { helper, exit } = await pipeThrough(
      { log_filename: stdout, logrotate_options: 'rotate 99999999999999999999', max_size: `${PAGE}B` },
      input,
    );
    expect(exit.code, helper.stderr()).toBe(0);
    expect(exit.afterEndMs).toBeLessThan(2000);
    expect(readdirSync(dir).filter((name) => /^stdout\.\d+$/.test(name))).toHaveLength(10);
    expect(readFileSync(`${stdout}.10`).equals(input.subarray(0, 4 * LINE))).toBe(true);
  });
});

describe('exit at EOF', () => {
  // Two rotations: the second waits for the first's postrotate when EOF comes.
  it('a postrotate running 4 s after EOF is killed with what it started; the helper exits within 5 s', async () => {
    const { dir, stdout } = makeSandbox();
    const pidFile = join(dir, '..', 'script.pid');
    const helper = await spawnLogger({
      log_filename: stdout,
      logrotate_options: `rotate 2\npostrotate\necho $$ >> ${pidFile}; sleep 20; touch ${pidFile}.done\nendscript`,
      max_size: `${PAGE}B`,
    });
    await helper.write(numberedLines(9, LINE));
    await waitFor(() => existsSync(pidFile), { what: 'the first postrotate' });
    await helper.end();
    const exit = await helper.exited;
    expect(exit.code, helper.stderr()).toBe(0);
    expect(exit.afterEndMs).toBeGreaterThan(3500);
    expect(exit.afterEndMs).toBeLessThan(5000);
    // The first script was killed; the second rotation's was not started.
    const groups = readFileSync(pidFile, 'utf8').trim().split('\n').map(Number);
    expect(groups).toHaveLength(1);
    await sleep(100);
    expect(processesInGroup(groups[0])).toEqual([]);
    expect(finalStats(helper).rotations).toBe(2);
    expect(existsSync(`${pidFile}.done`)).toBe(false);
    expect(helper.diagnostics().some((d) => d.hook === 'postrotate' && /killed/.test(d.msg))).toBe(true);
  });

  it('compression unfinished 4 s after EOF is given up: the partial .gz removed, the plain file kept', async () => {
    const { dir, stdout } = makeSandbox();
    // Incompressible, so that gzip takes several seconds (about 40 MB/s here).
    const size = 384 * 1024 * 1024;
    const body = Buffer.alloc(size);
    for (let offset = 0; offset < size; offset += 65536) randomFillSync(body, offset, 65536);
    for (let offset = 4095; offset < size; offset += 4096) body[offset] = 0x0a;
    const { helper, exit } = await pipeThrough(
      { log_filename: stdout, logrotate_options: 'rotate 1\ncompress', max_size: '384MB' },
      [...chunks(body, 1 << 20), Buffer.from('the next file\n')],
    );
    expect(exit.code, helper.stderr()).toBe(0);
    expect(exit.afterEndMs).toBeLessThan(5000);
    expect(readdirSync(dir).sort()).toEqual(['stdout', 'stdout.1', 'stdout.logrotate.conf']);
    expect(readFileSync(`${stdout}.1`).equals(body)).toBe(true);
    expect(helper.diagnostics().some((d) => d.file === `${stdout}.1` && /compression/.test(d.msg))).toBe(true);
  });
});

/** Processes whose process group is `group`. */
function processesInGroup(group: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return procStat(Number(pid)).pgrp === group && procStat(Number(pid)).state !== 'Z';
      } catch {
        return false;
      }
    })
    .map(Number);
}
