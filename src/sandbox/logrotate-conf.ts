import { writeFileSync } from 'node:fs';

export const confPath = (logFilename: string): string => `${logFilename}.logrotate.conf`;
export const statePath = (logFilename: string): string => `${logFilename}.logrotate.state`;

/** Byte-identical to the original helper's file: no trailing newline, size in plain bytes. */
export function renderLogrotateConf(logFilename: string, options: string | undefined, threshold: number): string {
  return `"${logFilename}" {\n${options ?? ''}\nsize ${threshold}\n}`;
}

export function writeLogrotateConf(logFilename: string, options: string | undefined, threshold: number): void {
  writeFileSync(confPath(logFilename), renderLogrotateConf(logFilename, options, threshold), { mode: 0o644 });
}
