// The command-line contract: the agent's argv, Mesos byte sizes, and errors that name the flag and its value.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listDir, makeSandbox } from './helpers/sandbox.js';
import { LOGGER_BIN, loggerArgv, spawnPiped, spawnRawLogger, type PipedProcess } from './helpers/spawn.js';

const PAGE = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());
const UNIT: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** Runs the helper with `argv` on an empty stream; returns its exit and output. */
async function run(argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string; helper: PipedProcess }> {
  const helper = await spawnRawLogger(argv, { captureStdout: true });
  await helper.end();
  const { code } = await helper.exited;
  return { code, stdout: helper.stdout(), stderr: helper.stderr(), helper };
}

/**
 * Starts the launcher with arguments given as bytes. Node's spawn sends arguments as UTF-8, so sh's printf makes
 * them instead, from octal escapes (the `x` keeps trailing newlines through the command substitution).
 */
function spawnWithByteArgv(argv: Buffer[]): Promise<PipedProcess> {
  const octal = (bytes: Buffer): string => [...bytes].map((byte) => `\\${byte.toString(8).padStart(3, '0')}`).join('');
  const assignments = argv.map((arg, i) => `a${i}=$(printf '${octal(arg)}x'); a${i}=\${a${i}%x}`);
  const script = `${assignments.join('\n')}\nexec "$0" ${argv.map((_, i) => `"$a${i}"`).join(' ')}`;
  return spawnPiped('/bin/sh', ['-c', script, LOGGER_BIN]);
}

async function expectFlagError(argv: string[], dir: string, ...mentions: string[]): Promise<string> {
  const { code, stdout, stderr } = await run(argv);
  expect(code, stderr).toBe(1);
  expect(stdout).toBe('');
  for (const text of mentions) expect(stderr).toContain(text);
  expect(stderr).toContain('Usage: mesos-logrotate-logger');
  // Nothing is created before the flags are known to be good.
  expect(listDir(dir)).toEqual([]);
  return stderr;
}

describe.concurrent('--max_size: Mesos byte syntax', () => {
  const accepted = ['4097B', '4KB', '512KB', '10MB', '1GB', '1TB', '64kb', '2Mb', '3gB', '8192b'];
  for (const size of accepted) {
    it(`accepts ${size}`, async () => {
      const { dir, stdout: log } = makeSandbox();
      const { code, stderr } = await run(loggerArgv({ log_filename: log, max_size: size }));
      expect(code, stderr).toBe(0);
      const [, digits, unit] = /^(\d+)([a-z]+)$/i.exec(size)!;
      const bytes = Number(digits) * UNIT[unit.toUpperCase()];
      // The conf carries the threshold logrotate would use: max_size less one page, in plain bytes.
      expect(readFileSync(`${log}.logrotate.conf`, 'utf8')).toMatch(new RegExp(`\\nsize ${bytes - PAGE}\\n}$`));
      expect(listDir(dir)).toEqual(['stdout.logrotate.conf']);
    });
  }

  const rejected: Array<[string, string]> = [
    ['0B', 'below one page'],
    [`${PAGE - 1}B`, 'below one page'],
    ['1KB', 'below one page'],
    ['1.5MB', 'a fraction'],
    ['0.5GB', 'a fraction'],
    ['.5MB', 'a fraction'],
    ['10485760', 'a bare number'],
    ['10XB', 'an unknown unit'],
    ['10 MB', 'a space'],
    ['10M', 'a one-letter unit'],
    ['10MiB', 'an IEC unit'],
    ['MB', 'no digits'],
    ['-5MB', 'a sign'],
    ['', 'empty'],
  ];
  for (const [size, why] of rejected) {
    it(`rejects '${size}' (${why})`, async () => {
      const { dir, stdout: log } = makeSandbox();
      await expectFlagError(loggerArgv({ log_filename: log, max_size: size }), dir, 'max_size', `'${size}'`);
    });
  }
});

