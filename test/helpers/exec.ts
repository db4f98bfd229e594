import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StreamMetadata } from '../../src/mesos/metadata.js';

/** Writes an executable /bin/sh script; `body` may use $OUT, the directory the script records into. */
export function writeScript(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\nOUT='${dir}'\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/**
 * Shell lines that number the script's incarnations: $n is 1 for the first process, 2 for its restart... Appending
 * keeps the count intact even when a process is SIGKILLed mid-way.
 */
export const COUNT_INCARNATION = 'echo . >> "$OUT/starts"; n=$(wc -l < "$OUT/starts")';

/** How many times the script in `dir` has started. */
export const incarnations = (dir: string): number =>
  readIfExists(join(dir, 'starts')).toString().split('\n').length - 1;

/** A script's recorded environment (written with `env -0`), as a map. */
export function readEnvFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of readFileSync(path, 'latin1').split('\0')) {
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

/** Only the variables whose names start with MESOS_. */
export const mesosVariables = (env: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(env).filter(([name]) => name.startsWith('MESOS_')));

export const readIfExists = (path: string): Buffer => (existsSync(path) ? readFileSync(path) : Buffer.alloc(0));

/** True while the process exists and is not a zombie (an orphan reparented to a PID 1 that never reaps). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export function streamMeta(sandbox: string, extra: Partial<StreamMetadata> = {}): StreamMetadata {
  return { stream: 'stdout', hostname: 'host1', sandbox, executor_labels: {}, task_labels: {}, ...extra };
}
