// `mesos-log-splitter check-config [FILE]` through the built binary.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { agentEnv } from './helpers/env.js';
import { makeSandbox } from './helpers/sandbox.js';
import { LAUNCHER_DIR, ROOT } from './helpers/spawn.js';

/** This run's install of the launchers beside the bundle (test/global-setup.ts). */
const BIN = join(LAUNCHER_DIR, 'mesos-log-splitter');
const DEFAULT_PATH = '/etc/mesos-log-splitter/config.yaml';

function checkConfig(args: string[], env: Record<string, string> = {}) {
  const base = agentEnv();
  delete base.LOG_SPLITTER_CONFIG;
  const result = spawnSync(BIN, ['check-config', ...args], { env: { ...base, ...env }, encoding: 'utf8', timeout: 20_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function configFile(text: string, name = 'config.yaml'): string {
  const path = join(makeSandbox().dir, name);
  writeFileSync(path, text);
  return path;
}

describe('check-config', () => {
  it('a valid file: prints the effective config with defaults, exits 0', () => {
    const path = configFile(`
lines: {max_line_bytes: 16KB}
sinks:
  forward:
    type: exec
    command: [logger, -t, task]
    match: {stream: stderr}
    buffer: {max_bytes: 1MB}
`);
    const { code, stdout, stderr } = checkConfig([path]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const printed = parseYaml(stdout);
    expect(printed).toMatchObject({
      source: path,
      lines: { max_line_bytes: 16384, partial_flush_ms: 1000 },
      agent: { enrich: true, url: 'http://127.0.0.1:5051', timeout_ms: 1000 },
      shutdown_timeout_ms: 3000,
      sinks: {
        forward: {
          type: 'exec',
          command: ['logger', '-t', 'task'],
          match: { stream: ['stderr'] },
          buffer: { max_bytes: 1048576, when_full: 'drop_oldest' },
        },
      },
    });
    // The exec sink's own defaults are shown too.
    expect(Object.keys(printed.sinks.forward)).toEqual(expect.arrayContaining(['env', 'restart_backoff_ms', 'stop_grace_ms']));
  });

  it('what it prints is itself a valid config meaning the same', () => {
    const path = configFile('sinks:\n  a: {type: exec, command: cat, buffer: {when_full: drop_newest}}\n');
    const first = checkConfig([path]);
    expect(first.code).toBe(0);
    const { source: _source, ...printed } = parseYaml(first.stdout);
    const again = checkConfig([configFile(JSON.stringify(printed), 'printed.yaml')]);
    expect(again.code, again.stderr).toBe(0);
    const { source: _again, ...reprinted } = parseYaml(again.stdout);
    expect(reprinted).toEqual(printed);
  });

  it.each([
    ['sinks:\n  out:\n    type: exec\n    command: cat\n    buffer: {max_bytes: 8XB}\n', 'sinks.out.buffer.max_bytes: "8XB" is not a size'],
    ['sinks:\n  out: {type: exec, command: cat, buffer: {when_full: block}}\n', 'sinks.out.buffer.when_full: "block" must be one of drop_oldest, drop_newest'],
    ['sinks:\n  out: {type: pigeon}\n', 'sinks.out.type: "pigeon" is not a sink type'],
    ['colour: red\n', 'colour: "red" is not a known key'],
    ['agent: {url: "nope"}\n', 'agent.url: "nope" is not a URL'],
    ['sinks:\n  out: {type: exec, command: cat, match: {stream: stdin}}\n', 'sinks.out.match.stream: ["stdin"] must be stdout, stderr'],
  ])('an invalid file: key, value and reason on stderr, exit 1 (%#)', (text, message) => {
    const { code, stdout, stderr } = checkConfig([configFile(text)]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain(message);
  });

  it('invalid YAML: names the file and the position', () => {
    const path = configFile('sinks:\n  out: {type: exec\n');
    const { code, stderr } = checkConfig([path]);
    expect(code).toBe(1);
    expect(stderr).toContain(`${path} is not valid YAML`);
    expect(stderr).toMatch(/line 3, column 1/);
  });

  it('without FILE, checks the file LOG_SPLITTER_CONFIG names', () => {
    const good = configFile('shutdown_timeout_ms: 1234\n');
    const ok = checkConfig([], { LOG_SPLITTER_CONFIG: good });
    expect(ok.code).toBe(0);
    expect(parseYaml(ok.stdout)).toMatchObject({ source: good, shutdown_timeout_ms: 1234 });

    const bad = configFile('shutdown_timeout_ms: forever\n');
    const failed = checkConfig([], { LOG_SPLITTER_CONFIG: bad });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('shutdown_timeout_ms: "forever" must be a whole number');
  });

  it('FILE wins over LOG_SPLITTER_CONFIG', () => {
    const named = configFile('shutdown_timeout_ms: 1\n', 'named.yaml');
    const fromEnv = configFile('shutdown_timeout_ms: 2\n', 'env.yaml');
    const { code, stdout } = checkConfig([named], { LOG_SPLITTER_CONFIG: fromEnv });
    expect(code).toBe(0);
    expect(parseYaml(stdout)).toMatchObject({ source: named, shutdown_timeout_ms: 1 });
  });

  it('a missing file named explicitly is an error', () => {
    const path = join(makeSandbox().dir, 'absent.yaml');
    const { code, stderr } = checkConfig([path]);
    expect(code).toBe(1);
    expect(stderr).toContain(`${path} cannot be read: ENOENT`);
    const viaEnv = checkConfig([], { LOG_SPLITTER_CONFIG: path });
    expect(viaEnv.code).toBe(1);
    expect(viaEnv.stderr).toContain(`${path} cannot be read: ENOENT`);
  });

  it('a directory is not a config file', () => {
    const dir = join(makeSandbox().dir, 'conf.d');
    mkdirSync(dir);
    const { code, stderr } = checkConfig([dir]);
    expect(code).toBe(1);
    expect(stderr).toContain(`${dir} cannot be read: EISDIR`);
  });

  it('no FILE and no LOG_SPLITTER_CONFIG: the default path is missing, so the built-in default', () => {
    expect(existsSync(DEFAULT_PATH), `${DEFAULT_PATH} exists on this machine`).toBe(false);
    for (const env of [{}, { LOG_SPLITTER_CONFIG: '' }] as Record<string, string>[]) {
      const { code, stdout, stderr } = checkConfig([], env);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(parseYaml(stdout)).toEqual({
        source: '(built-in default: sandbox only)',
        lines: { max_line_bytes: 65536, partial_flush_ms: 1000 },
        agent: { enrich: true, url: 'http://127.0.0.1:5051', timeout_ms: 1000, max_response_bytes: 67108864 },
        shutdown_timeout_ms: 3000,
        sinks: {},
        daemon: { status_timeout_ms: 1000 },
      });
    }
  });

  it('more than one FILE is a usage error', () => {
    const path = configFile('');
    const { code, stderr } = checkConfig([path, path]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/Usage: mesos-log-splitter check-config \[FILE\]/);
  });
});

describe('the shipped example configs', () => {
  const dir = join(ROOT, 'config');
  it.each(['config.yaml', 'journald.yaml', 'syslog.yaml', 'exec.yaml'])('config/%s is valid', (name) => {
    const { code, stdout, stderr } = checkConfig([join(dir, name)]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(Object.keys(parseYaml(stdout).sinks).length).toBeGreaterThan(0);
  });
});

describe('check-config and secrets', () => {
  it('prints passwords, tokens, API keys, credential headers and a URL password as (redacted)', () => {
    const file = configFile(
      [
        'sinks:',
        '  es:',
        '    type: elasticsearch',
        '    url: https://elastic:hunter2@127.0.0.1:9200',
        '  es2:',
        '    type: elasticsearch',
        '    url: https://127.0.0.1:9200',
        '    auth: { api_key: c2VjcmV0 }',
        '  hec:',
        '    type: http',
        '    format: splunk_hec',
        '    url: https://127.0.0.1:8088',
        '    hec: { token: 0000-1111 }',
        '  web:',
        '    type: http',
        '    url: http://127.0.0.1:8080/in',
        '    headers: { Authorization: "Bearer abc123", X-Tenant: tenant-one }',
        '',
      ].join('\n'),
    );
    const { code, stdout, stderr } = checkConfig([file]);
    expect(code, stderr).toBe(0);
    for (const secret of ['hunter2', 'c2VjcmV0', '0000-1111', 'abc123']) expect(stdout).not.toContain(secret);
    expect(stdout).toContain('https://elastic:(redacted)@127.0.0.1:9200');
    expect(stdout).toContain('tenant-one');
    expect(stdout.match(/\(redacted\)/g)?.length).toBe(4);
  });
});

describe('config errors and secrets', () => {
  it.each([
    ['sinks:\n  f: {type: fluent, host: x, shared_key: topsecret}\n', 'topsecret'],
    ['sinks:\n  f: {type: http, url: "htp://user:pa55word@127.0.0.1:1/x"}\n', 'pa55word'],
    ['sinks:\n  f: {type: http, format: splunk_hec, url: "http://x/", hec: {token: [abc-secret]}}\n', 'abc-secret'],
    ['sinks:\n  f: {type: http, url: "http://x/", headers: {Authorization: [x-secret]}}\n', 'x-secret'],
  ])('%s: the error names the key and shows (redacted), not the secret', (text, secret) => {
    const { code, stderr } = checkConfig([configFile(text)]);
    expect(code).toBe(1);
    expect(stderr).toContain('(redacted)');
    expect(stderr).not.toContain(secret);
  });
});