describe.concurrent('flag errors name the flag and the value, exit 1', () => {
  it('missing --log_filename', async () => {
    const { dir } = makeSandbox();
    await expectFlagError(['--help=false', '--logrotate_path=logrotate', '--max_size=2MB'], dir, 'log_filename');
  });

  it('relative --log_filename', async () => {
    const { dir } = makeSandbox();
    await expectFlagError(loggerArgv({ log_filename: 'sandbox/stdout' }), dir, 'log_filename', 'sandbox/stdout');
  });

  it('--logrotate_path that does not exist', async () => {
    const { dir, stdout: log } = makeSandbox();
    const path = `${dir}-missing/logrotate`;
    await expectFlagError(loggerArgv({ log_filename: log, logrotate_path: path }), dir, 'logrotate_path', path);
  });

  it('--logrotate_path whose --help fails', async () => {
    const { dir, stdout: log } = makeSandbox();
    await expectFlagError(loggerArgv({ log_filename: log, logrotate_path: 'false' }), dir, 'logrotate_path', "'false'");
  });

  it('an unknown flag', async () => {
    const { dir, stdout: log } = makeSandbox();
    await expectFlagError([...loggerArgv({ log_filename: log }), '--max_files=5'], dir, 'max_files', '5');
  });

  it('a duplicate flag', async () => {
    const { dir, stdout: log } = makeSandbox();
    const argv = [...loggerArgv({ log_filename: log }), '--max_size=4MB'];
    await expectFlagError(argv, dir, 'max_size', '2MB', '4MB');
  });

  it('a duplicate boolean flag', async () => {
    const { dir, stdout: log } = makeSandbox();
    await expectFlagError(['--help=false', ...loggerArgv({ log_filename: log })], dir, 'Duplicate', 'help');
  });

  it('a boolean that is not true or false', async () => {
    const { dir, stdout: log } = makeSandbox();
    await expectFlagError(['--help=maybe', ...loggerArgv({ log_filename: log }).slice(1)], dir, 'help', 'maybe');
  });

  it('a value given as a separate argument (the agent always writes --name=value)', async () => {
    const { dir, stdout: log } = makeSandbox();
    await expectFlagError(['--help=false', '--log_filename', log], dir, 'log_filename');
  });

  it('a stray positional argument', async () => {
    const { dir, stdout: log } = makeSandbox();
    await expectFlagError([...loggerArgv({ log_filename: log }), 'extra'], dir, 'extra');
  });

  it('an unknown --user', async () => {
    const { dir, stdout: log } = makeSandbox();
    const { code, stderr } = await run(loggerArgv({ log_filename: log, user: 'no-such-user-mls' }));
    expect(code).toBe(1);
    expect(stderr).toContain('user');
    expect(stderr).toContain('no-such-user-mls');
    expect(listDir(dir)).toEqual([]);
  });
});

describe.concurrent('accepted forms', () => {
  it('--help prints the usage of every flag on stdout and exits 0', async () => {
    const { dir } = makeSandbox();
    const { code, stdout, stderr } = await run(['--help']);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    for (const flag of ['--help', '--log_filename', '--logrotate_options', '--logrotate_path', '--max_size', '--user']) {
      expect(stdout).toContain(flag);
    }
    expect(listDir(dir)).toEqual([]);
  });

  it('--help=true and --help=1 print the usage too', async () => {
    for (const flag of ['--help=true', '--help=1']) {
      const { code, stdout } = await run([flag]);
      expect(code).toBe(0);
      expect(stdout).toContain('--log_filename');
    }
  });

  it('--help=false, --help=0 and --no-help run the helper', async () => {
    for (const flag of ['--help=false', '--help=0', '--no-help']) {
      const { stdout: log } = makeSandbox();
      const { code, stdout, stderr } = await run([flag, `--log_filename=${log}`]);
      expect(code, stderr).toBe(0);
      expect(stdout).toBe('');
      expect(statSync(`${log}.logrotate.conf`).isFile()).toBe(true);
    }
  });

  it('defaults: --max_size=10MB, --logrotate_path=logrotate', async () => {
    const { stdout: log } = makeSandbox();
    const { code } = await run(['--help=false', `--log_filename=${log}`]);
    expect(code).toBe(0);
    expect(readFileSync(`${log}.logrotate.conf`, 'utf8')).toBe(`"${log}" {\n\nsize ${10 * 1024 ** 2 - PAGE}\n}`);
  });

  it('flags in any order, options with real newlines, values holding "="', async () => {
    const { dir, stdout: log } = makeSandbox();
    const options = 'rotate 1\ncompress\n# a comment with = in it\npostrotate\n  echo "a=b" > /dev/null\nendscript';
    const argv = loggerArgv({ log_filename: log, logrotate_options: options, max_size: '8KB' }).reverse();
    const helper = await spawnRawLogger(argv);
    for (let i = 0; i < 200; i++) await helper.write(`line ${i} ${'x'.repeat(80)}\n`);
    await helper.end();
    expect((await helper.exited).code, helper.stderr()).toBe(0);
    expect(readFileSync(`${log}.logrotate.conf`, 'utf8')).toBe(`"${log}" {\n${options}\nsize ${8192 - PAGE}\n}`);
    // The newline-separated directives took effect: one compressed old file.
    expect(listDir(dir)).toEqual(['stdout', 'stdout.1.gz', 'stdout.logrotate.conf']);
  });
});

