// Config: validation names key, value and why; sizes; defaults; loading from files and the environment; match.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  CONFIG_ENV,
  DEFAULT_CONFIG,
  DEFAULT_CONFIG_PATH,
  describeConfig,
  loadConfigFile,
  loadConfigFromEnv,
  parseConfig,
  type SplitterConfig,
} from '../src/config/config.js';
import { compileMatch, parseMatch, type MatchSpec } from '../src/config/match.js';
import { ConfigError, ConfigReader, showValue } from '../src/config-reader.js';
import type { StreamMetadata } from '../src/mesos/metadata.js';
import { makeSandbox } from './helpers/sandbox.js';

const parse = (yaml: string): SplitterConfig => parseConfig(parseYaml(yaml), 'test.yaml');

/** The ConfigError a document raises. */
function errorOf(yaml: string): ConfigError {
  try {
    parse(yaml);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`no error for:\n${yaml}`);
}

/** A valid sink to hang sink-level keys on: exec needs only a command. */
const execSinkWith = (extra: string): string => `sinks:\n  out:\n    type: exec\n    command: cat\n${extra}`;

describe('config defaults', () => {
  it('an empty document is the built-in default, sandbox only', () => {
    for (const doc of [undefined, null, {}]) {
      expect(parseConfig(doc, 'x.yaml')).toEqual({ ...DEFAULT_CONFIG, source: 'x.yaml' });
    }
    expect(DEFAULT_CONFIG).toEqual({
      source: undefined,
      lines: { maxLineBytes: 65536, partialFlushMs: 1000 },
      agent: { enrich: true, url: 'http://127.0.0.1:5051', timeoutMs: 1000, maxResponseBytes: 64 * 1024 * 1024 },
      shutdownTimeoutMs: 3000,
      sinks: [],
      daemon: { metricsListen: undefined, statusTimeoutMs: 1000 },
    });
  });

  it('a sink gets the default buffer and an empty match', () => {
    const [sink] = parse(execSinkWith('')).sinks;
    expect(sink.name).toBe('out');
    expect(sink.type.type).toBe('exec');
    expect(sink.buffer).toEqual({ maxBytes: 8 * 1024 * 1024, whenFull: 'drop_oldest' });
    expect(sink.match).toEqual({});
  });

  it('keeps the sinks in file order', () => {
    const config = parse('sinks:\n  b: {type: exec, command: cat}\n  a: {type: exec, command: cat}\n  c: {type: exec, command: cat}\n');
    expect(config.sinks.map((s) => s.name)).toEqual(['b', 'a', 'c']);
  });

  it('reads every shared key', () => {
    const config = parse(`
lines: {max_line_bytes: 16KB, partial_flush_ms: 250}
agent: {enrich: false, url: "http://10.0.0.7:5051/", timeout_ms: 300, max_response_bytes: 16MB}
shutdown_timeout_ms: 0
${execSinkWith('    match: {stream: stderr, task_id: "web.*"}\n    buffer: {max_bytes: 1MB, when_full: drop_newest}\n')}`);
    expect(config.lines).toEqual({ maxLineBytes: 16384, partialFlushMs: 250 });
    expect(config.agent).toEqual({ enrich: false, url: 'http://10.0.0.7:5051/', timeoutMs: 300, maxResponseBytes: 16 << 20 });
    expect(config.shutdownTimeoutMs).toBe(0);
    expect(config.sinks[0].match).toEqual({ stream: ['stderr'], task_id: ['web.*'] });
    expect(config.sinks[0].buffer).toEqual({ maxBytes: 1048576, whenFull: 'drop_newest' });
  });
});

