import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError, ConfigReader } from '../config-reader.js';
import { redactSecrets } from '../secrets.js';
import type { Logger } from '../diagnostics.js';
import type { BufferConfig, LineOptions } from '../lines/line-buffer.js';
import type { AgentConfig } from '../mesos/agent-state.js';
import { SINK_TYPES } from '../sinks/registry.js';
import type { SinkType } from '../sinks/sink-type.js';
import { DEFAULT_DAEMON_CONFIG, parseDaemonSection, showListenAddress, type DaemonConfig } from './daemon-section.js';
import { parseMatch, type MatchSpec } from './match.js';

/** Where the helper looks for its config; the agent strips MESOS_* variables, so ours start differently. */
export const CONFIG_ENV = 'LOG_SPLITTER_CONFIG';
export const DEFAULT_CONFIG_PATH = '/etc/mesos-log-splitter/config.yaml';

export interface SinkSpec {
  name: string;
  type: SinkType;
  options: object;
  match: MatchSpec;
  /** A per-stream instance's buffer (the standalone helper's, and per-stream types'). */
  buffer: BufferConfig;
  /** A daemon worker's one shared instance's whole budget, for all its streams: max_bytes as written, else SHARED_MAX_BYTES. */
  sharedMaxBytes: number;
  /** `buffer.type: disk` (daemon mode only): the spool's bound and directory (docs/spool.md). */
  disk?: { path: string; maxBytes: number };
}

/**
 * A shared sink's default budget. It bounds what the sink may hold for a whole worker, however many streams: 400
 * streams at the per-stream default (8 MB) could hold 3.2 GB. 64 MB lets one backlogged stream hold 8 times that
 * default, and still 160 kB each for 400 backlogged at once, and covers a one-minute outage at 1 MB/s of logs.
 */
export const SHARED_MAX_BYTES = 64 * 1024 * 1024;

const DEFAULT_MEMORY_MAX_BYTES = 8 * 1024 * 1024;
/** A disk buffer's bound when max_bytes is not set. */
const DEFAULT_SPOOL_MAX_BYTES = 1024 * 1024 * 1024;
/** Where a disk buffer's spool goes when buffer.path is not set: a directory per sink under it. */
const DEFAULT_SPOOL_DIR = '/var/lib/mesos-log-splitter/spool';

export interface SplitterConfig {
  /** The file it came from, or undefined for the built-in default (sandbox only). */
  source: string | undefined;
  lines: LineOptions;
  agent: AgentConfig;
  /** At EOF, how long sinks may keep delivering before the helper exits (Mesos waits 5 s). */
  shutdownTimeoutMs: number;
  sinks: SinkSpec[];
  /** The per-agent daemon's own settings (docs/daemon.md). */
  daemon: DaemonConfig;
}

export const DEFAULT_CONFIG: SplitterConfig = {
  source: undefined,
  lines: { maxLineBytes: 64 * 1024, partialFlushMs: 1000 },
  agent: { enrich: true, url: 'http://127.0.0.1:5051', timeoutMs: 1000, maxResponseBytes: 64 * 1024 * 1024 },
  shutdownTimeoutMs: 3000,
  sinks: [],
  daemon: DEFAULT_DAEMON_CONFIG,
};

/** Validates a parsed YAML document. Throws ConfigError naming the first bad key. */
export function parseConfig(document: unknown, source: string | undefined): SplitterConfig {
  const root = new ConfigReader('', document);
  const lines = root.child('lines');
  const agent = root.child('agent');
  const config: SplitterConfig = {
    source,
    lines: {
      maxLineBytes: lines.bytes('max_line_bytes', DEFAULT_CONFIG.lines.maxLineBytes, 64),
      partialFlushMs: lines.integer('partial_flush_ms', DEFAULT_CONFIG.lines.partialFlushMs, 1, 3_600_000),
    },
    agent: {
      enrich: agent.boolean('enrich', DEFAULT_CONFIG.agent.enrich),
      url: agent.string('url', DEFAULT_CONFIG.agent.url),
      timeoutMs: agent.integer('timeout_ms', DEFAULT_CONFIG.agent.timeoutMs, 1, 60_000),
      maxResponseBytes: agent.bytes('max_response_bytes', DEFAULT_CONFIG.agent.maxResponseBytes, 1024),
    },
    shutdownTimeoutMs: root.integer('shutdown_timeout_ms', DEFAULT_CONFIG.shutdownTimeoutMs, 0, 60_000),
    sinks: [],
    daemon: parseDaemonSection(root.child('daemon')),
  };
  lines.done();
  agent.done();
  if (!URL.canParse(config.agent.url)) throw new ConfigError('agent.url', config.agent.url, 'is not a URL');
  if (!['http:', 'https:'].includes(new URL(config.agent.url).protocol)) {
    throw new ConfigError('agent.url', config.agent.url, 'must be an http:// or https:// URL');
  }
  const sinks = root.child('sinks');
  for (const name of Object.keys(sinks.map)) {
    config.sinks.push(parseSink(name, sinks.child(name)));
  }
  root.done();
  return config;
}