describe('the .logrotate.conf', () => {
  it('is byte-identical to the original helper, mode 0644, no trailing newline', async () => {
    const { stdout: log } = makeSandbox();
    const options = 'rotate 4\ncompress';
    const { code } = await run(loggerArgv({ log_filename: log, logrotate_options: options, max_size: '2MB' }));
    expect(code).toBe(0);
    const conf = readFileSync(`${log}.logrotate.conf`);
    expect(conf.equals(Buffer.from(`"${log}" {\nrotate 4\ncompress\nsize ${2 * 1024 * 1024 - PAGE}\n}`))).toBe(true);
    expect(statSync(`${log}.logrotate.conf`).mode & 0o777).toBe(0o644);
  });

  it('has an empty line where no options were given', async () => {
    const { stdout: log } = makeSandbox();
    const { code } = await run(loggerArgv({ log_filename: log, max_size: '512KB' }));
    expect(code).toBe(0);
    expect(readFileSync(`${log}.logrotate.conf`, 'utf8')).toBe(`"${log}" {\n\nsize ${512 * 1024 - PAGE}\n}`);
  });

  for (const [how, directives] of [
    ['natively', 'rotate 2'],
    ['through logrotate', 'rotate 2\nshred'],
  ]) {
    it(`keeps options that are not UTF-8 byte for byte, in the conf and in what scripts run (${how})`, async () => {
      const { dir, stdout: log } = makeSandbox();
      const odd = Buffer.from([0xff, 0xfe, 0x20, 0xc3, 0x28]);
      const out = join(dir, '..', 'postrotate-bytes');
      const options = Buffer.concat([
        Buffer.from(`${directives}\n# a comment: `),
        odd,
        Buffer.from("\npostrotate\n  printf '%s' '"),
        odd,
        Buffer.from(`' > '${out}'\nendscript`),
      ]);
      const argv = loggerArgv({ log_filename: log, logrotate_options: '@', max_size: '8KB' }).map((arg) =>
        arg === '--logrotate_options=@' ? Buffer.concat([Buffer.from('--logrotate_options='), options]) : Buffer.from(arg),
      );
      const helper = await spawnWithByteArgv(argv);
      for (let i = 0; i < 200; i++) await helper.write(`line ${i} ${'x'.repeat(80)}\n`);
      await helper.end();
      expect((await helper.exited).code, helper.stderr()).toBe(0);
      // What the original writes: its options' bytes between the quoted path and the size.
      const original = Buffer.concat([Buffer.from(`"${log}" {\n`), options, Buffer.from(`\nsize ${8192 - PAGE}\n}`)]);
      expect(readFileSync(`${log}.logrotate.conf`).toString('hex')).toBe(original.toString('hex'));
      expect(readFileSync(out).toString('hex')).toBe(odd.toString('hex'));
    });
  }

  it('keeps a sandbox path with spaces and non-ASCII characters as it is', async () => {
    const { dir } = makeSandbox();
    const sandbox = join(dir, 'runs', 'exécuteur 1 ✓');
    mkdirSync(sandbox, { recursive: true });
    const log = join(sandbox, 'stdout');
    const helper = await spawnRawLogger(loggerArgv({ log_filename: log, logrotate_options: 'rotate 1', max_size: '4KB' }));
    for (let i = 0; i < 100; i++) await helper.write(`line ${i} ${'x'.repeat(50)}\n`);
    await helper.end();
    expect((await helper.exited).code).toBe(0);
    const names = readdirSync(sandbox, { encoding: 'buffer' }).map((name) => name.toString('hex')).sort();
    const expected = ['stdout', 'stdout.1', 'stdout.logrotate.conf'].map((name) => Buffer.from(name).toString('hex'));
    expect(names).toEqual(expected.sort());
    expect(readFileSync(`${log}.logrotate.conf`).subarray(0, Buffer.byteLength(log) + 2).toString()).toBe(`"${log}"`);
  });
});
