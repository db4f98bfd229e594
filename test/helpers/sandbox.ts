import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';

const created: string[] = [];

export interface Sandbox {
  dir: string;
  /** `<dir>/stdout`, the path passed as --log_filename. */
  stdout: string;
}

/** A fresh sandbox directory, world-traversable so a --user can reach it. Removed by removeTempDirs(). */
export function makeSandbox(): Sandbox {
  const base = mkdtempSync(join(tmpdir(), 'mls-test-'));
  chmodSync(base, 0o755);
  created.push(base);
  const dir = join(base, 'sandbox');
  mkdirSync(dir, { mode: 0o755 });
  return { dir, stdout: join(dir, 'stdout') };
}

export function removeTempDirs(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Names in the sandbox, sorted. */
export function listDir(dir: string): string[] {
  return readdirSync(dir).sort();
}

/** The rotated generations of `log` (`log.N`, `log.N.gz`) and the live file, oldest first. */
export function keptFiles(log: string): string[] {
  const base = basename(log);
  const escaped = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^${escaped}\\.(\\d+)(\\.gz)?$`);
  const rotated = readdirSync(dirname(log))
    .map((name) => ({ name, match: pattern.exec(name) }))
    .filter((entry) => entry.match !== null)
    .sort((a, b) => Number(b.match![1]) - Number(a.match![1]))
    .map((entry) => join(dirname(log), entry.name));
  return existsSync(log) ? [...rotated, log] : rotated;
}

/** A kept file's bytes, gunzipped when it is a .gz. */
export function readLog(file: string): Buffer {
  const data = readFileSync(file);
  return file.endsWith('.gz') ? gunzipSync(data) : data;
}

/** Every kept file concatenated oldest first: the tail of the input when nothing was lost. */
export function readKept(log: string): Buffer {
  return Buffer.concat(keptFiles(log).map(readLog));
}

/** Size in whole KiB, as Mesos's tests compare sizes. */
export const kib = (file: string): number => Math.floor(statSync(file).size / 1024);