describe('config sizes', () => {
  it.each([
    ['65536', 65536],
    ['64KB', 65536],
    ['64kb', 65536],
    ['8MB', 8388608],
    ['1GB', 1073741824],
    ['4096B', 4096],
  ])('max_line_bytes: %s is %d bytes', (value, bytes) => {
    expect(parse(`lines: {max_line_bytes: ${value}}`).lines.maxLineBytes).toBe(bytes);
  });

  it('buffer.max_bytes takes a number or Mesos size syntax', () => {
    expect(parse(execSinkWith('    buffer: {max_bytes: 8MB}\n')).sinks[0].buffer.maxBytes).toBe(8388608);
    expect(parse(execSinkWith('    buffer: {max_bytes: 2048}\n')).sinks[0].buffer.maxBytes).toBe(2048);
    expect(parse(execSinkWith('    buffer: {max_bytes: "2048"}\n')).sinks[0].buffer.maxBytes).toBe(2048);
  });
});

describe('config validation names key, value and why', () => {
  it.each([
    // [document, key, value, why]
    ['bogus: 1', 'bogus', 1, /is not a known key/],
    ['lines: {max_line_byte: 10}', 'lines.max_line_byte', 10, /is not a known key/],
    ['agent: {urll: "http://x"}', 'agent.urll', 'http://x', /is not a known key/],
    ['lines: 5', 'lines', 5, /must be a map/],
    ['sinks: [a, b]', 'sinks', ['a', 'b'], /must be a map/],
    ['lines: {partial_flush_ms: soon}', 'lines.partial_flush_ms', 'soon', /whole number from 1 to 3600000/],
    ['lines: {partial_flush_ms: 0}', 'lines.partial_flush_ms', 0, /whole number from 1 to 3600000/],
    ['lines: {partial_flush_ms: 1.5}', 'lines.partial_flush_ms', 1.5, /whole number/],
    ['shutdown_timeout_ms: -1', 'shutdown_timeout_ms', -1, /whole number from 0 to 60000/],
    ['agent: {enrich: yes please}', 'agent.enrich', 'yes please', /must be true or false/],
    ['agent: {timeout_ms: "1s"}', 'agent.timeout_ms', '1s', /whole number/],
    ['agent: {max_response_bytes: 100}', 'agent.max_response_bytes', 100, /at least 1024 bytes/],
    ['agent: {url: [a]}', 'agent.url', ['a'], /must be a string/],
    ['agent: {url: "not a url"}', 'agent.url', 'not a url', /is not a URL/],
    ['agent: {url: "ftp://127.0.0.1:5051"}', 'agent.url', 'ftp://127.0.0.1:5051', /http/],
    ['lines: {max_line_bytes: 8XB}', 'lines.max_line_bytes', '8XB', /is not a size \(Unknown bytes unit 'XB'\)/],
    ['lines: {max_line_bytes: 1.5MB}', 'lines.max_line_bytes', '1.5MB', /is not a size \(Fractional bytes/],
    ['lines: {max_line_bytes: MB}', 'lines.max_line_bytes', 'MB', /is not a size \(Invalid bytes/],
    ['lines: {max_line_bytes: 10}', 'lines.max_line_bytes', 10, /must be at least 64 bytes/],
    ['lines: {max_line_bytes: -5}', 'lines.max_line_bytes', -5, /must be at least 64 bytes/],
    ['lines: {max_line_bytes: 100.5}', 'lines.max_line_bytes', 100.5, /whole number of bytes/],
    ['lines: {max_line_bytes: 1e400}', 'lines.max_line_bytes', Infinity, /whole number of bytes/],
    ['lines: {max_line_bytes: .nan}', 'lines.max_line_bytes', NaN, /whole number of bytes/],
    ['shutdown_timeout_ms: -.inf', 'shutdown_timeout_ms', -Infinity, /whole number from 0 to 60000/],
    ['sinks: {x: {command: cat}}', 'sinks.x.type', undefined, /is required/],
    ['sinks: {x: {type: pigeon}}', 'sinks.x.type', 'pigeon', /is not a sink type \(journald, syslog, exec, .*kafka.*\)/],
    ['sinks: {x: {type: exec, command: cat, colour: red}}', 'sinks.x.colour', 'red', /is not a known key/],
    ['sinks: {x: {type: exec, command: cat, buffer: {max_bytes: 8XB}}}', 'sinks.x.buffer.max_bytes', '8XB', /Unknown bytes unit 'XB'/],
    ['sinks: {x: {type: exec, command: cat, buffer: {max_bytes: 100}}}', 'sinks.x.buffer.max_bytes', 100, /at least 1024 bytes/],
    ['sinks: {x: {type: exec, command: cat, buffer: {size: 1MB}}}', 'sinks.x.buffer.size', '1MB', /is not a known key/],
    ['sinks: {x: {type: exec, command: cat, buffer: {when_full: block}}}', 'sinks.x.buffer.when_full', 'block', /must be one of drop_oldest, drop_newest/],
    ['sinks: {x: {type: exec, command: cat, buffer: 8MB}}', 'sinks.x.buffer', '8MB', /must be a map/],
    ['sinks: {x: {type: exec, command: cat, match: {stream: stdin}}}', 'sinks.x.match.stream', ['stdin'], /must be stdout, stderr/],
    ['sinks: {x: {type: exec, command: cat, match: {stream: [stdout, err]}}}', 'sinks.x.match.stream', ['stdout', 'err'], /must be stdout, stderr/],
    ['sinks: {x: {type: exec, command: cat, match: {stream: []}}}', 'sinks.x.match.stream', [], /non-empty list of strings/],
    ['sinks: {x: {type: exec, command: cat, match: {task: "web.*"}}}', 'sinks.x.match.task', 'web.*', /is not a known key/],
    ['sinks: {x: {type: exec, command: cat, match: {labels: [team]}}}', 'sinks.x.match.labels', ['team'], /must be a map of strings/],
    ['sinks: {x: {type: exec, command: cat, match: stdout}}', 'sinks.x.match', 'stdout', /must be a map/],
  ])('%s', (yaml, key, value, why) => {
    const err = errorOf(yaml);
    expect(err.key).toBe(key);
    expect(err.value).toEqual(value);
    expect(err.why).toMatch(why);
    // The message carries all three, for the operator reading the agent's log.
    expect(err.message).toContain(key);
    if (value !== undefined) expect(err.message).toContain(showValue(value));
    expect(err.message).not.toContain('null');
    expect(err.message).toMatch(why);
    expect(err.message).not.toContain('undefined');
  });

  it('a missing value reads naturally', () => {
    expect(errorOf('sinks: {x: {command: cat}}').message).toBe('sinks.x.type is required');
  });

  it('a document that is not a map says so', () => {
    const err = errorOf('just a string');
    expect(err.value).toBe('just a string');
    expect(err.message).toMatch(/config.*"just a string" must be a map/);
  });
});

describe('config files and the environment', () => {
  const write = (name: string, text: string): string => {
    const path = join(makeSandbox().dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('loads a file and records where it came from', () => {
    const path = write('c.yaml', execSinkWith(''));
    const config = loadConfigFile(path, false);
    expect(config.source).toBe(path);
    expect(config.sinks.map((s) => s.name)).toEqual(['out']);
  });

  it('an empty file is the default, from that file', () => {
    const path = write('empty.yaml', '# nothing yet\n');
    expect(loadConfigFile(path, false)).toEqual({ ...DEFAULT_CONFIG, source: path });
  });

  it('invalid YAML names the file and the YAML error', () => {
    const path = write('bad.yaml', 'sinks:\n  out: {type: exec\n');
    let err: ConfigError | undefined;
    try {
      loadConfigFile(path, false);
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.key).toBe(path);
    expect(err!.message).toMatch(new RegExp(`^${path} is not valid YAML: .* at line 3, column 1`, 's'));
  });

  it('a missing file is an error unless it is the default path', () => {
    const path = join(makeSandbox().dir, 'absent.yaml');
    expect(() => loadConfigFile(path, false)).toThrow(new RegExp(`^${path} cannot be read: ENOENT`));
    expect(loadConfigFile(path, true)).toBe(DEFAULT_CONFIG);
  });

  it('an unreadable file is an error even at the default path', () => {
    const dir = join(makeSandbox().dir, 'is-a-dir.yaml');
    mkdirSync(dir);
    expect(() => loadConfigFile(dir, true)).toThrow(/cannot be read: EISDIR/);
  });

  it('a FIFO, a device or a huge file is refused without reading it (a FIFO with no writer would block)', () => {
    const fifo = join(makeSandbox().dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    expect(() => loadConfigFile(fifo, false)).toThrow(new RegExp(`^${fifo} cannot be read: not a regular file`));
    expect(() => loadConfigFile('/dev/zero', false)).toThrow(/^\/dev\/zero cannot be read: not a regular file/);
    const huge = write('huge.yaml', `# ${'x'.repeat(1 << 20)}\n`);
    expect(() => loadConfigFile(huge, false)).toThrow(/cannot be read: 1048579 bytes, more than 1048576/);
  });

  it('an unreadable file (permissions) is an error, for a non-root reader', () => {
    const path = write('secret.yaml', 'bogus: 1\n');
    chmodSync(path, 0o000);
    // Root reads anything; the file then fails on its content instead, which is still an error.
    expect(() => loadConfigFile(path, false)).toThrow(ConfigError);
  });

  it(`reads the file named by ${CONFIG_ENV}`, () => {
    const path = write('env.yaml', 'shutdown_timeout_ms: 7\n');
    expect(loadConfigFromEnv({ [CONFIG_ENV]: path }).shutdownTimeoutMs).toBe(7);
    expect(() => loadConfigFromEnv({ [CONFIG_ENV]: `${path}.missing` })).toThrow(/ENOENT/);
  });

  it(`without ${CONFIG_ENV}, a missing default file means the built-in default`, () => {
    expect(existsSync(DEFAULT_CONFIG_PATH), `${DEFAULT_CONFIG_PATH} exists on this machine`).toBe(false);
    expect(loadConfigFromEnv({})).toBe(DEFAULT_CONFIG);
    expect(loadConfigFromEnv({ [CONFIG_ENV]: '' })).toBe(DEFAULT_CONFIG);
  });

  it('describeConfig shows every effective setting, defaults included, under the config keys', () => {
    const described = describeConfig(parse(execSinkWith('    match: {labels: {team: pay*}}\n')));
    expect(described).toMatchObject({
      source: 'test.yaml',
      lines: { max_line_bytes: 65536, partial_flush_ms: 1000 },
      agent: { enrich: true, url: 'http://127.0.0.1:5051', timeout_ms: 1000 },
      shutdown_timeout_ms: 3000,
      sinks: {
        out: {
          type: 'exec',
          command: ['/bin/sh', '-c', 'cat'],
          match: { labels: { team: 'pay*' } },
          buffer: { max_bytes: 8388608, when_full: 'drop_oldest' },
        },
      },
    });
    expect(describeConfig(DEFAULT_CONFIG)).toMatchObject({ source: '(built-in default: sandbox only)', sinks: {} });
  });

  it('what describeConfig prints parses back to the same config', () => {
    const original = parse(
      execSinkWith('    match: {stream: [stdout], executor_id: [web-*, api-*]}\n    buffer: {max_bytes: 1MB, when_full: drop_newest}\n'),
    );
    const { source: _source, ...printed } = describeConfig(original) as Record<string, unknown>;
    const reparsed = parseConfig(printed, 'test.yaml');
    expect(reparsed.sinks[0].options).toEqual(original.sinks[0].options);
    expect(reparsed.sinks[0].match).toEqual(original.sinks[0].match);
    expect(reparsed.sinks[0].buffer).toEqual(original.sinks[0].buffer);
    expect(reparsed.lines).toEqual(original.lines);
  });
});

describe('match', () => {
  const meta = (extra: Partial<StreamMetadata> = {}): StreamMetadata => ({
    stream: 'stdout',
    hostname: hostname(),
    sandbox: '/s',
    agent_id: 'S1',
    framework_id: 'b3c1-0001',
    executor_id: 'web-7',
    container_id: 'C1',
    executor_labels: {},
    task_labels: {},
    ...extra,
  });
  const spec = (yaml: string): MatchSpec => parseMatch(new ConfigReader('match', parseYaml(yaml)));
  const matches = (yaml: string, m: StreamMetadata): boolean => compileMatch(spec(yaml))(m);

  it('an empty match takes every stream', () => {
    expect(matches('{}', meta())).toBe(true);
    expect(matches('{}', meta({ stream: 'stderr', framework_id: undefined }))).toBe(true);
  });

  it('stream: one name, a list, or *', () => {
    expect(matches('{stream: stdout}', meta())).toBe(true);
    expect(matches('{stream: stdout}', meta({ stream: 'stderr' }))).toBe(false);
    expect(matches('{stream: [stdout, stderr]}', meta({ stream: 'stderr' }))).toBe(true);
    expect(matches('{stream: "*"}', meta({ stream: 'stderr' }))).toBe(true);
  });

  it('ids: exact, glob with * and ?, or a list of them', () => {
    expect(matches('{framework_id: b3c1-0001}', meta())).toBe(true);
    expect(matches('{framework_id: "*-0001"}', meta())).toBe(true);
    expect(matches('{framework_id: "*-0002"}', meta())).toBe(false);
    expect(matches('{executor_id: [api-*, web-*]}', meta())).toBe(true);
    expect(matches('{executor_id: [api-*, db-*]}', meta())).toBe(false);
    expect(matches('{executor_id: "web-?"}', meta())).toBe(true);
    expect(matches('{executor_id: "web-??"}', meta())).toBe(false);
    expect(matches('{executor_id: web}', meta())).toBe(false);
  });

  it('glob characters other than * and ? are literal', () => {
    expect(matches('{executor_id: "web.7"}', meta({ executor_id: 'web.7' }))).toBe(true);
    expect(matches('{executor_id: "web.7"}', meta({ executor_id: 'webx7' }))).toBe(false);
    expect(matches('{executor_id: "w[e]b-(7)+$"}', meta({ executor_id: 'w[e]b-(7)+$' }))).toBe(true);
    expect(matches('{executor_id: "w[e]b-7"}', meta({ executor_id: 'web-7' }))).toBe(false);
    expect(matches('{executor_id: "a*"}', meta({ executor_id: 'a\nb' }))).toBe(true);
  });

  it('every given key must match', () => {
    expect(matches('{stream: stdout, executor_id: web-*}', meta())).toBe(true);
    expect(matches('{stream: stderr, executor_id: web-*}', meta())).toBe(false);
  });

  it('task_id matches only once enrichment knows it', () => {
    expect(matches('{task_id: "*"}', meta())).toBe(false);
    expect(matches('{task_id: "web.*"}', meta({ task_id: 'web.123' }))).toBe(true);
  });

  it('labels: from the task, else from the executor; globs on the value', () => {
    const withLabels = meta({ task_labels: { tier: 'frontend' }, executor_labels: { team: 'payments', tier: 'x' } });
    expect(matches('{labels: {team: payments}}', withLabels)).toBe(true);
    expect(matches('{labels: {team: pay*}}', withLabels)).toBe(true);
    expect(matches('{labels: {tier: front*}}', withLabels)).toBe(true);
    // A task label shadows the executor's label of the same key.
    expect(matches('{labels: {tier: x}}', withLabels)).toBe(false);
    expect(matches('{labels: {team: payments, tier: frontend}}', withLabels)).toBe(true);
    expect(matches('{labels: {team: payments, owner: "*"}}', withLabels)).toBe(false);
    expect(matches('{labels: {team: "*"}}', meta())).toBe(false);
  });

  it('numbers in YAML are taken as strings where a string is expected', () => {
    expect(matches('{labels: {port: 8080}}', meta({ task_labels: { port: '8080' } }))).toBe(true);
    expect(spec('{task_id: 42}')).toEqual({ task_id: ['42'] });
  });
});
