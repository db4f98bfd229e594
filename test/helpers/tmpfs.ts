import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

export const isRoot = (): boolean => process.getuid?.() === 0;

/** Mounts a fresh tmpfs of `bytes` at `dir` (root only). */
export function mountTmpfs(dir: string, bytes: number): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir]);
}

export function unmount(dir: string): void {
  execFileSync('umount', ['-l', dir]);
}
