import { close, ftruncate, write } from 'node:fs';
import { lstat, mkdir, rename, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Logger } from '../../diagnostics.js';
import { isMissing, openLiveFile, RefusedFile } from '../../sandbox/sandbox-fs.js';
import type { NodePath } from './node-path.js';
import type { FileRecords } from './records.js';

const writeFd = promisify(write);
const closeFd = promisify(close);
const truncateFd = promisify(ftruncate);

/** A file not written for this long is closed, so that one removed or renamed by someone else is not written on. */
const IDLE_CLOSE_MS = 30_000;
/** Open files kept at most; the least recently used is closed first. */
const MAX_OPEN_FILES = 64;
/** Directories the sink makes: collectors may read them, only their owner may change them. */
const DIRECTORY_MODE = 0o755;
const NEWLINE = Buffer.from('\n');

export interface RotationOptions {
  /** A file that would grow beyond this with the next record is rotated first (a bigger record gets a file alone). */
  maxSize: number;
  /** Files kept, the live one included: `path`, `path.1` .. `path.(maxFiles-1)`. */
  maxFiles: number;
  /** Mode of a file the sink creates, less the umask. */
  mode: number;
}

interface OpenFile {
  fd: number;
  size: number;
  lastUsed: number;
}

/** How far the writes of a batch got: run `run`, up to byte `offset` of it (always a record boundary). */
export interface WriteProgress {
  run: number;
  offset: number;
}

/**
 * The node files a file sink appends to: opened (never through a link), kept open for a while, size-rotated by
 * renaming as Docker's json-file driver does (`path` -> `path.1` -> ... , oldest removed), so that collectors
 * following a file by inode read it to its end. Nothing is written twice and no record is left torn when a write
 * fails (ENOSPC, EIO): the file is cut back to the record boundary and the caller retries from there.
 */