function parseSink(name: string, reader: ConfigReader): SinkSpec {
  const typeName = reader.string('type');
  const type = SINK_TYPES.get(typeName);
  if (type === undefined) {
    throw new ConfigError(reader.key('type'), typeName, `is not a sink type (${[...SINK_TYPES.keys()].join(', ')})`);
  }
  const match = parseMatch(reader.child('match'));
  const bufferReader = reader.child('buffer');
  const maxBytesSet = bufferReader.has('max_bytes');
  const buffer: BufferConfig = {
    maxBytes: bufferReader.bytes('max_bytes', DEFAULT_MEMORY_MAX_BYTES, 1024),
    whenFull: bufferReader.oneOf('when_full', ['drop_oldest', 'drop_newest'] as const, 'drop_oldest'),
  };
  const disk = bufferReader.oneOf('type', ['memory', 'disk'] as const, 'memory') === 'disk';
  const path = bufferReader.optionalString('path');
  if (path !== undefined && !disk) throw new ConfigError(bufferReader.key('path'), path, 'applies to buffer.type: disk only');
  if (path !== undefined && !isAbsolute(path)) throw new ConfigError(bufferReader.key('path'), path, 'must be an absolute path');
  if (disk && type.perStream) {
    throw new ConfigError(bufferReader.key('type'), 'disk', `is not available for ${typeName} sinks (an instance per stream, no spool to resume)`);
  }
  bufferReader.done();
  const options = type.parse(reader);
  reader.done();
  if (disk) {
    // max_bytes bounds the spool on disk; the memory part (the queues in front of it) keeps the memory defaults.
    const spool = { path: path ?? join(DEFAULT_SPOOL_DIR, name), maxBytes: maxBytesSet ? buffer.maxBytes : DEFAULT_SPOOL_MAX_BYTES };
    return { name, type, options, match, buffer: { ...buffer, maxBytes: DEFAULT_MEMORY_MAX_BYTES }, sharedMaxBytes: SHARED_MAX_BYTES, disk: spool };
  }
  return { name, type, options, match, buffer, sharedMaxBytes: maxBytesSet ? buffer.maxBytes : SHARED_MAX_BYTES };
}

/**
 * The standalone helper buffers in memory only: a disk buffer (`buffer.type: disk`) belongs to the per-agent daemon,
 * which owns the spool directory and resumes spools after a restart. Such a sink is left out, with an error naming
 * it, and the other sinks run: a stream served standalone (no daemon yet, or one restarting) still forwards.
 */
export function standaloneConfig(config: SplitterConfig, log: Logger): SplitterConfig {
  const disk = config.sinks.filter((sink) => sink.disk !== undefined);
  for (const sink of disk) {
    const why = new ConfigError(`sinks.${sink.name}.buffer.type`, 'disk', 'needs the per-agent daemon; the standalone helper runs this stream without that sink');
    log.error({ sink: sink.name, err: why.message }, 'sink left out');
  }
  return disk.length === 0 ? config : { ...config, sinks: config.sinks.filter((sink) => sink.disk === undefined) };
}

/** Larger is not a config someone wrote: reading it could take the helper's memory. */
const MAX_CONFIG_BYTES = 1 << 20;

/**
 * The file's text. Opened non-blocking and checked before it is read: a FIFO with no writer (or a device such as
 * /dev/zero) named as the config would otherwise block or never end, and with it the stream the helper must copy.
 */
function readConfigText(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    // A directory fails in readFileSync, with EISDIR.
    if (!stat.isFile() && !stat.isDirectory()) throw new Error('not a regular file');
    if (stat.size > MAX_CONFIG_BYTES) throw new Error(`${stat.size} bytes, more than ${MAX_CONFIG_BYTES}`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Reads and validates a config file. A missing file at the default path means the built-in default. */
export function loadConfigFile(path: string, missingIsDefault: boolean): SplitterConfig {
  let text: string;
  try {
    text = readConfigText(path);
  } catch (err) {
    if (missingIsDefault && (err as NodeJS.ErrnoException).code === 'ENOENT') return DEFAULT_CONFIG;
    throw new ConfigError(path, undefined, `cannot be read: ${(err as Error).message}`);
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (err) {
    throw new ConfigError(path, undefined, `is not valid YAML: ${(err as Error).message}`);
  }
  return parseConfig(document, path);
}

/** The config the environment points at: LOG_SPLITTER_CONFIG, or the default path if it exists. */
export function loadConfigFromEnv(env = process.env): SplitterConfig {
  const path = env[CONFIG_ENV];
  return path === undefined || path === '' ? loadConfigFile(DEFAULT_CONFIG_PATH, true) : loadConfigFile(path, false);
}

/** The effective configuration, with defaults filled in, as check-config prints it. */
export function describeConfig(config: SplitterConfig): object {
  return {
    source: config.source ?? '(built-in default: sandbox only)',
    lines: { max_line_bytes: config.lines.maxLineBytes, partial_flush_ms: config.lines.partialFlushMs },
    agent: {
      enrich: config.agent.enrich,
      url: config.agent.url,
      timeout_ms: config.agent.timeoutMs,
      max_response_bytes: config.agent.maxResponseBytes,
    },
    shutdown_timeout_ms: config.shutdownTimeoutMs,
    sinks: Object.fromEntries(
      config.sinks.map((sink) => [
        sink.name,
        {
          type: sink.type.type,
          ...(redactSecrets(sink.options) as object),
          match: sink.match,
          buffer: {
            ...(sink.disk === undefined ? {} : { type: 'disk', path: sink.disk.path }),
            max_bytes: sink.disk?.maxBytes ?? sink.buffer.maxBytes,
            when_full: sink.buffer.whenFull,
          },
        },
      ]),
    ),
    daemon: {
      ...(config.daemon.metricsListen === undefined ? {} : { metrics_listen: showListenAddress(config.daemon.metricsListen) }),
      status_timeout_ms: config.daemon.statusTimeoutMs,
    },
  };
}
