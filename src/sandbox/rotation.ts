import { spawn } from 'node:child_process';
import type { Stats } from 'node:fs';
import { readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../diagnostics.js';
import { RateLimitedLog } from '../diagnostics.js';
import { lookupGroup, lookupUser } from '../system.js';
import { KEEP_ALL, type RotationPolicy, type ScriptHook } from './directives.js';
import { statePath } from './logrotate-conf.js';
import {
  createFresh,
  isMissing,
  lstatRegular,
  openExisting,
  RefusedFile,
  setOwnerAndMode,
} from './sandbox-fs.js';
import { runShellScript } from './shell-script.js';

/** Moves the live file aside. The writer closes it before `rotate()` and reopens it afterwards. */
export interface Rotation {
  rotate(): Promise<void>;
  /**
   * The stream has ended: rotation work still running, or started while the writer flushes, gets a bounded time from
   * now (the agent expects the helper gone 5 s after the task), then is given up.
   */
  streamEnded(): void;
  /** Waits for work that runs after the writer has moved on: compression, postrotate, lastaction. */
  settle(): Promise<void>;
  /**
   * The smallest file size at which a cut may fall on a line boundary. logrotate rotates only at its `size`
   * threshold, so in fallback mode a file must reach it; natively any non-empty file may rotate.
   */
  readonly minFill: number;
}

/** How long after EOF compression and scripts may still run before they are given up. */
export const SETTLE_LIMIT_MS = 4000;
const COPY_CHUNK = 1024 * 1024;
const DAY_MS = 86_400_000;

/** An old file: `<log>.<index>`, or `<log>.<index>.gz`. */
interface Generation {
  index: number;
  gz: boolean;
}

/**
 * logrotate's file handling done in-process: `log` -> `log.1` ... `log.N`, `.gz` where compressed. The task owns the
 * sandbox and the helper may be root, so every file step goes through sandbox-fs: no link is followed, only
 * regular files with one link are moved, read or written, and a step that finds anything else is logged and skipped
 * (the rest of the rotation goes on, so the live file still never outgrows --max_size).
 */
export class NativeRotation implements Rotation {
  readonly minFill = 1;
  private background: Promise<void> = Promise.resolve();
  /** Aborted SETTLE_LIMIT_MS after the stream ended: compression and scripts still running are given up. */
  private readonly abandon = new AbortController();
  private deadline: NodeJS.Timeout | undefined;
  private readonly errors: RateLimitedLog;
  private readonly refusals: RateLimitedLog;
  private readonly createOwner: { uid: number | undefined; gid: number | undefined };
  /** Owners of the files the helper will compress: itself, and whoever owned the live file when it was rotated. */
  private readonly owners = new Set<number>([process.geteuid!()]);
  private readonly dir: string;
  private readonly base: string;

  constructor(
    private readonly logFilename: string,
    private readonly policy: RotationPolicy,
    private readonly log: Logger,
    private readonly scriptTimeoutMs = 60_000,
  ) {
    this.errors = new RateLimitedLog(log);
    this.refusals = new RateLimitedLog(log);
    this.dir = dirname(logFilename);
    this.base = basename(logFilename);
    const { owner, group } = policy.create ?? {};
    this.createOwner = {
      uid: owner === undefined ? undefined : lookupUser(owner).uid,
      gid: group === undefined ? undefined : lookupGroup(group),
    };
    if (this.createOwner.uid !== undefined) this.owners.add(this.createOwner.uid);
  }

  private name(index: number, gz: boolean): string {
    return `${this.logFilename}.${index}${gz ? '.gz' : ''}`;
  }

  async rotate(): Promise<void> {
    // The previous rotation may still be compressing the file this one is about to move.
    await this.background;
    await this.script('firstaction');
    await this.shiftOldFiles();
    await this.script('prerotate');
    if (this.policy.copytruncate) {
      await this.copyTruncate();
    } else {
      const live = await this.moveLiveFile();
      if (live !== undefined && this.policy.create !== undefined) await this.createLive(live);
    }
    this.background = this.afterRotate();
  }

  streamEnded(): void {
    this.deadline ??= setTimeout(() => this.abandon.abort(), SETTLE_LIMIT_MS);
  }

  async settle(): Promise<void> {
    this.streamEnded();
    try {
      await this.background;
    } finally {
      clearTimeout(this.deadline);
    }
  }

  /**
   * logrotate's shift, `.N` -> `.N+1` from the highest N down to 1, of the names that exist: one readdir, so the cost
   * does not grow with `rotate`. A file past maxage is removed instead of moved.
   */
  private async shiftOldFiles(): Promise<void> {
    const { maxageDays } = this.policy;
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      return this.fail('list', this.dir, err);
    }
    const moving = names
      .map((name) => this.generation(name))
      .filter((g): g is Generation => g !== undefined && this.shifts(g))
      .sort((a, b) => b.index - a.index);
    for (const { index, gz } of moving) {
      const file = this.name(index, gz);
      try {
        const stats = await lstatRegular(file);
        if (maxageDays !== undefined && (Date.now() - stats.mtimeMs) / DAY_MS > maxageDays) await unlink(file);
        else await rename(file, this.name(index + 1, gz));
      } catch (err) {
        this.fail('shift', file, err);
      }
    }
  }

  /**
   * Whether logrotate moves this old file up: `.N.gz` with compress, else `.N`, for N up to `rotate` (or 1 with
   * rotate 0). With delaycompress also the plain `.1`: logrotate compresses it and moves the `.gz`; here it moves to
   * `.2`, compressed after the rotation. With rotate 1 that `.2` would be removed at once, so `.1` is left to be
   * replaced.
   */
  private shifts({ index, gz }: Generation): boolean {
    const { rotate, compress, delaycompress } = this.policy;
    const last = rotate === KEEP_ALL ? Infinity : Math.max(rotate, 1);
    if (index > last) return false;
    return gz === compress || (compress && delaycompress && index === 1 && last >= 2);
  }

  /** `<base>.<N>` or `<base>.<N>.gz`, N written as logrotate writes it (no sign, no leading zero). */
  private generation(name: string): Generation | undefined {
    if (!name.startsWith(`${this.base}.`)) return undefined;
    const match = /^([1-9]\d{0,14})(\.gz)?$/.exec(name.slice(this.base.length + 1));
    return match === null ? undefined : { index: Number(match[1]), gz: match[2] !== undefined };
  }

  /** Renames the live file to `.1`. Returns its stats, if it was a regular file of its own and moved. */
  private async moveLiveFile(): Promise<Stats | undefined> {
    try {
      const live = await lstatRegular(this.logFilename);
      this.owners.add(live.uid);
      // rename() does not follow a link at either name: if the file was swapped since, a link moves, harmlessly.
      await rename(this.logFilename, this.name(1, false));
      return live;
    } catch (err) {
      if (!isMissing(err) || !this.policy.missingok) this.fail('rotate', this.logFilename, err);
      return undefined;
    }
  }

  /** copytruncate: copies the live file into a new `.1` and truncates it in place, all through descriptors. */
  private async copyTruncate(): Promise<void> {
    let live: { handle: FileHandle; stats: Stats };
    try {
      live = await openExisting(this.logFilename, 'read-write');
    } catch (err) {
      if (!isMissing(err) || !this.policy.missingok) this.fail('copytruncate', this.logFilename, err);
      return;
    }
    const { handle, stats } = live;
    this.owners.add(stats.uid);
    try {
      // logrotate's rotate 0 truncates without a copy.
      if (this.policy.rotate !== 0) await this.copyInto(handle, stats, this.name(1, false));
      await handle.truncate(0);
    } catch (err) {
      this.fail('copytruncate', this.logFilename, err);
    } finally {
      await handle.close();
    }
  }

  private async copyInto(source: FileHandle, stats: Stats, file: string): Promise<void> {
    const copy = await createFresh(file);
    try {
      await this.takeOwnerAndMode(copy, stats.uid, stats.gid, stats.mode & 0o777);
      const buffer = Buffer.allocUnsafe(COPY_CHUNK);
      for (let position = 0; ; ) {
        const { bytesRead } = await source.read(buffer, 0, COPY_CHUNK, position);
        if (bytesRead === 0) break;
        await copy.write(buffer, 0, bytesRead);
        position += bytesRead;
      }
    } finally {
      await copy.close();
    }
  }

  /** `create [mode [owner [group]]]`: a missing part is taken from the file just rotated, as logrotate does. */
  private async createLive(previous: Stats): Promise<void> {
    const { mode } = this.policy.create!;
    try {
      const handle = await createFresh(this.logFilename);
      try {
        await this.takeOwnerAndMode(
          handle,
          this.createOwner.uid ?? previous.uid,
          this.createOwner.gid ?? previous.gid,
          mode ?? previous.mode & 0o7777,
        );
      } finally {
        await handle.close();
      }
    } catch (err) {
      this.fail('create', this.logFilename, err);
    }
  }

  /** As logrotate: the owner is set only by root (anyone else's files are their own already). */
  private async takeOwnerAndMode(handle: FileHandle, uid: number, gid: number, mode: number): Promise<void> {
    if (process.geteuid!() === 0) await setOwnerAndMode(handle, uid, gid, mode);
    else await handle.chmod(mode);
  }

  private async afterRotate(): Promise<void> {
    const { rotate, compress, delaycompress } = this.policy;
    await this.script('postrotate');
    const target = delaycompress ? 2 : 1;
    if (compress && (rotate === KEEP_ALL || rotate >= target)) await this.gzip(this.name(target, false));
    // logrotate removes what the shift pushed past `rotate`, and with rotate 0 the file it has just rotated.
    if (rotate === 0) await this.remove(this.name(1, false));
    else if (rotate !== KEEP_ALL) await this.remove(this.name(rotate + 1, compress));
    await this.script('lastaction');
  }

  /**
   * Compresses `file` into `file.gz`, reading through a descriptor that is checked to be a regular file of one link
   * owned by the log's owner; the `.gz` gets the file's owner and mode, as logrotate gives it. Given up once the
   * time after EOF is up: the partial `.gz` is removed and the plain file kept.
   */
  private async gzip(file: string): Promise<void> {
    const { signal } = this.abandon;
    if (signal.aborted) return;
    let source: { handle: FileHandle; stats: Stats };
    try {
      source = await openExisting(file, 'read', this.owners);
    } catch (err) {
      if (!isMissing(err)) this.fail('compress', file, err);
      return;
    }
    const { handle, stats } = source;
    const gz = `${file}.gz`;
    let output: FileHandle | undefined;
    try {
      output = await createFresh(gz);
      await this.takeOwnerAndMode(output, stats.uid, stats.gid, stats.mode & 0o777);
      // Loaded here: only a `compress` directive needs zlib, and loading it costs every helper memory at start.
      const { createGzip } = await import('node:zlib');
      await pipeline(handle.createReadStream({ start: 0 }), createGzip(), output.createWriteStream(), { signal });
      await unlink(file);
    } catch (err) {
      if (output !== undefined) await unlink(gz).catch(() => undefined);
      if (!signal.aborted) this.fail('compress', file, err);
      else this.log.warn({ file }, 'the stream ended before compression finished; the file stays uncompressed');
    } finally {
      await Promise.all([handle.close(), output?.close()]);
    }
  }

  private async remove(file: string): Promise<void> {
    try {
      await unlink(file);
    } catch (err) {
      if (!isMissing(err)) this.fail('remove', file, err);
    }
  }

  private async script(hook: ScriptHook): Promise<void> {
    const script = this.policy.scripts[hook];
    if (script === undefined || this.abandon.signal.aborted) return;
    // logrotate passes postrotate the rotated file as `$2`.
    const args = hook === 'postrotate' ? [this.logFilename, this.name(1, false)] : [this.logFilename];
    const result = await runShellScript(script, args, this.scriptTimeoutMs, this.abandon.signal);
    if (this.abandon.signal.aborted) {
      this.log.warn({ hook }, `the stream ended while the ${hook} script ran; killed its process group`);
    } else if (result !== 0) {
      this.errors.error({ hook, result }, `${hook} script failed; rotating anyway`);
    }
  }

  private fail(operation: string, file: string, err: unknown): void {
    if (err instanceof RefusedFile) {
      this.refusals.error({ operation, file, reason: err.reason }, 'refused a file in the sandbox; skipped this step');
    } else {
      this.errors.error({ operation, file, err: (err as Error).message }, 'rotation step failed');
    }
  }
}

