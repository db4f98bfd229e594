// File operations in a directory the task can change at any moment, done by a helper that may be root. Nothing here
// follows a link in the last component of a path: opens use O_NOFOLLOW (and O_EXCL for files the helper creates),
// O_NONBLOCK so that a FIFO cannot hang an open, and what was opened is checked on the descriptor (fstat), not on the
// path. A regular file with a single link is reachable only through its name in the sandbox, so reading or writing
// it cannot reach a file elsewhere. The directory itself must not be replaceable by the task (the agent owns a
// sandbox's parent): a link there would be followed.
import { close, constants, fchmod, fstat, open as openCallback, type Stats } from 'node:fs';
import { lstat, open, unlink, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';

// The writer keeps the live file as a plain descriptor: a FileHandle would close it when garbage-collected.
const openFd = promisify(openCallback);
const fstatFd = promisify(fstat);
const closeFd = promisify(close);
const fchmodFd = promisify(fchmod);

const { O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY } = constants;

/**
 * The only mode bits a file the helper writes the task's output into may have: no set-user-ID, set-group-ID or
 * sticky bit. The kernel clears set-id bits when anyone without CAP_FSETID writes a file, but not when root does: a
 * root helper writing into a set-uid root file would leave a program of the task's choosing that runs as root.
 */
const PERMISSION_BITS = 0o777;
const SPECIAL_BITS = 0o7000;

const isRoot = (): boolean => process.geteuid!() === 0;

/** A file the helper will not touch, and why, for the log. */
export class RefusedFile extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

export const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** Why the helper refuses a file: anything but a regular file with one link, owned by one of `owners` if given. */
function refusal(stats: Stats, owners?: ReadonlySet<number>): string | undefined {
  if (stats.isSymbolicLink()) return 'a symbolic link';
  if (!stats.isFile()) return 'not a regular file';
  if (stats.nlink !== 1) return `a file with ${stats.nlink} hard links`;
  if (owners !== undefined && !owners.has(stats.uid)) return `owned by uid ${stats.uid}, not the log's owner`;
  return undefined;
}

/** The name's own stats (a link is not followed); a refused file throws RefusedFile. */
export async function lstatRegular(file: string): Promise<Stats> {
  const stats = await lstat(file);
  const reason = refusal(stats);
  if (reason !== undefined) throw new RefusedFile(file, reason);
  return stats;
}

/** Opens an existing file to read (or also write), refused unless `refusal` passes on what was opened. */
export async function openExisting(
  file: string,
  access: 'read' | 'read-write',
  owners?: ReadonlySet<number>,
): Promise<{ handle: FileHandle; stats: Stats }> {
  const handle = await openNoFollow(file, (access === 'read' ? O_RDONLY : O_RDWR) | O_NONBLOCK);
  try {
    const stats = await handle.stat();
    const reason = refusal(stats, owners);
    if (reason !== undefined) throw new RefusedFile(file, reason);
    return { handle, stats };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Creates `file` afresh (mode 0600 until the caller sets it on the handle). Whatever holds the name, a link
 * included, is removed first (logrotate moves it aside to a `.backup`); a directory there throws.
 */
export async function createFresh(file: string): Promise<FileHandle> {
  try {
    return await openNoFollow(file, O_WRONLY | O_CREAT | O_EXCL, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  await unlinkPlanted(file);
  return openNoFollow(file, O_WRONLY | O_CREAT | O_EXCL, 0o600);
}

/**
 * Gives a file the helper made `mode`'s permission bits, and as root also the owner (anyone else's files are their own
 * already, as under logrotate), through the handle, never the path: owner first, since chown clears set-id bits.
 * Returns the mode given (see PERMISSION_BITS).
 */
export async function setOwnerAndMode(handle: FileHandle, uid: number, gid: number, mode: number): Promise<number> {
  if (isRoot()) await handle.chown(uid, gid);
  const given = mode & PERMISSION_BITS;
  await handle.chmod(given);
  return given;
}

/**
 * Opens the live file to append, creating it (`mode`, default 0644, less the umask) if missing, and returns a plain
 * descriptor for the writer. A link, a hard-linked file, a file not owned by one of `owners` (when given) or anything
 * else that is not a regular file of its own at that name is removed and the file created afresh: `replaced` says
 * what was there. A directory there throws. A root helper clears the set-id and sticky bits of a file it finds (see
 * PERMISSION_BITS): `cleared` is its mode before.
 */
export async function openLiveFile(
  file: string,
  { mode = 0o644, owners }: { mode?: number; owners?: ReadonlySet<number> } = {},
): Promise<{ fd: number; size: number; replaced?: string; cleared?: number }> {
  const flags = O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK;
  let replaced: string | undefined;
  try {
    const fd = await refusingLinks(file, () => openFd(file, flags | O_NOFOLLOW, mode));
    try {
      const stats = await fstatFd(fd);
      replaced = refusal(stats, owners);
      if (replaced === undefined) {
        const cleared = await clearSpecialBits(fd, stats.mode);
        return { fd, size: stats.size, cleared };
      }
    } catch (err) {
      await closeFd(fd);
      throw err;
    }
    await closeFd(fd);
  } catch (err) {
    if (!(err instanceof RefusedFile)) throw err;
    replaced = err.reason;
  }
  await unlinkPlanted(file);
  const fd = await refusingLinks(file, () => openFd(file, flags | O_EXCL | O_NOFOLLOW, mode));
  return { fd, size: 0, replaced };
}

/** As root, removes what PERMISSION_BITS leaves out from an open file's mode. Returns the mode it had, if it did. */
async function clearSpecialBits(fd: number, mode: number): Promise<number | undefined> {
  if (!isRoot() || (mode & SPECIAL_BITS) === 0) return undefined;
  await fchmodFd(fd, mode & PERMISSION_BITS);
  return mode & 0o7777;
}

async function openNoFollow(file: string, flags: number, mode?: number): Promise<FileHandle> {
  return refusingLinks(file, () => open(file, flags | O_NOFOLLOW, mode));
}

/** O_NOFOLLOW's ELOOP, and ENXIO (a FIFO with no reader, opened non-blocking to write), as refusals. */
async function refusingLinks<T>(file: string, opening: () => Promise<T>): Promise<T> {
  try {
    return await opening();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new RefusedFile(file, 'a symbolic link');
    if (code === 'ENXIO') throw new RefusedFile(file, 'not a regular file');
    throw err;
  }
}

/** Removes a name (unlink never follows a link); a directory throws. */
async function unlinkPlanted(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
}
