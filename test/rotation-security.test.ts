// A task owns its sandbox and may plant links, directories and FIFOs there at any moment. The helper runs as root
// when the agent passes no --user; native rotation must then never follow what the task planted. Each case here is a
// plant from issue 13 (or one of its kind), made as `nobody` in a sandbox owned by `nobody`, against a root helper:
// standalone, and served by the daemon's root worker (issue 15), which runs the same rotation.
import { execFileSync } from 'node:child_process';
import {
  chownSync,
  linkSync,
  lstatSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedLines } from './helpers/data.js';
import { killDaemons, makeDaemon, type TestDaemon } from './helpers/daemon.js';
import { makeSandbox } from './helpers/sandbox.js';
import { spawnLogger, type Diagnostic, type PipedProcess } from './helpers/spawn.js';
import { asTask, NOBODY } from './helpers/task.js';
import { isRoot } from './helpers/tmpfs.js';
import { sleep, waitFor } from './helpers/wait.js';

const PAGE = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());
/** Four lines fill a file of --max_size=PAGE: every fifth line starts a rotation. */
const LINE = PAGE / 4;

/** Files outside the sandbox that plants point at: a root-only secret and a root-owned file anyone may read. */
function hostFiles(sandboxDir: string): { secret: string; target: string; secretBytes: Buffer } {
  const base = dirname(sandboxDir);
  const secretBytes = Buffer.from(`SECRET-${process.pid}-${Math.random().toString(36).slice(2)}\n`);
  const secret = join(base, 'secret');
  writeFileSync(secret, secretBytes, { mode: 0o600 });
  const target = join(base, 'target');
  writeFileSync(target, '# a root-owned file the task must not change\n', { mode: 0o644 });
  return { secret, target, secretBytes };
}

/** What must not change in a file outside the sandbox (nlink and ctime may: a hard link in the sandbox is removed). */
function snapshot(file: string): Record<string, unknown> {
  const stats = statSync(file);
  return {
    content: readFileSync(file).toString('hex'),
    mode: stats.mode,
    uid: stats.uid,
    gid: stats.gid,
    mtimeMs: stats.mtimeMs,
    ino: stats.ino,
  };
}

function ifPresent<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}


/**
 * Every regular file under `dir` (not following links), gunzipped where it is gzip; but not `except`'s inode: a hard
 * link planted in the sandbox is that file, not a copy of it.
 */
function sandboxContents(dir: string, except: string): Buffer[] {
  const out: Buffer[] = [];
  const planted = statSync(except).ino;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    // The helper may rotate while this reads: a name listed a moment ago can be gone (its content then is elsewhere).
    const stats = ifPresent(() => lstatSync(path));
    if (stats?.isDirectory()) out.push(...sandboxContents(path, except));
    if (stats === undefined || !stats.isFile() || stats.ino === planted) continue;
    const data = ifPresent(() => readFileSync(path));
    if (data === undefined) continue;
    out.push(data);
    if (data[0] === 0x1f && data[1] === 0x8b) {
      try {
        out.push(gunzipSync(data));
      } catch {
        out.push(data); // a partial .gz: its raw bytes were checked above
      }
    }
  }
  return out;
}

/** A helper whose input the test writes line by line, so that each rotation happens at a known moment. */
class Stream {
  private sent = 0;
  constructor(
    readonly helper: PipedProcess,
    readonly stdout: string,
  ) {}

  /**
   * Writes `count` lines and waits until the last is in the live file (a regular file, never through a link), unless
   * `land` is false.
   */
  async lines(count: number, land = true): Promise<void> {
    const lines = numberedLines(count, LINE, 'line', this.sent);
    this.sent += count;
    await this.helper.write(lines);
    if (!land) return;
    const last = lines.subarray(-LINE);
    await waitFor(
      () => {
        try {
          return lstatSync(this.stdout).isFile() && readFileSync(this.stdout).subarray(-LINE).equals(last);
        } catch {
          return false;
        }
      },
      { what: `line ${this.sent - 1} in the live file` },
    );
  }
}

