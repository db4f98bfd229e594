import { isIP } from 'node:net';
import { ConfigError, type ConfigReader } from '../config-reader.js';

/** Where the daemon serves its Prometheus metrics. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** The `daemon:` section: read by `mesos-log-splitter daemon` only; the standalone helper ignores it. */
export interface DaemonConfig {
  /** `host:port` of the metrics endpoint; undefined: no endpoint. */
  metricsListen: ListenAddress | undefined;
  /** How long `status` and a scrape wait for a worker's figures before showing it as not answering. */
  statusTimeoutMs: number;
}

export const DEFAULT_DAEMON_CONFIG: DaemonConfig = { metricsListen: undefined, statusTimeoutMs: 1000 };

export function parseDaemonSection(reader: ConfigReader): DaemonConfig {
  const listen = reader.optionalString('metrics_listen');
  const config: DaemonConfig = {
    metricsListen: listen === undefined ? undefined : parseListenAddress(reader.key('metrics_listen'), listen),
    statusTimeoutMs: reader.integer('status_timeout_ms', DEFAULT_DAEMON_CONFIG.statusTimeoutMs, 10, 60_000),
  };
  reader.done();
  return config;
}

/** `host:port`, `[v6]:port`: a host is required (0.0.0.0 to listen on every address, said on purpose). */
function parseListenAddress(key: string, value: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || port < 1 || port > 65535) {
    throw new ConfigError(key, value, 'must be host:port (e.g. 127.0.0.1:9560, [::1]:9560), port 1 to 65535');
  }
  const host = match[1] ?? match[2];
  if (match[1] !== undefined && isIP(host) !== 6) throw new ConfigError(key, value, 'holds an invalid IPv6 address in [ ]');
  return { host, port };
}

export const showListenAddress = (address: ListenAddress): string =>
  isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
