import { spawn } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  createReadStream,
  createWriteStream,
  fchmodSync,
  fchownSync,
  openSync,
  renameSync,
  statSync,
  truncateSync,
  unlinkSync,
  type Stats,
} from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../diagnostics.js';
import { RateLimitedLog } from '../diagnostics.js';
import { lookupGroup, lookupUser } from '../system.js';
import type { RotationPolicy, ScriptHook } from './directives.js';
import { confPath, statePath } from './logrotate-conf.js';
import { runShellScript } from './shell-script.js';

/** Moves the live file aside. The writer closes it before `rotate()` and reopens it afterwards. */
export interface Rotation {
  rotate(): Promise<void>;
  /** Waits for work that runs after the writer has moved on: compression, postrotate, lastaction. */
  settle(): Promise<void>;
  /**
   * The smallest file size at which a cut may fall on a line boundary. logrotate rotates only at its `size`
   * threshold, so in fallback mode a file must reach it; natively any non-empty file may rotate.
   */
  readonly minFill: number;
}

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** logrotate's file handling done in-process: `log` -> `log.1` ... `log.N`, `.gz` where compressed. */
export class NativeRotation implements Rotation {
  readonly minFill = 1;
  private background: Promise<void> = Promise.resolve();
  private readonly errors: RateLimitedLog;
  private readonly createOwner: { uid: number | undefined; gid: number | undefined };

  constructor(
    private readonly logFilename: string,
    private readonly policy: RotationPolicy,
    log: Logger,
    private readonly scriptTimeoutMs = 60_000,
  ) {
    this.errors = new RateLimitedLog(log);
    const { owner, group } = policy.create ?? {};
    this.createOwner = {
      uid: owner === undefined ? undefined : lookupUser(owner).uid,
      gid: group === undefined ? undefined : lookupGroup(group),
    };
  }

  private name(index: number, gz: boolean): string {
    return `${this.logFilename}.${index}${gz ? '.gz' : ''}`;
  }

  async rotate(): Promise<void> {
    // The previous rotation may still be compressing the file this one is about to move.
    await this.background;
    await this.script('firstaction');
    await this.script('prerotate');
    const live = this.moveLiveFile();
    if (live !== undefined && this.policy.create !== undefined && !this.policy.copytruncate) this.createLive(live);
    this.background = this.afterRotate();
  }

  settle(): Promise<void> {
    return this.background;
  }

  /** Shifts the old files up by one and moves the live file to `.1`. Returns the live file's stats, if it existed. */
  private moveLiveFile(): Stats | undefined {
    const { rotate, copytruncate } = this.policy;
    let live: Stats;
    try {
      live = statSync(this.logFilename);
    } catch (err) {
      if (!isMissing(err) || !this.policy.missingok) this.fail('stat', this.logFilename, err);
      return undefined;
    }
    for (const gz of [false, true]) {
      this.attempt('remove', this.name(Math.max(rotate, 1), gz), (f) => unlinkSync(f));
      for (let i = rotate - 1; i >= 1; i--) {
        this.attempt('rename', this.name(i, gz), (f) => renameSync(f, this.name(i + 1, gz)));
      }
    }
    if (copytruncate) {
      if (rotate > 0) this.attempt('copy', this.logFilename, (f) => copyFileSync(f, this.name(1, false)));
      this.attempt('truncate', this.logFilename, (f) => truncateSync(f, 0));
    } else {
      // Also with rotate 0: logrotate moves the file to `.1` for postrotate's `$2` and removes it afterwards.
      this.attempt('rename', this.logFilename, (f) => renameSync(f, this.name(1, false)));
    }
    return live;
  }

  /** `create [mode [owner [group]]]`: a missing part is taken from the file just rotated, as logrotate does. */
  private createLive(previous: Stats): void {
    const { mode } = this.policy.create!;
    this.attempt('create', this.logFilename, (f) => {
      const fd = openSync(f, 'a', 0o600);
      try {
        fchmodSync(fd, mode ?? previous.mode & 0o7777);
        fchownSync(fd, this.createOwner.uid ?? previous.uid, this.createOwner.gid ?? previous.gid);
      } finally {
        closeSync(fd);
      }
    });
  }

  private async afterRotate(): Promise<void> {
    const { rotate, compress, delaycompress, maxageDays } = this.policy;
    await this.script('postrotate');
    if (rotate === 0) this.attempt('remove', this.name(1, false), (f) => unlinkSync(f));
    const target = delaycompress ? 2 : 1;
    if (compress && rotate >= target) await this.gzip(this.name(target, false));
    if (maxageDays !== undefined) this.expire(maxageDays);
    await this.script('lastaction');
  }

  private async gzip(file: string): Promise<void> {
    let stats: Stats;
    try {
      stats = statSync(file);
    } catch (err) {
      if (!isMissing(err)) this.fail('stat', file, err);
      return;
    }
    try {
      // Loaded here: only a `compress` directive needs zlib, and loading it costs every helper memory at start.
      const { createGzip } = await import('node:zlib');
      await pipeline(createReadStream(file), createGzip(), createWriteStream(`${file}.gz`, { mode: stats.mode & 0o777 }));
      unlinkSync(file);
    } catch (err) {
      this.fail('compress', file, err);
    }
  }

  private expire(days: number): void {
    const oldest = Date.now() - days * 86_400_000;
    for (let i = 1; i <= this.policy.rotate; i++) {
      for (const gz of [false, true]) {
        this.attempt('expire', this.name(i, gz), (f) => {
          if (statSync(f).mtimeMs < oldest) unlinkSync(f);
        });
      }
    }
  }

  private async script(hook: ScriptHook): Promise<void> {
    const script = this.policy.scripts[hook];
    if (script === undefined) return;
    // logrotate passes postrotate the rotated file as `$2`.
    const args = hook === 'postrotate' ? [this.logFilename, this.name(1, false)] : [this.logFilename];
    const result = await runShellScript(script, args, this.scriptTimeoutMs);
    if (result !== 0) this.errors.error({ hook, result }, `${hook} script failed; rotating anyway`);
  }

  /** Runs one file operation; a missing file is normal (nothing to shift), anything else is reported. */
  private attempt(operation: string, file: string, action: (file: string) => void): void {
    try {
      action(file);
    } catch (err) {
      if (!isMissing(err)) this.fail(operation, file, err);
    }
  }

  private fail(operation: string, file: string, err: unknown): void {
    this.errors.error({ operation, file, err: (err as Error).message }, 'rotation step failed');
  }
}

/** The original helper's way: run logrotate on the generated conf through the shell, ignore its result. */
export class LogrotateRotation implements Rotation {
  constructor(
    private readonly logFilename: string,
    private readonly logrotatePath: string,
    readonly minFill: number,
    private readonly log: Logger,
  ) {}

  rotate(): Promise<void> {
    const command = `${this.logrotatePath} --state "${statePath(this.logFilename)}" "${confPath(this.logFilename)}"`;
    return new Promise((resolve) => {
      const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'ignore', 'inherit'] });
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

  settle(): Promise<void> {
    return Promise.resolve();
  }
}