interface Plant {
  name: string;
  options: string;
  /** Lines written before the plant: 5 make one rotation, 9 two. */
  before: number;
  /** Waits for background work of the rotations before the plant (compression). */
  ready?: (dir: string) => boolean;
  /** Shell run as nobody in the sandbox; SECRET and TARGET are the host files' paths. */
  task?: string;
  /** A plant the task could make only where fs.protected_hardlinks is 0: made here as root. */
  root?: (dir: string, host: { secret: string; target: string }) => void;
  /**
   * A plant between the move of the live file and its compression, by a postrotate script (run by the helper, as
   * root): the window a task racing the helper would aim for, made deterministic. `$2` is `stdout.1`.
   */
  postrotate?: string;
  /** Files of the plant; the helper's diagnostics must name one when it refuses or replaces it. */
  refused: string[];
}

const plants: Plant[] = [
  {
    name: 'copytruncate: stdout.1 a link to a root-owned file, stdout.2 a directory',
    options: 'rotate 2\ncopytruncate',
    before: 5,
    task: 'rm -f stdout.1 stdout.2; mkdir -p stdout.2/x; ln -s "$TARGET" stdout.1',
    refused: ['stdout.1', 'stdout.2'],
  },
  {
    name: 'create 0666 nobody nogroup: the live file a link, stdout.1 and stdout.2 directories',
    options: 'rotate 2\ncreate 0666 nobody nogroup',
    before: 5,
    task: 'rm -f stdout.1 stdout.2; mkdir -p stdout.1/x stdout.2/x; rm stdout; ln -s "$TARGET" stdout',
    refused: ['stdout', 'stdout.1', 'stdout.2'],
  },
  {
    name: 'compress: stdout.1.gz a link to a root-owned file, stdout.2.gz a directory',
    options: 'rotate 2\ncompress',
    before: 5,
    ready: (dir) => readdirSync(dir).includes('stdout.1.gz') && !readdirSync(dir).includes('stdout.1'),
    task: 'rm -f stdout.1.gz; mkdir stdout.2.gz; touch stdout.2.gz/keep; ln -s "$TARGET" stdout.1.gz',
    refused: ['stdout.1.gz', 'stdout.2.gz'],
  },
  {
    name: 'compress + delaycompress: stdout.1 a link to a root-only file',
    options: 'rotate 9\ncompress\ndelaycompress',
    before: 5,
    task: 'rm stdout.1; ln -s "$SECRET" stdout.1',
    refused: ['stdout.1'],
  },
  {
    name: 'copytruncate: the live file a link to a root-only file',
    options: 'rotate 2\ncopytruncate',
    before: 5,
    task: 'rm stdout; ln -s "$SECRET" stdout',
    refused: ['stdout'],
  },
  {
    name: 'compress + delaycompress: stdout.1 a hard link to a root-only file',
    options: 'rotate 9\ncompress\ndelaycompress',
    before: 5,
    root: (dir, { secret }) => {
      rmSync(join(dir, 'stdout.1'));
      linkSync(secret, join(dir, 'stdout.1'));
    },
    refused: ['stdout.1'],
  },
  {
    name: 'the live file a hard link to a root-owned file',
    options: 'rotate 2',
    before: 5,
    root: (dir, { target }) => {
      rmSync(join(dir, 'stdout'));
      linkSync(target, join(dir, 'stdout'));
    },
    refused: ['stdout'],
  },
  {
    name: 'compress: stdout.1 swapped for a link to a root-only file before compression',
    options: 'rotate 3\ncompress',
    before: 1,
    postrotate: 'rm "$2"; ln -s "$SECRET" "$2"',
    refused: ['stdout.1'],
  },
  {
    name: 'compress: stdout.1 swapped for a hard link to a root-only file before compression',
    options: 'rotate 3\ncompress',
    before: 1,
    postrotate: 'rm "$2"; ln "$SECRET" "$2"',
    refused: ['stdout.1'],
  },
  {
    name: 'compress + delaycompress: stdout.1 a FIFO nobody writes',
    options: 'rotate 3\ncompress\ndelaycompress',
    before: 5,
    task: 'rm stdout.1; mkfifo stdout.1',
    refused: ['stdout.1'],
  },
];

