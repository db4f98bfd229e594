import type { FlagsResult } from './flags.js';

/**
 * What the helper prints, and its exit code, when it stops before serving the stream. The standalone helper prints
 * it; the daemon sends it to the shim, which prints it: both modes answer alike.
 */
export interface EarlyExit {
  code: number;
  stdout: string;
  stderr: string;
}

/** `--help`: usage on stdout, exit 0. Bad flags: the error and usage on stderr, exit 1. */
export function flagsExit(parsed: Exclude<FlagsResult, { kind: 'ok' }>): EarlyExit {
  if (parsed.kind === 'help') return { code: 0, stdout: `${parsed.usage}\n`, stderr: '' };
  return { code: 1, stdout: '', stderr: `${parsed.message}\n\n${parsed.usage}\n` };
}

export function switchUserExit(user: string, err: Error): EarlyExit {
  return { code: 1, stdout: '', stderr: `Failed to switch user for --user='${user}': ${err.message}\n` };
}
