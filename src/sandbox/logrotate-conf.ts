import { open, type FileHandle } from 'node:fs/promises';
import { createFresh } from './sandbox-fs.js';

export const confPath = (logFilename: string): string => `${logFilename}.logrotate.conf`;
export const statePath = (logFilename: string): string => `${logFilename}.logrotate.state`;

/** Byte-identical to the original helper's file: the options' own bytes, no trailing newline, size in plain bytes. */
export function renderLogrotateConf(logFilename: string, options: Buffer | undefined, threshold: number): Buffer {
  return Buffer.concat([Buffer.from(`"${logFilename}" {\n`), options ?? Buffer.alloc(0), Buffer.from(`\nsize ${threshold}\n}`)]);
}

/**
 * Written as a new file of mode 0644: whatever the task left at that name, a link included, is replaced. Returns the
 * file just written, open to read: the task can replace the name later, so logrotate reads the conf through this
 * descriptor, never through the name. It is reopened through /proc, which reaches this inode whatever the name holds.
 */
export async function writeLogrotateConf(
  logFilename: string,
  options: Buffer | undefined,
  threshold: number,
): Promise<FileHandle> {
  const handle = await createFresh(confPath(logFilename));
  try {
    await handle.writeFile(renderLogrotateConf(logFilename, options, threshold));
    await handle.chmod(0o644);
    return await open(`/proc/self/fd/${handle.fd}`, 'r');
  } finally {
    await handle.close();
  }
}