let daemon: TestDaemon | undefined;
beforeAll(async () => {
  if (!isRoot()) return;
  daemon = makeDaemon();
  await daemon.start();
});
afterAll(killDaemons);

const MODES = ['standalone', 'daemon'] as const;
/** What the stream logged: the helper's stderr standalone, the daemon's log lines for this stream in daemon mode. */
const streamDiagnostics = (mode: (typeof MODES)[number], helper: PipedProcess, stdout: string): Diagnostic[] =>
  mode === 'standalone' ? helper.diagnostics() : daemon!.diagnostics().filter((d) => d.log_filename === stdout);

describe.skipIf(!isRoot()).concurrent.each(MODES)('planted links, hard links and FIFOs (root helper, task nobody, %s)', (mode) => {
  for (const plant of plants) {
    it(plant.name, async () => {
      const { dir, stdout } = makeSandbox();
      chownSync(dir, NOBODY, NOBODY);
      const host = hostFiles(dir);
      const before = { secret: snapshot(host.secret), target: snapshot(host.target) };
      const script = `SECRET='${host.secret}'; TARGET='${host.target}'; `;
      const postrotate = plant.postrotate === undefined ? '' : `\npostrotate\n${script}${plant.postrotate}\nendscript`;
      const options = `${plant.options}${postrotate}`;
      const env = mode === 'daemon' ? daemon!.shimEnv('daemon') : undefined;
      const helper = await spawnLogger({ log_filename: stdout, logrotate_options: options, max_size: `${PAGE}B` }, { env });
      const stream = new Stream(helper, stdout);

      await stream.lines(plant.before);
      if (plant.ready !== undefined) await waitFor(() => plant.ready!(dir), { what: 'the rotations before the plant' });
      if (plant.task !== undefined) {
        asTask(dir, `${script}${plant.task}`);
      }
      plant.root?.(dir, host);
      const unharmed = (): void => {
        expect({ secret: snapshot(host.secret), target: snapshot(host.target) }).toEqual(before);
        for (const data of sandboxContents(dir, host.secret)) expect(data.includes(host.secretBytes)).toBe(false);
      };
      // A line, then a pause: the writer checks the live file's identity once a second and reopens it when replaced.
      await stream.lines(1, false);
      await sleep(1100);
      // Then three rotations over the plant, and more lines: the sandbox keeps getting them.
      await stream.lines(11);
      unharmed();
      await stream.lines(6);
      await helper.end();
      const exit = await helper.exited;

      expect(exit.code, helper.stderr()).toBe(0);
      expect(exit.afterEndMs).toBeLessThan(5000);
      unharmed();
      // The refusal is logged, naming the file.
      const names = plant.refused.map((name) => join(dir, name));
      const named = streamDiagnostics(mode, helper, stdout).filter((d) => names.includes(String(d.file ?? d.path)));
      expect(named.length, mode === 'standalone' ? helper.stderr() : daemon!.stderr()).toBeGreaterThan(0);
    });
  }
});

describe.skipIf(!isRoot())('what the helper compresses', () => {
  it("a file of another owner put in place of stdout.1 before compression is not compressed", async () => {
    const { dir, stdout } = makeSandbox();
    chownSync(dir, NOBODY, NOBODY);
    const swap = 'f="$2"; rm "$f"; echo "not the log\'s" > "$f"; chown 4242:4242 "$f"; chmod 600 "$f"';
    const helper = await spawnLogger({
      log_filename: stdout,
      logrotate_options: `rotate 3\ncompress\npostrotate\n${swap}\nendscript`,
      max_size: `${PAGE}B`,
    });
    const stream = new Stream(helper, stdout);
    await stream.lines(13);
    await helper.end();
    expect((await helper.exited).code, helper.stderr()).toBe(0);
    expect(readdirSync(dir).filter((name) => name.endsWith('.gz'))).toEqual([]);
    expect(statSync(`${stdout}.1`).uid).toBe(4242);
    const refused = helper.diagnostics().filter((d) => d.file === `${stdout}.1`);
    expect(refused.map((d) => d.reason)).toContain("owned by uid 4242, not the log's owner");
  });
});
