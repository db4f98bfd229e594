import { lstatSync, mkdirSync } from 'node:fs';

/** A directory the daemon must not trust: refuse to start. */
export class UnsafeDirError extends Error {}

/**
 * Creates `dir` 0700 if missing. An existing one must be a directory (not a link) owned by our uid and writable by
 * nobody else: what is in it decides what root does (which socket the shims reach, which pids the daemon waits for).
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = lstatSync(dir);
  if (!stat.isDirectory() || stat.uid !== process.getuid!() || (stat.mode & 0o022) !== 0) {
    throw new UnsafeDirError(`${dir} must be a directory owned by uid ${process.getuid!()} and writable by it alone`);
  }
}
