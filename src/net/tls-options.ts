import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { ConfigError, type ConfigReader } from '../config-reader.js';

/** A sink's `tls:` map, as check-config prints it. Verification is on unless the operator turns it off. */
export interface TlsOptions {
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  servername?: string;
  reject_unauthorized: boolean;
}

/** Reads and checks a `tls:` map (every key of it: the caller's reader does not see inside). */
export function parseTls(reader: ConfigReader): TlsOptions {
  const tls: TlsOptions = { reject_unauthorized: reader.boolean('reject_unauthorized', true) };
  for (const name of ['ca_file', 'cert_file', 'key_file', 'servername'] as const) {
    const value = reader.optionalString(name);
    if (value !== undefined) tls[name] = value;
  }
  if ((tls.cert_file === undefined) !== (tls.key_file === undefined)) {
    const given = tls.cert_file === undefined ? 'key_file' : 'cert_file';
    throw new ConfigError(reader.key(given), tls[given], 'needs both cert_file and key_file for a client certificate');
  }
  // A typo is caught here; a file that goes missing later (being renewed) fails only that connection attempt.
  for (const name of ['ca_file', 'cert_file', 'key_file'] as const) {
    const file = tls[name];
    if (file === undefined) continue;
    let regular: boolean;
    try {
      regular = statSync(file).isFile();
      accessSync(file, constants.R_OK);
    } catch (err) {
      throw new ConfigError(reader.key(name), file, `cannot be read (${(err as NodeJS.ErrnoException).code})`);
    }
    // Each connection reads it whole, synchronously: a FIFO or device would block the process.
    if (!regular) throw new ConfigError(reader.key(name), file, 'is not a regular file');
  }
  reader.done();
  return tls;
}

/** What node:tls (or https) is given for one connection. Files are read each time, so renewed ones are picked up. */
export function tlsConnectOptions(tls: TlsOptions): ConnectionOptions {
  return {
    ca: tls.ca_file === undefined ? undefined : readFileSync(tls.ca_file),
    cert: tls.cert_file === undefined ? undefined : readFileSync(tls.cert_file),
    key: tls.key_file === undefined ? undefined : readFileSync(tls.key_file),
    servername: tls.servername,
    rejectUnauthorized: tls.reject_unauthorized,
  };
}
