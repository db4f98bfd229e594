import { createRequire } from 'node:module';

/**
 * Node builtins that cost memory to load (TLS and crypto about 1 MiB of RSS, zlib and DNS the rest of the 1.5 MiB a
 * sandbox-only helper saves: docs/performance.md), loaded by the first sink that uses one, not by every process that
 * registers the sink types. test/process.test.ts checks a sandbox-only helper loads none of them.
 */
const require = createRequire(import.meta.url);

const lazy = <T>(name: string): (() => T) => {
  let loaded: T | undefined;
  return () => (loaded ??= require(name) as T);
};

export const crypto = lazy<typeof import('node:crypto')>('node:crypto');
export const zlib = lazy<typeof import('node:zlib')>('node:zlib');
export const tls = lazy<typeof import('node:tls')>('node:tls');
export const https = lazy<typeof import('node:https')>('node:https');

/** zlib's gzip as a promise. */
export const gzip = (data: Uint8Array, options: import('node:zlib').ZlibOptions = {}): Promise<Buffer> =>
  new Promise((resolve, reject) => zlib().gzip(data, options, (err, out) => (err ? reject(err) : resolve(out))));