export class NodeFiles {
  private readonly files = new Map<string, OpenFile>();
  /** Directories below base found to be real directories of the sink's own (or root's), not writable by others. */
  private readonly checkedDirectories = new Set<string>();
  /** Files that may end in a torn record (cutting it back failed): the next write first ends that line. */
  private readonly torn = new Set<string>();
  private readonly uid = process.geteuid!();
  /** A file at a stream's name owned by anyone else is replaced, not written into. */
  private readonly owners = new Set([this.uid]);
  private readonly sweep: NodeJS.Timeout;
  /** Settles (never rejects) when the write in progress has. */
  private writing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly paths: NodePath,
    private readonly options: RotationOptions,
    private readonly log: Logger,
  ) {
    this.sweep = setInterval(() => this.closeIdle(), IDLE_CLOSE_MS / 2).unref();
  }

  /** Appends the runs' records from `progress` on; `progress` moves past what was written, also when this throws. */
  write(runs: FileRecords[], progress: WriteProgress): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the file sink is closed'));
    const writing = (async () => {
      for (; progress.run < runs.length; progress.run++, progress.offset = 0) await this.writeRun(runs[progress.run], progress);
    })();
    const settled: Promise<void> = writing
      .catch(() => undefined)
      .then(() => {
        if (this.writing === settled) this.writing = undefined;
      });
    this.writing = settled;
    return writing;
  }

  /** Closes every file once a write in progress settled; later writes fail. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweep);
    await this.writing;
    await Promise.all([...this.files.keys()].map((path) => this.closeFile(path)));
  }

  private async writeRun({ path, data, ends }: FileRecords, progress: WriteProgress): Promise<void> {
    let next = ends.findIndex((end) => end > progress.offset);
    while (progress.offset < data.length) {
      const file = await this.open(path);
      const start = progress.offset;
      if (file.size > 0 && file.size + ends[next] - start > this.options.maxSize) {
        await this.rotate(path);
        continue;
      }
      let stop = next + 1;
      while (stop < ends.length && file.size + ends[stop] - start <= this.options.maxSize) stop++;
      file.lastUsed = Date.now();
      if (this.torn.has(path)) {
        await this.writeAll(file, NEWLINE);
        this.torn.delete(path);
      }
      const before = file.size;
      try {
        await this.writeAll(file, data.subarray(start, ends[stop - 1]));
      } catch (err) {
        // The whole records written stay; a torn one after them is cut off, and the retry starts after them.
        const written = file.size - before;
        while (next < stop && ends[next] - start <= written) next++;
        const kept = next > 0 && ends[next - 1] > start ? ends[next - 1] - start : 0;
        progress.offset = start + kept;
        await this.cutBack(path, file, before + kept);
        throw err;
      }
      progress.offset = ends[stop - 1];
      next = stop;
    }
  }

  /** Cuts a torn record off the end of a file; when that fails too, the next write to it first ends the line. */
  private async cutBack(path: string, file: OpenFile, size: number): Promise<void> {
    if (file.size === size) return;
    try {
      await truncateFd(file.fd, size);
      file.size = size;
    } catch {
      this.torn.add(path);
    }
  }

  private async writeAll(file: OpenFile, bytes: Buffer): Promise<void> {
    for (let at = 0; at < bytes.length; ) {
      const { bytesWritten } = await writeFd(file.fd, bytes, at, bytes.length - at, null);
      at += bytesWritten;
      file.size += bytesWritten;
    }
  }

  private async open(path: string): Promise<OpenFile> {
    const cached = this.files.get(path);
    if (cached !== undefined) {
      // The map's order is the order of use: the least recently used file comes first.
      this.files.delete(path);
      this.files.set(path, cached);
      return cached;
    }
    let opened: Awaited<ReturnType<typeof openLiveFile>>;
    try {
      await this.makeDirectories(path);
      opened = await openLiveFile(path, { mode: this.options.mode, owners: this.owners });
    } catch (err) {
      // Checked again on the next try: a directory may have been removed or replaced meanwhile.
      for (const directory of this.paths.directoriesOf(path)) this.checkedDirectories.delete(directory);
      this.checkedDirectories.delete(this.paths.base);
      throw err;
    }
    if (opened.replaced !== undefined) {
      const message = 'file sink: removed what was at a node file path (not followed) and created the file';
      this.log.warn({ file: path, was: opened.replaced }, message);
    }
    const file = { fd: opened.fd, size: opened.size, lastUsed: Date.now() };
    this.files.set(path, file);
    if (this.files.size > MAX_OPEN_FILES) await this.closeFile(this.files.keys().next().value!);
    return file;
  }

  /**
   * Makes base (with its parents) and the directories below it, mode 0755 less the umask. Those below base must be
   * real directories owned by this user or root and writable by no one else: then no one else can put a link or
   * another file in the way between this check and an open.
   */
  private async makeDirectories(path: string): Promise<void> {
    if (!this.checkedDirectories.has(this.paths.base)) {
      await mkdir(this.paths.base, { recursive: true, mode: DIRECTORY_MODE });
      this.checkedDirectories.add(this.paths.base);
    }
    for (const directory of this.paths.directoriesOf(path)) {
      if (this.checkedDirectories.has(directory)) continue;
      try {
        await mkdir(directory, { mode: DIRECTORY_MODE });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const stats = await lstat(directory);
      let refusal: string | undefined;
      if (stats.isSymbolicLink()) refusal = 'a symbolic link';
      else if (!stats.isDirectory()) refusal = 'not a directory';
      else if (stats.uid !== this.uid && stats.uid !== 0) refusal = `owned by uid ${stats.uid}`;
      else if ((stats.mode & 0o022) !== 0) refusal = 'writable by group or others';
      if (refusal !== undefined) throw new RefusedFile(directory, `${refusal}; the file sink writes only below directories of its own`);
      this.checkedDirectories.add(directory);
    }
  }

  /** Docker json-file's rotation: path.(n-1) -> path.n from the oldest down, path -> path.1; the last is overwritten. */
  private async rotate(path: string): Promise<void> {
    await this.closeFile(path);
    // A torn record is in the file that becomes path.1; the new file starts clean.
    this.torn.delete(path);
    const { maxFiles } = this.options;
    for (let n = maxFiles - 1; n >= 1; n--) await renameIfPresent(n === 1 ? path : `${path}.${n - 1}`, `${path}.${n}`);
    // One file kept: the live one goes; a collector reading it keeps what it opened.
    if (maxFiles === 1) await unlink(path).catch(ignoreMissing);
  }

  private async closeFile(path: string): Promise<void> {
    const file = this.files.get(path);
    if (file === undefined) return;
    this.files.delete(path);
    await closeFd(file.fd);
  }

  /** Between writes only: a write in progress holds its file's descriptor. */
  private closeIdle(): void {
    if (this.writing !== undefined) return;
    const idleSince = Date.now() - IDLE_CLOSE_MS;
    for (const [path, file] of this.files) {
      if (file.lastUsed >= idleSince) continue;
      void this.closeFile(path).catch((err: Error) =>
        this.log.warn({ file: path, err: err.message }, 'file sink: closing an idle node file failed'),
      );
    }
  }
}

const ignoreMissing = (err: unknown): void => {
  if (!isMissing(err)) throw err;
};

/** A name someone else removed (an operator's clean-up) is no reason to stop rotating. */
const renameIfPresent = (from: string, to: string): Promise<void> => rename(from, to).catch(ignoreMissing);
