import { createFresh } from './sandbox-fs.js';

export const confPath = (logFilename: string): string => `${logFilename}.logrotate.conf`;
export const statePath = (logFilename: string): string => `${logFilename}.logrotate.state`;

/** Byte-identical to the original helper's file: the options' own bytes, no trailing newline, size in plain bytes. */
export function renderLogrotateConf(logFilename: string, options: Buffer | undefined, threshold: number): Buffer {
  return Buffer.concat([Buffer.from(`"${logFilename}" {\n`), options ?? Buffer.alloc(0), Buffer.from(`\nsize ${threshold}\n}`)]);
}

/** Written as a new file of mode 0644: whatever the task left at that name, a link included, is replaced. */
export async function writeLogrotateConf(logFilename: string, options: Buffer | undefined, threshold: number): Promise<void> {
  const handle = await createFresh(confPath(logFilename));
  try {
    await handle.writeFile(renderLogrotateConf(logFilename, options, threshold));
    await handle.chmod(0o644);
  } finally {
    await handle.close();
  }
}