/** logrotate's path to the conf, which it inherits as descriptor 3 (the fourth entry of spawn's stdio). */
const INHERITED_CONF = '/proc/self/fd/3';

/**
 * The original helper's way: run logrotate on the generated conf through the shell, ignore its result. logrotate
 * reads the conf the helper wrote, inherited as a descriptor: by name it would read whatever the task put there (a
 * link to a root-owned file of the task's output, with scripts that root logrotate would run).
 */
export class LogrotateRotation implements Rotation {
  private readonly command: string;

  /** `conf` is the conf the helper wrote, open to read; without it logrotate does not run (logged at start). */
  constructor(
    logFilename: string,
    logrotatePath: string,
    private readonly conf: FileHandle | undefined,
    readonly minFill: number,
    private readonly log: Logger,
  ) {
    this.command = `${logrotatePath} --state "${statePath(logFilename)}" "${INHERITED_CONF}"`;
  }

  rotate(): Promise<void> {
    const { command, conf } = this;
    if (conf === undefined) {
      this.log.warn('logrotate is not run (see the start-up log); not rotating');
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'ignore', 'inherit', conf.fd] });
      child.on('error', (err) => {
        this.log.warn({ command, err: err.message }, 'logrotate did not start');
        resolve();
      });
      child.on('close', (code) => {
        if (code !== 0) this.log.warn({ command, code }, 'logrotate failed');
        resolve();
      });
    });
  }

  /** logrotate runs to its end, as under the original. */
  streamEnded(): void {}

  settle(): Promise<void> {
    return Promise.resolve();
  }
}
