import type { Stats } from 'node:fs';
import { readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../diagnostics.js';
import { RateLimitedLog } from '../diagnostics.js';
import { lookupGroup, lookupUser } from '../system.js';
import { KEEP_ALL, type RotationPolicy, type ScriptHook } from './directives.js';
import { statePath } from './logrotate-conf.js';
import { spawnProcessGroup } from './process-group.js';
import {
  createFresh,
  isMissing,
  lstatRegular,
  openExisting,
  RefusedFile,
  setOwnerAndMode,
} from './sandbox-fs.js';
import { runShellScript } from './shell-script.js';

/**
 * Moves the live file aside, or leaves it in place when it cannot yet (the writer then goes on into it). The writer
 * closes it before `rotate()` and reopens it afterwards.
 */
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

/** How long after EOF compression, scripts and rotations may still run before they are given up. */
export const SETTLE_LIMIT_MS = 4000;
/** How long a rotation script, or logrotate in fallback mode, may run before its process group is killed. */
const COMMAND_TIMEOUT_MS = 60_000;
/**
 * How long one rotation may spend moving old files up, and how long the stream then goes on before the next one
 * continues: the task can plant any number of old files, and each costs a rename.
 */
const SHIFT_SLICE_MS = 250;
const COPY_CHUNK = 1024 * 1024;
const DAY_MS = 86_400_000;

/** Aborts SETTLE_LIMIT_MS after the stream ended: rotation work still running then is given up. */
class SettleDeadline {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  start(): void {
    this.timer ??= setTimeout(() => this.controller.abort(), SETTLE_LIMIT_MS);
  }

  /** Rotation work is done: the timer must not keep the helper alive. */
  clear(): void {
    clearTimeout(this.timer);
  }
}

/** An old file: `<log>.<index>`, or `<log>.<index>.gz`. */
interface Generation {
  index: number;
  gz: boolean;
}

/**
 * logrotate's file handling done in-process: `log` -> `log.1` ... `log.N`, `.gz` where compressed. The task owns the
 * sandbox and the helper may be root, so every file step goes through sandbox-fs: no link is followed, only
 * regular files with one link are moved, read or written, and a step that finds anything else is logged and skipped
 * (the rest of the rotation goes on: a refused file does not keep the live file from moving).
 */
export class NativeRotation implements Rotation {
  readonly minFill = 1;
  private background: Promise<void> = Promise.resolve();
  /** Compression and scripts still running when it passes are given up. */
  private readonly deadline = new SettleDeadline();
  private readonly errors: RateLimitedLog;
  private readonly refusals: RateLimitedLog;
  private readonly maskedModes: RateLimitedLog;
  private readonly unfinishedShifts: RateLimitedLog;
  /** The old files the rotation under way has still to move up, highest last; undefined between rotations. */
  private shifting: Generation[] | undefined;
  /** When the last slice of the rotation under way ended. */
  private sliceEndedAt = 0;
  private stopLogged = false;
  private readonly createOwner: { uid: number | undefined; gid: number | undefined };
  /** Owners of the files the helper will compress: itself, and whoever owned the live file when it was rotated. */
  private readonly owners = new Set<number>([process.geteuid!()]);
  private readonly dir: string;
  private readonly base: string;

  constructor(
    private readonly logFilename: string,
    private readonly policy: RotationPolicy,
    private readonly log: Logger,
    private readonly scriptTimeoutMs = COMMAND_TIMEOUT_MS,
  ) {
    this.errors = new RateLimitedLog(log);
    this.refusals = new RateLimitedLog(log);
    this.maskedModes = new RateLimitedLog(log);
    this.unfinishedShifts = new RateLimitedLog(log);
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

  /**
   * Leaves the live file in place while old files have not all moved up (it never moves onto one), and once the time
   * after EOF is up (no rotation starts after the limit).
   */
  async rotate(): Promise<void> {
    if (this.shifting !== undefined && Date.now() - this.sliceEndedAt < SHIFT_SLICE_MS) return;
    // The previous rotation may still be compressing the file this one is about to move.
    await this.background;
    if (this.deadline.signal.aborted) return this.stopped();
    if (this.shifting === undefined) {
      await this.script('firstaction');
      this.shifting = await this.oldFiles();
      if (this.shifting === undefined) return;
    }
    if (!(await this.shiftOldFiles(this.shifting))) return;
    this.shifting = undefined;
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
    this.deadline.start();
  }

  async settle(): Promise<void> {
    this.streamEnded();
    try {
      await this.background;
    } finally {
      this.deadline.clear();
    }
  }

  /**
   * The old files logrotate's shift moves, `.N` -> `.N+1` from the highest N down to 1: those that exist, from one
   * listing, so the cost grows with the files present, not with `rotate`. Undefined if the sandbox cannot be listed.
   */
  private async oldFiles(): Promise<Generation[] | undefined> {
    try {
      const names = await readdir(this.dir);
      return names
        .map((name) => this.generation(name))
        .filter((g): g is Generation => g !== undefined && this.shifts(g))
        .sort((a, b) => a.index - b.index);
    } catch (err) {
      this.fail('list', this.dir, err);
      return undefined;
    }
  }

  /**
   * Moves old files up, taking them off the end of `moving`, for one slice of time. A file past maxage is removed
   * instead of moved. Returns whether all have moved; if not, the next rotation goes on from where this one stopped,
   * so that the live file never moves onto an old file.
   */
  private async shiftOldFiles(moving: Generation[]): Promise<boolean> {
    const { maxageDays } = this.policy;
    const sliceEnd = Date.now() + SHIFT_SLICE_MS;
    while (moving.length > 0) {
      if (this.deadline.signal.aborted) {
        this.stopped();
        return false;
      }
      if (Date.now() >= sliceEnd) {
        this.sliceEndedAt = Date.now();
        const message = 'old files are still moving up; the live file moves once they all have';
        this.unfinishedShifts.error({ file: this.logFilename, remaining: moving.length }, message);
        return false;
      }
      const { index, gz } = moving.pop()!;
      const file = this.name(index, gz);
      try {
        const stats = await lstatRegular(file);
        if (maxageDays !== undefined && (Date.now() - stats.mtimeMs) / DAY_MS > maxageDays) await unlink(file);
        else await rename(file, this.name(index + 1, gz));
      } catch (err) {
        this.fail('shift', file, err);
      }
    }
    return true;
  }

  /** Once the time after EOF is up, the rest of the stream goes into the live file. */
  private stopped(): void {
    if (this.stopLogged) return;
    this.stopLogged = true;
    const message = 'the time after EOF is up; no more rotations, the rest goes into the live file';
    this.log.warn({ file: this.logFilename }, message);
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
      await this.takeOwnerAndMode(copy, file, stats.uid, stats.gid, stats.mode);
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
          this.logFilename,
          this.createOwner.uid ?? previous.uid,
          this.createOwner.gid ?? previous.gid,
          mode ?? previous.mode,
        );
      } finally {
        await handle.close();
      }
    } catch (err) {
      this.fail('create', this.logFilename, err);
    }
  }

  private async takeOwnerAndMode(
    handle: FileHandle,
    file: string,
    uid: number,
    gid: number,
    mode: number,
  ): Promise<void> {
    const given = await setOwnerAndMode(handle, uid, gid, mode);
    const asked = mode & 0o7777;
    if (given !== asked) {
      const fields = { file, mode: asked.toString(8), given: given.toString(8) };
      this.maskedModes.error(fields, "a file of the task's output gets no set-user-ID, set-group-ID or sticky bit");
    }
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
    const { signal } = this.deadline;
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
      await this.takeOwnerAndMode(output, gz, stats.uid, stats.gid, stats.mode);
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
    if (script === undefined || this.deadline.signal.aborted) return;
    // logrotate passes postrotate the rotated file as `$2`.
    const args = hook === 'postrotate' ? [this.logFilename, this.name(1, false)] : [this.logFilename];
    const result = await runShellScript(script, args, this.scriptTimeoutMs, this.deadline.signal);
    if (this.deadline.signal.aborted) {
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
 * link to a root-owned file of the task's output, with scripts that root logrotate would run). It runs in a process
 * group of its own with the scripts' timeout and EOF limit: the task can hang it (a FIFO at the state file, which
 * logrotate opens by name), and the stream waits for each rotation.
 */
export class LogrotateRotation implements Rotation {
  private readonly command: string;
  private readonly deadline = new SettleDeadline();

  /** `conf` is the conf the helper wrote, open to read; without it logrotate does not run (logged at start). */
  constructor(
    logFilename: string,
    logrotatePath: string,
    private readonly conf: FileHandle | undefined,
    readonly minFill: number,
    private readonly log: Logger,
    private readonly timeoutMs = COMMAND_TIMEOUT_MS,
  ) {
    this.command = `${logrotatePath} --state "${statePath(logFilename)}" "${INHERITED_CONF}"`;
  }

  async rotate(): Promise<void> {
    const { command, conf } = this;
    if (conf === undefined) {
      this.log.warn('logrotate is not run (see the start-up log); not rotating');
      return;
    }
    if (this.deadline.signal.aborted) {
      this.log.warn({ command }, 'the time after EOF is up; logrotate is not run');
      return;
    }
    const { exit } = spawnProcessGroup(
      '/bin/sh',
      ['-c', command],
      ['ignore', 'ignore', 'inherit', conf.fd],
      this.timeoutMs,
      this.deadline.signal,
    );
    const { result, end } = await exit;
    if (end === 'timeout') {
      this.log.warn({ command, timeoutMs: this.timeoutMs }, 'logrotate ran over its timeout; killed its process group');
    } else if (end === 'stopped') {
      this.log.warn({ command }, 'the stream ended while logrotate ran; killed its process group');
    } else if (result !== 0) {
      this.log.warn({ command, result }, 'logrotate failed');
    }
  }

  streamEnded(): void {
    this.deadline.start();
  }

  settle(): Promise<void> {
    // The writer waits for each rotation, so none is running by now.
    this.deadline.clear();
    return Promise.resolve();
  }
}
