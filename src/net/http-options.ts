import { ConfigError, type ConfigReader } from '../config-reader.js';
import { parseTls, type TlsOptions } from './tls-options.js';

/** The keys every HTTP sink shares, as check-config prints them. */
export interface HttpEndpointOptions {
  url: string;
  headers: Record<string, string>;
  /** Used only for https URLs; verification is on by default. */
  tls: TlsOptions;
  timeout_ms: number;
  compression: 'gzip' | 'none';
}

/** Reads `url`, `headers`, `tls`, `timeout_ms` and `compression` (default `compression`: the sink's). */
export function parseHttpEndpoint(
  reader: ConfigReader,
  defaults: { url?: string; compression: 'gzip' | 'none' },
): HttpEndpointOptions {
  const url = reader.string('url', defaults.url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(reader.key('url'), url, 'is not a URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError(reader.key('url'), url, 'must be an http:// or https:// URL');
  }
  if (parsed.protocol === 'http:' && reader.has('tls')) {
    throw new ConfigError(reader.key('tls'), reader.map.tls, 'applies only to an https:// url');
  }
  return {
    url,
    headers: reader.stringMap('headers'),
    tls: parseTls(reader.child('tls')),
    timeout_ms: reader.integer('timeout_ms', 30_000, 1, 600_000),
    compression: reader.oneOf('compression', ['gzip', 'none'] as const, defaults.compression),
  };
}
